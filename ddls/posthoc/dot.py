"""Discriminator Optimal Transport in latent space (Tanaka, NeurIPS 2019).

Each prior draw y is moved to

    z* = argmin_z  ||z - y||_2 - d(G(z)) / k_eff,

found by a few gradient steps from z = y (SGD or Adam, as the paper's code offers).
k_eff is the effective Lipschitz constant of d∘G, estimated from random pairs of
latents: max |d(G(z1)) - d(G(z2))| / ||z1 - z2||. With d a WGAN critic (the
Kantorovich potential) this approximates the optimal transport of p_g onto p_data;
a logit works the same way in practice. The norm is smoothed at z = y so its
gradient there is 0 rather than undefined.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import click
import torch
from torch import Tensor

from .._torch import derived_seed, frozen, make_generator, seeded_chunks
from ..errors import DDLSError
from .progress import step_bar
from .registry import POSITIVE, Setting, register
from .target import LatentLogit, PosthocResult

OPTIMIZERS = ("sgd", "adam")
KEFF_STREAM = 7_000_002  # key of the random stream of the k_eff pairs (see derived_seed)
SMOOTH = 1e-12  # ||v|| is computed as sqrt(||v||^2 + SMOOTH)


@dataclass(frozen=True)
class DOTConfig:
    steps: int = 100  # gradient steps per sample (the paper's code: 100 SGD steps at lr 0.05)
    lr: float = 0.05
    optimizer: str = "sgd"  # sgd, or adam with betas (0, 0.9) as the paper's code
    pairs: int = 100  # random latent pairs for k_eff
    k_eff: float | None = None  # a known constant; skips the estimate
    chunk_size: int = 5000

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise DDLSError(f"unknown DOT optimizer {self.optimizer!r}; choose sgd or adam")
        if self.steps < 0 or not self.lr > 0 or self.pairs < 1 or self.chunk_size < 1:
            raise DDLSError("DOT needs steps >= 0, lr > 0, pairs >= 1 and chunk size >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def effective_lipschitz(target: LatentLogit, pairs: int, generator: torch.Generator) -> float:
    """max over random latent pairs of |d(G(z1)) - d(G(z2))| / ||z1 - z2||."""
    with torch.no_grad(), frozen(*target.modules()):
        z1 = target.prior_sample(pairs, generator)
        z2 = target.prior_sample(pairs, generator)
        k = ((target(z1) - target(z2)).abs() / (z1 - z2).norm(dim=1)).max()
    k = float(k)
    if not k > 0:
        raise DDLSError(f"DOT's Lipschitz estimate k_eff is {k}: the discriminator is constant on generated "
                        f"samples, so there is nothing to transport along")
    return k


def transport(target: LatentLogit, y: Tensor, k_eff: float, config: DOTConfig,
              advance=lambda k=1: None) -> Tensor:
    """Latents after `config.steps` steps on ||z - y|| - d(G(z)) / k_eff, started at y."""
    z = y.detach().clone().requires_grad_(True)
    if config.optimizer == "adam":
        opt = torch.optim.Adam([z], lr=config.lr, betas=(0.0, 0.9))
    else:
        opt = torch.optim.SGD([z], lr=config.lr)
    with torch.enable_grad(), frozen(*target.modules()):
        for _ in range(config.steps):
            cost = _cost(target, z, y, k_eff)
            opt.zero_grad(set_to_none=True)
            cost.sum().backward()  # rows are independent: the sum's gradient is each row's own
            opt.step()
            advance(1)
    return z.detach()


def _cost(target: LatentLogit, z: Tensor, y: Tensor, k_eff: float) -> Tensor:
    """||z - y|| - d(G(z)) / k_eff per row."""
    return ((z - y).pow(2).sum(1) + SMOOTH).sqrt() - target(z) / k_eff


def sample_lrs(target: LatentLogit, n: int, config: DOTConfig, lrs: list[float], *, seed: int = 0,
               batch_size: int | None = None) -> list[PosthocResult]:
    """`sample(target, n, replace(config, lr=r), seed=seed)` for each r in `lrs`, as one batch: one k_eff
    (each run estimates it from the same pairs), the prior draws shared, each step evaluating G and D once
    for all (`batch_size` chains at a time, default the chunk size). An SGD step of size r on a row's cost
    is a step of size 1 on r times it, which gives each row its own step size; Adam's steps do not scale
    so, and it is refused."""
    from ..sampling.batched import InBatches

    if config.optimizer != "sgd":
        raise DDLSError("DOT settings run as one batch with the sgd optimizer only; run adam ones one by one")
    if not target.calibration.differentiable:
        raise DDLSError(f"DOT follows gradients of d, and {target.calibration.kind} calibration has none; "
                        f"use raw, logistic or finetune")
    k_eff, evaluations = config.k_eff, [0] * len(lrs)
    if k_eff is None:
        k_eff = effective_lipschitz(target, config.pairs, make_generator(derived_seed(seed, KEFF_STREAM),
                                                                         target.device))
        evaluations[0] += 2 * config.pairs
    k = len(lrs)
    xs, zs = [[] for _ in lrs], [[] for _ in lrs]
    for chunk in seeded_chunks(n, config.chunk_size, seed, target.device):
        m = chunk.size
        y = target.prior_sample(m, chunk.generator).repeat(k, 1)
        scale = torch.tensor(lrs, device=y.device, dtype=y.dtype).repeat_interleave(m)
        z = y.detach().clone().requires_grad_(True)
        opt = torch.optim.SGD([z], lr=1.0)
        parts = InBatches(target, batch_size or config.chunk_size)
        with torch.enable_grad(), frozen(*target.modules()):
            for _ in range(config.steps):
                opt.zero_grad(set_to_none=True)
                for a, b in parts.ranges(len(z)):  # each slice adds its rows' gradients to z.grad
                    (_cost(target, z[a:b], y[a:b], k_eff) * scale[a:b]).sum().backward()
                opt.step()
        with frozen(*target.modules()):
            x = parts.decode(z.detach())
        for j in range(k):
            xs[j].append(x[j * m:(j + 1) * m])
            zs[j].append(z.detach()[j * m:(j + 1) * m].cpu())
            evaluations[j] += 2 * m * config.steps
    return [PosthocResult(torch.cat(xs[j]), torch.cat(zs[j]), evaluations[j], {"k_eff": k_eff}) for j in range(k)]


@register("dot", DOTConfig, "discriminator optimal transport of each prior latent", shared={"chunk_size": "chunk_size"},
          settings=[
              Setting("--dot-steps", "steps", click.IntRange(min=0), "DOT: steps."),
              Setting("--dot-lr", "lr", POSITIVE, "DOT: step size."),
              Setting("--dot-optimizer", "optimizer", click.Choice(OPTIMIZERS), "DOT: optimizer of the steps."),
              Setting("--dot-pairs", "pairs", click.IntRange(min=1),
                      "DOT: random latent pairs for the Lipschitz estimate k_eff."),
          ])
def sample(target: LatentLogit, n: int, config: DOTConfig = DOTConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n transported samples; chunk k starts from the prior draws of stream (seed, k), as DDLS does."""
    if not target.calibration.differentiable:
        raise DDLSError(f"DOT follows gradients of d, and {target.calibration.kind} calibration has none; "
                        f"use raw, logistic or finetune")
    evaluations = 0
    k_eff = config.k_eff
    if k_eff is None:
        k_eff = effective_lipschitz(target, config.pairs, make_generator(derived_seed(seed, KEFF_STREAM),
                                                                         target.device))
        evaluations += 2 * config.pairs
    xs, zs = [], []
    with step_bar(progress, n, config.chunk_size, config.steps, "dot") as advance:
        for chunk in seeded_chunks(n, config.chunk_size, seed, target.device):
            y = target.prior_sample(chunk.size, chunk.generator)
            z = transport(target, y, k_eff, config, advance)
            with torch.no_grad(), frozen(*target.modules()):
                xs.append(target.decode(z).cpu())
            zs.append(z.cpu())
            evaluations += 2 * chunk.size * config.steps
    latents = torch.cat(zs)
    return PosthocResult(torch.cat(xs), latents, evaluations, {"k_eff": k_eff})
