"""Polarity sampling and MaGNET: latents weighted by the generator's volume (Humayun et al., CVPR 2022;
ICLR 2022).

A generator maps a latent cell around z to a patch of its manifold vol(z) = prod_i s_i(dG/dz) times
larger (ddls.sampling.jacobian), so its samples have density p0(z) / vol(z) there: a latent where G
stretches much lands where G's samples are sparse. Polarity sampling draws z from

    p_rho(z) ∝ p0(z) * vol(z)^rho,

rho > 0 favouring the sparse regions of G's output (spread, recall), rho < 0 its dense modes
(sharpness, precision), rho = 0 the generator itself. MaGNET is rho = 1 on a prior pool (the
authors' code weighs prior draws by the volume itself; with a uniform latent this is the uniform
law on the manifold).

Here it is importance resampling, as SIR is: a pool of pool_factor * n prior draws, log-weight
rho * log vol(z) (plus d(G(z))/T with `critic`: the density p0 * vol^rho * exp(d/T) of the energy
E(z) = -log p0 - d/T - rho * log vol), n kept without replacement (Gumbel top-k, as the authors'
code samples) or with it (multinomial; exact as the pool grows). With `refine dot`, the kept
latents are then moved by DOT (ddls.posthoc.dot) on the critic: the volume chooses where to
start, the critic sharpens. A Langevin chain on the energy with the volume term would need the
gradient of log vol, a second derivative through every Jacobian per step (hundreds of forward
passes per chain per step); resampling needs the Jacobians of the pool once.

The volume uses every singular value by default; `top_k` keeps the largest k (the authors' choice
for latents too large for a full Jacobian; on small latents the full one is exact and cheap enough).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import click
import torch
from torch import Tensor

from .._torch import derived_seed, frozen, make_generator, seeded_chunks
from ..errors import DDLSError
from ..sampling.jacobian import log_volume
from .progress import step_bar
from .registry import POSITIVE, Setting, register
from .target import LatentLogit, PosthocResult

REFINES = ("none", "dot")
SELECT_STREAM = 7_000_011  # key of the random stream of the selection (see derived_seed)
DOT_STREAM = 7_000_012  # key of the stream of DOT's Lipschitz pairs, when refining


@dataclass(frozen=True)
class PolarityConfig:
    # polarity: > 0 favours where G stretches, < 0 where it packs; small, as log vol varies by tens of nats
    # across an image GAN's latents (std 25 on the shipped SNGAN: at rho 0.1 the weights' ESS is 6% of the pool)
    rho: float = 0.02
    pool_factor: int = 4  # prior draws per kept sample
    top_k: int = 0  # singular values in the volume (0: all)
    critic: bool = False  # also weigh by exp(d/T): E = -log p0 - d/T - rho * log vol
    replace: bool = False  # keep with replacement (exact SIR) instead of without (no repeated samples)
    refine: str = "none"  # "dot": move the kept latents by DOT on the critic
    dot_steps: int = 50
    dot_lr: float = 0.01
    chunk_size: int = 5000  # network rows at once (a Jacobian takes latent_dim rows)

    def __post_init__(self):
        if not -1e6 < self.rho < 1e6:
            raise DDLSError(f"polarity rho must be a finite number, got {self.rho}")
        if self.pool_factor < 1 or self.top_k < 0 or self.chunk_size < 1:
            raise DDLSError(f"polarity needs pool factor >= 1, top_k >= 0 and chunk size >= 1, got "
                            f"{self.pool_factor}, {self.top_k}, {self.chunk_size}")
        if self.refine not in REFINES:
            raise DDLSError(f"unknown polarity refine {self.refine!r}; choose {' or '.join(REFINES)}")
        if self.dot_steps < 0 or not self.dot_lr > 0:
            raise DDLSError("polarity's DOT refinement needs steps >= 0 and lr > 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MagnetConfig(PolarityConfig):
    rho: float = 1.0  # MaGNET: prior draws weighed by the volume itself


def pool_scores(target: LatentLogit, pool: int, config: PolarityConfig, *, seed: int = 0,
                advance=lambda k=1: None) -> tuple[Tensor, Tensor, Tensor | None]:
    """`pool` prior latents (chunk k from stream (seed, k)), their log volumes (float64) and, with
    `config.critic`, their logits d/T; all on the target's device."""
    if isinstance(target.energy.label, Tensor):
        raise DDLSError("polarity sampling takes one class for every sample; give --label a single class")
    d = target.energy.latent_dim
    zs, logvols, logits = [], [], []
    with torch.no_grad(), frozen(*target.modules()):
        for chunk in seeded_chunks(pool, max(1, config.chunk_size // d), seed, target.device):
            z = target.prior_sample(chunk.size, chunk.generator)
            lv = _log_volumes(target, z, config)
            if not torch.isfinite(lv).all():
                raise DDLSError("the generator's Jacobian gave a non-finite volume; check the checkpoint")
            zs.append(z)
            logvols.append(lv)
            if config.critic:
                s = target(z)
                if not torch.isfinite(s).all():
                    raise DDLSError("the discriminator gave NaN/inf logits; check the checkpoint")
                logits.append(s)
            advance(1)
    return torch.cat(zs), torch.cat(logvols), torch.cat(logits) if config.critic else None


def _log_volumes(target: LatentLogit, z: Tensor, config: PolarityConfig) -> Tensor:
    d = target.energy.latent_dim
    if z.shape[1] == d:
        return log_volume(target.decode, z, top_k=config.top_k, rows=config.chunk_size)
    # an extended latent (G(z) + sigma z'): z' only shifts the sample, so the Jacobian is G's, in z
    noise = torch.zeros(1, z.shape[1] - d, dtype=z.dtype, device=z.device)
    return log_volume(lambda u: target.decode(torch.cat([u, noise.expand(len(u), -1)], 1)), z[:, :d],
                      top_k=config.top_k, rows=config.chunk_size)


def select(log_weights: Tensor, n: int, replace: bool, generator: torch.Generator) -> Tensor:
    """Indices of n pool members drawn with probabilities ∝ exp(log_weights): with replacement by a
    multinomial, without by Gumbel top-k (successive sampling without replacement)."""
    if n > len(log_weights) and not replace:
        raise DDLSError(f"cannot keep {n} of a pool of {len(log_weights)} without replacement")
    lw = log_weights.double()
    if replace:
        p = torch.softmax(lw, 0)
        return torch.multinomial(p, n, replacement=True, generator=generator)
    u = torch.rand(len(lw), generator=generator, device=generator.device, dtype=torch.float64)
    keys = lw - torch.log(-torch.log(u.clamp_min(1e-300)))
    kept = torch.topk(keys, n).indices
    return kept[torch.randperm(n, generator=generator, device=generator.device)]  # no ranking left in the order


def effective_sample_size(log_weights: Tensor) -> float:
    """Kish's (sum w)^2 / sum w^2 of the pool's weights."""
    w = torch.softmax(log_weights.double(), 0)
    return float(1.0 / w.pow(2).sum())


def _sample(target: LatentLogit, n: int, config: PolarityConfig, *, seed: int = 0,
            progress: bool = False) -> PosthocResult:
    if config.refine == "dot" and not target.calibration.differentiable:
        raise DDLSError(f"polarity's DOT refinement follows gradients of d, and {target.calibration.kind} "
                        f"calibration has none; use raw, logistic or finetune, or --polarity-refine none")
    pool = n * config.pool_factor
    d = target.energy.latent_dim
    per_chunk = max(1, config.chunk_size // d)
    with step_bar(progress, pool, per_chunk, 1, "polarity") as advance:
        z, logvol, logits = pool_scores(target, pool, config, seed=seed, advance=advance)
    log_w = config.rho * logvol + (logits.double() if logits is not None else 0.0)
    kept = select(log_w, n, config.replace, make_generator(derived_seed(seed, SELECT_STREAM), target.device))
    latents = z[kept]
    # a Jacobian costs about latent_dim passes through G; the critic one pass per pool member
    evaluations = pool * d + (pool if config.critic else 0) + n
    info = {"pool": pool, "rho": config.rho, "ess": effective_sample_size(log_w),
            "log_volume_pool_mean": float(logvol.mean()), "log_volume_pool_std": float(logvol.std()) if pool > 1 else 0.0,
            "log_volume_kept_mean": float(logvol[kept].mean())}
    if config.refine == "dot":
        from .dot import DOTConfig, effective_lipschitz, transport

        dot = DOTConfig(steps=config.dot_steps, lr=config.dot_lr, chunk_size=config.chunk_size)
        k_eff = effective_lipschitz(target, dot.pairs, make_generator(derived_seed(seed, DOT_STREAM), target.device))
        latents = torch.cat([transport(target, y, k_eff, dot) for y in latents.split(config.chunk_size)])
        evaluations += 2 * dot.pairs + 2 * n * dot.steps
        info["k_eff"] = k_eff
    with torch.no_grad(), frozen(*target.modules()):
        samples = torch.cat([target.decode(part).cpu() for part in latents.split(config.chunk_size)])
    return PosthocResult(samples, latents.cpu(), evaluations, info)


_SETTINGS = [
    Setting("--polarity-rho", "rho", click.FLOAT,
            "Polarity: weight latents by vol(z)^rho; > 0 spreads (sparse regions of G), < 0 sharpens."),
    Setting("--polarity-pool-factor", "pool_factor", click.IntRange(min=1),
            "Polarity: prior draws per kept sample (each costs latent_dim passes through G)."),
    Setting("--polarity-top-k", "top_k", click.IntRange(min=0),
            "Polarity: largest singular values in the volume (0: all)."),
    Setting("--polarity-critic", "critic", click.BOOL,
            "Polarity: also weigh by exp(d/T), the density of -log p0 - d/T - rho log vol."),
    Setting("--polarity-replace", "replace", click.BOOL,
            "Polarity: keep with replacement (exact as the pool grows) instead of without."),
    Setting("--polarity-refine", "refine", click.Choice(REFINES),
            "Polarity: then move the kept latents by DOT on the critic (dot) or not (none)."),
    Setting("--polarity-dot-steps", "dot_steps", click.IntRange(min=0), "Polarity: DOT steps when refining."),
    Setting("--polarity-dot-lr", "dot_lr", POSITIVE, "Polarity: DOT step size when refining."),
]


@register("polarity", PolarityConfig, "polarity sampling: keep prior latents by weight vol(z)^rho of G's Jacobian",
          shared={"chunk_size": "chunk_size"}, settings=_SETTINGS)
def sample(target: LatentLogit, n: int, config: PolarityConfig = PolarityConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n latents resampled from n * pool_factor prior draws by vol(z)^rho (see the module's docstring)."""
    return _sample(target, n, config, seed=seed, progress=progress)


@register("magnet", MagnetConfig, "MaGNET: polarity at rho = 1, prior latents kept by G's volume (--method "
          "polarity --polarity-rho 1 for its other settings)", shared={"chunk_size": "chunk_size"})
def sample_magnet(target: LatentLogit, n: int, config: PolarityConfig = MagnetConfig(), *, seed: int = 0,
                  progress: bool = False) -> PosthocResult:
    """MaGNET: polarity sampling at rho = 1 (the config may set another rho; MagnetConfig's default is 1)."""
    return _sample(target, n, config, seed=seed, progress=progress)
