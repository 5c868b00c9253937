"""Discriminator Rejection Sampling (Azadi et al., ICLR 2019).

With d(x) = log p_data(x)/p_g(x) and M its maximum, accepting a generated x with
probability exp(d(x) - M) draws exactly from p_data. DRS estimates M from a pilot
batch (raising it whenever a larger logit turns up) and, to keep the acceptance
rate useful when d is imperfect, accepts with sigmoid(F(x)) where

    F(x) = d(x) - M - log(1 - exp(d(x) - M - eps)) - gamma.

sigmoid(F) with gamma = 0 and eps -> 0 is exactly exp(d - M). The paper sets gamma
to a percentile of F in each batch (95 in the MH-GAN authors' code): the samples
above it are accepted with probability over 1/2 and the rest with less, whatever
the scale of d, so the acceptance rate stays usable when d is far from calibrated.
The price is exactness: gamma_percentile=None keeps the exact rule.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import click
import torch
from torch import Tensor

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from .registry import Setting, register
from .target import LatentLogit, PosthocResult


@dataclass(frozen=True)
class DRSConfig:
    pilot: int = 10000  # generated samples whose largest logit first estimates M
    gamma_percentile: float | None = 95.0  # None: gamma = 0, exact rejection sampling
    epsilon: float = 1e-6
    batch_size: int = 5000  # proposals per batch (the percentile is taken per batch)
    max_logit: float | None = None  # a known M; skips the pilot
    max_proposals_per_sample: int = 1000  # give up below an acceptance rate of 1/1000

    def __post_init__(self):
        if self.pilot < 1 and self.max_logit is None:
            raise DDLSError(f"DRS pilot size must be >= 1, got {self.pilot}")
        if self.gamma_percentile is not None and not 0 <= self.gamma_percentile <= 100:
            raise DDLSError(f"DRS gamma percentile must be in [0, 100] or none, got {self.gamma_percentile}")
        if not self.epsilon >= 0 or self.batch_size < 1:
            raise DDLSError("DRS epsilon must be >= 0 and batch size >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def acceptance_logit(logit: Tensor, max_logit: Tensor, epsilon: float) -> Tensor:
    """F(x) before the gamma shift: the logit of exp(d - M), kept finite by epsilon."""
    delta = logit - max_logit
    return delta - torch.log1p(-torch.exp(delta - epsilon))


class PercentOrNone(click.ParamType):
    """A percentile in [0, 100], or 'none'."""

    name = "PERCENT|none"

    def convert(self, value, param, ctx):
        if value is None or str(value).lower() == "none":
            return None
        try:
            v = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number in [0, 100] or 'none'", param, ctx)
        if not 0 <= v <= 100:
            self.fail(f"{v:g} is not in [0, 100]", param, ctx)
        return v


@register("drs", DRSConfig, "discriminator rejection sampling", shared={"chunk_size": "batch_size"},
          needs_logit=True, settings=[
    Setting("--drs-pilot", "pilot", click.IntRange(min=1),
            "DRS: generated samples whose largest logit first estimates the maximum."),
    Setting("--drs-gamma-percentile", "gamma_percentile", PercentOrNone(),
            "DRS: shift F by this percentile of each batch ('none': exact rejection sampling)."),
])
def sample(target: LatentLogit, n: int, config: DRSConfig = DRSConfig(), *, seed: int = 0) -> PosthocResult:
    """n accepted samples; proposals are drawn in batches from one random stream."""
    gen = make_generator(derived_seed(seed, 0), target.device)
    kept_x, kept_z, kept = [], [], 0
    proposals = 0
    evaluations = 0
    with torch.no_grad(), frozen(*target.modules()):
        if config.max_logit is None:
            best = torch.tensor(-float("inf"), device=target.device)
            for start in range(0, config.pilot, config.batch_size):
                size = min(config.batch_size, config.pilot - start)
                best = torch.maximum(best, target(target.prior_sample(size, gen)).max())
            evaluations += config.pilot
        else:
            best = torch.tensor(float(config.max_logit), device=target.device)
        gammas = []
        while kept < n:
            if proposals >= config.max_proposals_per_sample * n:
                raise DDLSError(f"DRS accepted {kept} of {proposals} proposals; the discriminator rejects "
                                f"almost everything (try logistic calibration, or a DRS gamma percentile)")
            z = target.prior_sample(config.batch_size, gen)
            x = target.decode(z)
            logit = target.of_samples(x)
            # M grows as larger logits are seen, in proposal order
            running_max = torch.maximum(torch.cummax(logit, 0).values, best)
            f = acceptance_logit(logit, running_max, config.epsilon)
            if config.gamma_percentile is not None:
                gamma = torch.quantile(f, config.gamma_percentile / 100)
                f = f - gamma
                gammas.append(gamma)
            accept = torch.rand(len(z), generator=gen, device=gen.device) < torch.sigmoid(f)
            best = running_max[-1]
            proposals += len(z)
            evaluations += len(z)
            kept_x.append(x[accept].cpu())
            kept_z.append(z[accept].cpu())
            kept += int(accept.sum())
    samples, latents = torch.cat(kept_x)[:n], torch.cat(kept_z)[:n]
    info = {"acceptance": kept / proposals, "max_logit": float(best), "proposals": proposals,
            "gamma": float(torch.stack(gammas).mean()) if gammas else 0.0}
    return PosthocResult(samples, latents, evaluations, info)
