"""A latent prior fitted by the critic: q(z) = N(mu, A A^T) chosen so that D's features of G(z) match the data's.

Critic-guided moves (DDLS, DOT, DGflow) sharpen samples but do not spread them; on an SNGAN most of FID
is spread and rotation of the samples' features (`ddls eval --explain`). This method moves the whole
latent distribution instead: it minimises

    FD(D's features of G(z), z ~ q ; D's features of real data) / tr(S_real) + kl * KL(q || N(0, I)) / dim

over mu and A by Adam on minibatches (reparametrised z = mu + A e, e ~ N(0, I)), where FD is the Frechet
distance after projecting the features onto the data's leading `directions` principal directions, and
the KL term keeps q near the prior G was trained on. Adam reaches the optimum's neighbourhood in about 50
steps and then wanders with the minibatch noise (the last iterate's FID swung 11-16 on the shipped SNGAN);
the fitted prior is therefore the average of the last `average` share of the iterates: mean of mu, mean
of A A^T. D's features are the input of its last layer (the
last module with weights whose input has more than one value per sample), or a named layer's output.
Sampling then costs one pass through G per sample. The fit is kept in the user cache (ddls.io.cache),
keyed by G, D's features of the first real draws (so a refitted head keeps the fit), the real draws, the
settings and the seed.

The features are D's, not the evaluation's: FID is measured on another network's features, so the fit
does not optimise the score it is judged by.

The fitted prior spreads and turns the samples; D's logit can then still sharpen them. With
`langevin_steps` > 0 the samples are DDLS chains (ULA, step `langevin_eps`) on the fitted prior's latents:
u ~ N(0, I) pushed through u -> G(mu + A u), on the energy -log N(u) - d(G(mu + A u)) / T, whose target is
q(z) exp(d(G(z)) / T) (on the shipped SNGAN, N = 10,000: FID 10.36 with the prior alone, 9.63 with 100
steps at T = 3, eps 0.01). The fit is the same either way (the cache key leaves these settings out).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterator

import click
import numpy as np
import torch
from torch import Tensor, nn

from .._torch import derived_seed, frozen, make_generator, seeded_chunks
from ..errors import DDLSError
from .progress import step_bar
from .registry import POSITIVE, Setting, get, register
from .target import LatentLogit, PosthocResult

SAMPLING_ONLY = ("chunk_size", "langevin_steps", "langevin_eps")  # settings that leave the fit as it is
REAL_STREAM = 7_000_201  # keys of the fit's random streams (see derived_seed)
FIT_STREAM = 7_000_202
VARIED = 1e-4  # a feature direction counts when its singular value is above this share of the largest


@dataclass(frozen=True)
class PriorFitConfig:
    kl: float = 0.1  # weight of KL(q || prior) / dim (shipped SNGAN, N = 10,000: 0.1 -25.8%, 0.3 and 1.0 -23%)
    steps: int = 150  # Adam steps of the fit
    lr: float = 0.02
    batch: int = 500  # latents per fit step: the generated side of each FD (shipped SNGAN: 1000 gave no better)
    average: float = 0.67  # share of the last iterates averaged (0: the last one alone); see the module's note
    real: int = 10000  # real samples whose features are the target
    directions: int = 128  # leading principal directions of the real features compared
    layer: str = ""  # a module of D whose output are the features ("": the input of D's last layer)
    seed: int = 0  # the fit's random streams (real draws, minibatches); the samples follow the run's seed
    langevin_steps: int = 0  # DDLS steps on the fitted prior's latents (0: its draws as they are)
    langevin_eps: float = 0.01  # their step size
    chunk_size: int = 5000

    def __post_init__(self):
        if not self.kl >= 0 or self.steps < 0 or not self.lr > 0 or self.batch < 2 or self.real < 2 \
                or self.directions < 1 or self.chunk_size < 1 or not 0 <= self.average <= 1:
            raise DDLSError("prior-fit needs kl >= 0, steps >= 0, lr > 0, batch >= 2, real >= 2, directions >= 1, "
                            "average in [0, 1] and chunk size >= 1")
        if self.langevin_steps < 0 or not 0 < self.langevin_eps < float("inf"):
            raise DDLSError(f"prior-fit needs langevin steps >= 0 and a positive finite langevin eps; got "
                            f"{self.langevin_steps} and {self.langevin_eps}")

    @property
    def averaged(self) -> int:
        """How many of the last iterates the fitted prior averages (at least the last one)."""
        return max(1, round(self.average * self.steps))

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def critic_features(discriminator: nn.Module, layer: str = "") -> Iterator[Callable[[Tensor], None]]:
    """Yields `run(x, *extra)` -> D's features of x, flattened to (B, F); extra: D's other inputs (labels)."""
    modules = dict(discriminator.named_modules())
    if layer:
        if layer not in modules or not layer:
            choices = ", ".join(n for n in modules if n) or "(none)"
            raise DDLSError(f"the discriminator has no layer {layer!r}; choose one of {choices}")
        watched = {layer: modules[layer]}
    else:  # every module with its own weights; the last one called with a wide input is D's head
        watched = {n: m for n, m in modules.items() if any(True for _ in m.parameters(recurse=False))}
    seen: list[tuple[str, Tensor]] = []

    def hook(name):
        def record(_module, inputs, output):
            value = output if layer else (inputs[0] if inputs else None)
            if isinstance(value, Tensor) and value.dim() >= 1:
                seen.append((name, value))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in watched.items()]

    def run(x: Tensor, *extra: Tensor) -> Tensor:
        seen.clear()
        discriminator(x, *extra)
        wide = [v for _, v in seen if v[0].numel() > 1]
        seen.clear()
        if not wide:
            raise DDLSError("found no layer of the discriminator with more than one feature per sample; "
                            "name one with --prior-layer")
        return wide[-1].flatten(1)

    try:
        yield run
    finally:
        for h in handles:
            h.remove()


def frechet_terms(f: Tensor, mu_r: Tensor, basis: Tensor, root: Tensor, trace_r: Tensor) -> Tensor:
    """FD between features f (projected on `basis`) and the real Gaussian (mean 0 there, covariance root^2)."""
    p = (f.double() - mu_r) @ basis
    mean = p.mean(0)
    centred = p - mean
    cov = centred.T @ centred / (len(p) - 1)
    cross = torch.linalg.eigvalsh(root @ cov @ root).clamp_min(1e-12).sqrt().sum()
    return mean.pow(2).sum() + cov.trace() + trace_r - 2 * cross


def gaussian_kl(mu: Tensor, a: Tensor) -> Tensor:
    """KL(N(mu, A A^T) || N(0, I))."""
    d = mu.numel()
    return 0.5 * ((a * a).sum() + mu.pow(2).sum() - d - 2 * torch.linalg.slogdet(a)[1])


class IterateMean:
    """Running mean of (mu, A A^T) over the iterates it is given; `.prior()` -> (mean mu, a root of mean A A^T)."""

    def __init__(self, d: int, device):
        self.mu = torch.zeros(d, dtype=torch.float64, device=device)
        self.cov = torch.zeros(d, d, dtype=torch.float64, device=device)
        self.count = 0

    def add(self, mu: Tensor, a: Tensor) -> None:
        a = a.detach().double()
        self.mu += mu.detach().double()
        self.cov += a @ a.T
        self.count += 1

    def prior(self) -> tuple[Tensor, Tensor]:
        w, v = torch.linalg.eigh(self.cov / self.count)
        root = v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T  # symmetric: the same N(mu, A A^T) as any root
        return (self.mu / self.count).float(), root.float()


def _real_statistics(target: LatentLogit, features, real: Tensor, config: PriorFitConfig):
    """The real features' mean, leading principal directions, covariance root there, and its trace."""
    chunks = []
    with torch.no_grad():
        for i in range(0, len(real), config.chunk_size):
            chunks.append(features(real[i:i + config.chunk_size].to(target.device)).double())
    f = torch.cat(chunks)
    mu_r = f.mean(0)
    centred = f - mu_r
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
    # directions the data does not vary along would put sqrt's infinite slope at 0 into the gradient
    varied = int((sv > sv[0] * VARIED).sum()) if len(sv) and sv[0] > 0 else 0
    if varied == 0:
        raise DDLSError("D's features of the real samples do not vary; name another layer with --prior-layer")
    basis = vh[:min(config.directions, varied)].T
    p = centred @ basis
    cov = p.T @ p / (len(p) - 1)
    w, v = torch.linalg.eigh(cov)
    root = v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T
    return mu_r, basis, root, cov.trace()


def fit(target: LatentLogit, draw_real, config: PriorFitConfig, *, progress: bool = False) -> tuple[Tensor, Tensor, dict]:
    """(mu, A, record) of the fitted prior N(mu, A A^T); the record holds the distances and what it cost."""
    energy = target.energy
    if energy.sigma > 0:
        raise DDLSError("prior-fit fits the prior of z alone; use it without the extended latent (sigma 0)")
    if isinstance(energy.label, Tensor):
        raise DDLSError("prior-fit fits one prior for all chains; give one class (an int label), not one per chain")
    if draw_real is None:
        raise DDLSError("prior-fit matches the data's features, and this checkpoint names no data source; pass "
                        "--data (a data set or a .npy of your own real points)")
    t0 = time.perf_counter()
    real = draw_real(config.real, make_generator(derived_seed(config.seed, REAL_STREAM)))
    d = energy.latent_dim
    device = target.device
    gen = make_generator(derived_seed(config.seed, FIT_STREAM), device)
    with frozen(*target.modules()), critic_features(energy.discriminator, config.layer) as run:
        def features(x: Tensor) -> Tensor:  # a conditional D takes the class as a second input
            return run(x, *energy._labels(x.shape[0], x.device))

        mu_r, basis, root, trace_r = _real_statistics(target, features, real, config)
        mu = torch.zeros(d, device=device, requires_grad=True)
        a = torch.eye(d, device=device, requires_grad=True)
        opt = torch.optim.Adam([mu, a], lr=config.lr)
        mean = IterateMean(d, device)
        with step_bar(progress, 1, 1, config.steps, "prior-fit") as advance:
            for step in range(config.steps):
                e = torch.randn(config.batch, d, generator=gen, device=device)
                fd = frechet_terms(features(energy.decode(mu + e @ a.T)), mu_r, basis, root, trace_r) / trace_r
                loss = fd + config.kl * gaussian_kl(mu, a) / d
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step >= config.steps - config.averaged:
                    mean.add(mu, a)
                advance(1)
        if mean.count:
            mu, a = mean.prior()
        with torch.no_grad():
            e = torch.randn(config.batch, d, generator=gen, device=device)
            before = float(frechet_terms(features(energy.decode(e)), mu_r, basis, root, trace_r) / trace_r)
            after = float(frechet_terms(features(energy.decode(mu + e @ a.T)), mu_r, basis, root, trace_r) / trace_r)
    mu, a = mu.detach(), a.detach()
    record = {"relative_fd_prior": before, "relative_fd_fitted": after, "kl": float(gaussian_kl(mu, a)),
              "mean_norm": float(mu.norm()), "scales": [float(s) for s in torch.linalg.svdvals(a)[[0, -1]]],
              "directions": int(basis.shape[1]), "features": int(mu_r.numel()), "averaged": mean.count,
              "evaluations": fit_evaluations(config),
              "seconds": round(time.perf_counter() - t0, 3)}
    return mu, a, record


_MEMO: dict[str, tuple[np.ndarray, np.ndarray, dict]] = {}  # this process's fits, for a cache that is off
MEMO_SIZE = 8


def cached_fit(target: LatentLogit, draw_real, config: PriorFitConfig, *,
               progress: bool = False) -> tuple[Tensor, Tensor, dict]:
    """`fit`, read from the user cache (or this process's last fits) when the same G, D's features, real
    draws, settings and seed were fitted before."""
    from ..io import cache

    energy = target.energy
    if draw_real is None or energy.sigma > 0 or isinstance(energy.label, Tensor):
        return fit(target, draw_real, config, progress=progress)  # refuses with the reason
    real = draw_real(config.real, make_generator(derived_seed(config.seed, REAL_STREAM)))
    settings = {k: v for k, v in config.to_dict().items() if k not in SAMPLING_ONLY}
    parts = {"generator": cache.digest_modules(energy.generator), "features": _feature_probe(target, real, config),
             "real": cache.digest_tensors(real), "settings": settings, "latent_dim": energy.latent_dim,
             "label": energy.label}
    name = cache.key("prior-fit", parts)
    found = _MEMO.get(name)
    if found is None:
        stored = cache.load("prior-fit", parts)
        if stored is not None and stored[0].get("mu", np.zeros(0)).shape == (energy.latent_dim,):
            found = (stored[0]["mu"], stored[0]["a"], stored[1])
    if found is not None:
        mu, a, meta = found
        _remember(name, found)
        return (torch.from_numpy(mu).to(target.device), torch.from_numpy(a).to(target.device),
                {**meta, "cached": True, "evaluations": 0, "seconds": 0.0})
    mu, a, record = fit(target, lambda n, g: real[:n], config, progress=progress)
    arrays = {"mu": mu.cpu().numpy(), "a": a.cpu().numpy()}
    cache.store("prior-fit", parts, arrays, record)
    _remember(name, (arrays["mu"], arrays["a"], record))
    return mu, a, {**record, "cached": False}


PROBE = 64  # real samples whose features stand for D's feature map in the cache key


def _feature_probe(target: LatentLogit, real: Tensor, config: PriorFitConfig) -> str:
    """Digest of D's features of the first real samples: the fit depends on D only through its features, so
    a refitted head (a calibration rewrites D's last layer, after the features) keeps the fit it had."""
    from ..io import cache

    energy = target.energy
    x = real[:PROBE].to(target.device)
    with torch.no_grad(), frozen(*target.modules()), critic_features(energy.discriminator, config.layer) as run:
        return cache.digest_tensors(run(x, *energy._labels(x.shape[0], x.device)))


def _remember(name: str, fitted: tuple) -> None:
    _MEMO.pop(name, None)
    _MEMO[name] = fitted
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))


def fit_evaluations(config: PriorFitConfig) -> int:
    """Passes through D (and G) a fit makes: the real features, the steps, the closing check."""
    return config.real + 2 * config.steps * config.batch + 2 * config.batch


class AtFittedPrior(nn.Module):
    """G at the fitted prior's latents: u -> G(mu + A u), so that u ~ N(0, I) gives G(z) with z ~ N(mu, A A^T)."""

    def __init__(self, generator: nn.Module, mu: Tensor, a: Tensor):
        super().__init__()
        self.generator = generator
        self.register_buffer("mu", mu)
        self.register_buffer("a", a)

    def forward(self, u: Tensor, *extra: Tensor) -> Tensor:
        return self.generator((self.mu + u.flatten(1) @ self.a.T).view_as(u), *extra)


def _langevin(target: LatentLogit, mu: Tensor, a: Tensor, record: dict, n: int, config: PriorFitConfig, *,
              seed: int, progress: bool) -> PosthocResult:
    """DDLS chains on the fitted prior's latents (see the module's note); latents returned as z = mu + A u,
    the fit's passes and record added to the chains'."""
    ddls = get("ddls")
    at_fit = replace(target, energy=target.energy.replaced(generator=AtFittedPrior(target.energy.generator, mu, a)))
    run_config = ddls.config_from(steps=config.langevin_steps, eps=config.langevin_eps, chunk_size=config.chunk_size)
    out = ddls.sample(at_fit, n, run_config, seed=seed, progress=progress)
    z = mu.cpu() + out.latents.flatten(1) @ a.T.cpu()
    return PosthocResult(out.samples, z, out.evaluations + int(record["evaluations"]), {"fit": record, **out.info})


@register("prior-fit", PriorFitConfig, "a Gaussian latent prior fitted so that D's features of G(z) match the "
          "data's (spreads and turns, not only sharpens)", shared={"chunk_size": "chunk_size"}, needs_real=True,
          settings=[
              Setting("--prior-kl", "kl", click.FloatRange(min=0), "Prior-fit: weight of KL(q || N(0, I)) / dim."),
              Setting("--prior-steps", "steps", click.IntRange(min=0), "Prior-fit: Adam steps of the fit."),
              Setting("--prior-lr", "lr", POSITIVE, "Prior-fit: Adam's step size."),
              Setting("--prior-batch", "batch", click.IntRange(min=2), "Prior-fit: latents per fit step."),
              Setting("--prior-average", "average", click.FloatRange(0, 1),
                      "Prior-fit: share of the last fit steps whose priors are averaged (0: the last alone)."),
              Setting("--prior-real", "real", click.IntRange(min=2), "Prior-fit: real samples it matches."),
              Setting("--prior-directions", "directions", click.IntRange(min=1),
                      "Prior-fit: leading principal directions of D's features compared."),
              Setting("--prior-layer", "layer", click.STRING,
                      "Prior-fit: D's layer whose output are the features (empty: the input of D's last layer)."),
              Setting("--prior-seed", "seed", click.IntRange(min=0),
                      "Prior-fit: seed of the fit (--seed: of the samples)."),
              Setting("--prior-langevin-steps", "langevin_steps", click.IntRange(min=0),
                      "Prior-fit: DDLS steps on the fitted prior's latents, on d / --temperature (0: its draws "
                      "as they are)."),
              Setting("--prior-langevin-eps", "langevin_eps", POSITIVE, "Prior-fit: step size of those steps."),
          ])
def sample(target: LatentLogit, n: int, config: PriorFitConfig = PriorFitConfig(), *, seed: int = 0,
           draw_real=None, progress: bool = False) -> PosthocResult:
    """n samples G(mu + A e); chunk k draws e from the stream (seed, k), as the generator alone does (with
    langevin_steps, DDLS chains from there). The fit uses its own seed (config.seed), so runs of other seeds
    share one fit."""
    mu, a, record = cached_fit(target, draw_real, config, progress=progress)
    if config.langevin_steps:
        return _langevin(target, mu, a, record, n, config, seed=seed, progress=progress)
    xs, zs = [], []
    with torch.no_grad(), frozen(*target.modules()):
        for chunk in seeded_chunks(n, config.chunk_size, seed, target.device):
            z = mu + target.prior_sample(chunk.size, chunk.generator) @ a.T
            xs.append(target.decode(z).cpu())
            zs.append(z.cpu())
    return PosthocResult(torch.cat(xs), torch.cat(zs), n + int(record["evaluations"]), {"fit": record})
