"""Discriminator Gradient flow in latent space, DGflow (Ansari et al., ICLR 2021).

The Wasserstein gradient flow of an f-divergence D_f(p_g || p_data), with entropy
regularisation gamma, moved into latent space and discretised:

    z <- z - eta * grad_z f'(rho(G(z))) + sqrt(2 * eta * gamma) * n,   rho = p_g/p_data = exp(-d).

The chain rule gives grad_z f'(rho) = -f''(rho) * rho * grad_z d, so the step is
z + eta * s(d) * grad_z d + noise with s = rho * f''(rho):

- KL:   f(r) = r log r,                           s = 1
- JS:   f(r) = r log r - (r + 1) log((r + 1)/2),  s = 1 / (1 + rho) = sigmoid(d)
- logD: f(r) = (r + 1) log(r + 1) - 2 log 2,      s = rho / (1 + rho) = sigmoid(-d)

Every sample moves towards a higher logit; the paper's defaults are KL, eta 0.1, gamma 0.01,
25 steps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import click
import torch
from torch import Tensor

from .._torch import frozen, seeded_chunks
from ..errors import DDLSError
from ..sampling.samplers import energy_and_grad
from .progress import step_bar
from .registry import POSITIVE, Setting, register
from .target import LatentLogit, PosthocResult

# s(d) = rho * f''(rho) at rho = exp(-d), for each f-divergence
VELOCITY_WEIGHTS = {
    "KL": torch.ones_like,
    "JS": torch.sigmoid,
    "logD": lambda d: torch.sigmoid(-d),
}


@dataclass(frozen=True)
class DGflowConfig:
    steps: int = 25
    eta: float = 0.1
    gamma: float = 0.01  # entropy regularisation: the noise is sqrt(2 eta gamma) n
    f_div: str = "KL"
    chunk_size: int = 5000

    def __post_init__(self):
        if self.f_div not in VELOCITY_WEIGHTS:
            raise DDLSError(f"unknown f-divergence {self.f_div!r}; choose one of {', '.join(VELOCITY_WEIGHTS)}")
        if self.steps < 0 or not self.eta > 0 or not self.gamma >= 0 or self.chunk_size < 1:
            raise DDLSError("DGflow needs steps >= 0, eta > 0, gamma >= 0 and chunk size >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def step(target: LatentLogit, z: Tensor, config: DGflowConfig, generator: torch.Generator, *,
         eta: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
    """One discretised step of the flow for a batch of latents. Several settings in one batch (`sample_etas`)
    give each chain its own step size `eta` (B,) and the `noise` (B, D) its own run would draw."""
    d, grad = energy_and_grad(target, z)  # the logit and its gradient, as for an energy
    weight = VELOCITY_WEIGHTS[config.f_div](d)
    if noise is None:
        noise = torch.randn(z.shape, generator=generator, device=generator.device)
    if eta is None:
        return z + config.eta * weight[:, None] * grad + math.sqrt(2 * config.eta * config.gamma) * noise
    eta = eta[:, None]
    return z + eta * weight[:, None] * grad + (2 * eta * config.gamma).sqrt() * noise


def sample_etas(target: LatentLogit, n: int, config: DGflowConfig, etas: list[float], *, seed: int = 0,
                batch_size: int | None = None) -> list[PosthocResult]:
    """`sample(target, n, replace(config, eta=e), seed=seed)` for each e in `etas`, as one batch: every run
    starts from chunk k's prior draws and takes its noise, so they share them; each step evaluates G and D
    once for all (`batch_size` chains at a time, default the chunk size). Latents that went NaN/inf are
    returned as they are, for the caller to refuse."""
    from ..sampling.batched import InBatches

    k = len(etas)
    xs, zs = [[] for _ in etas], [[] for _ in etas]
    with frozen(*target.modules()):
        for _, start, stop, gen in seeded_chunks(n, config.chunk_size, seed, target.device):
            m = stop - start
            z = target.prior_sample(m, gen)
            eta = torch.tensor(etas, device=z.device, dtype=z.dtype).repeat_interleave(m)
            z, flow = z.repeat(k, 1), InBatches(target, batch_size or config.chunk_size)
            for _ in range(config.steps):
                noise = torch.randn((m, z.shape[1]), generator=gen, device=gen.device)
                z = step(flow, z, config, gen, eta=eta, noise=noise.repeat(k, 1))
            x = flow.decode(z)
            for j in range(k):
                xs[j].append(x[j * m:(j + 1) * m])
                zs[j].append(z[j * m:(j + 1) * m].cpu())
    return [PosthocResult(torch.cat(xs[j]), torch.cat(zs[j]), 2 * n * config.steps, {}) for j in range(k)]


@register("dgflow", DGflowConfig, "discriminator gradient flow of the prior latents", shared={"chunk_size": "chunk_size"},
          settings=[
              Setting("--dgflow-steps", "steps", click.IntRange(min=0), "DGflow: steps."),
              Setting("--dgflow-eta", "eta", POSITIVE, "DGflow: step size."),
              Setting("--dgflow-gamma", "gamma", click.FloatRange(min=0),
                      "DGflow: entropy regularisation (noise sqrt(2 eta gamma))."),
              Setting("--dgflow-f", "f_div", click.Choice(list(VELOCITY_WEIGHTS)), "DGflow: f-divergence."),
          ])
def sample(target: LatentLogit, n: int, config: DGflowConfig = DGflowConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n refined samples; chunk k starts from the prior draws of stream (seed, k), as DDLS does."""
    if not target.calibration.differentiable:
        raise DDLSError(f"DGflow follows gradients of d, and {target.calibration.kind} calibration has none; "
                        f"use raw, logistic or finetune")
    xs, zs = [], []
    with frozen(*target.modules()), step_bar(progress, n, config.chunk_size, config.steps, "dgflow") as advance:
        for _, start, stop, gen in seeded_chunks(n, config.chunk_size, seed, target.device):
            z = target.prior_sample(stop - start, gen)
            for _ in range(config.steps):
                z = step(target, z, config, gen)
                advance(1)
            if not torch.isfinite(z).all():
                raise DDLSError(f"DGflow latents became NaN/inf; try a smaller eta (got {config.eta:g})")
            with torch.no_grad():
                xs.append(target.decode(z).cpu())
            zs.append(z.cpu())
    return PosthocResult(torch.cat(xs), torch.cat(zs), 2 * n * config.steps, {})
