"""Metropolis-Hastings GAN (Turner et al., ICML 2019).

An independence sampler whose proposals are fresh generator samples x' ~ p_g and
whose target is p_data. With D(x) = sigmoid(d(x)) the calibrated discriminator, the
acceptance probability

    min(1, (1/D(x_k) - 1) / (1/D(x') - 1)) = min(1, exp(d(x') - d(x_k)))

needs only the logits. Each output is the state of its own chain after K
proposals. As in the paper, a chain starts at a real sample, which is already
distributed as the target, so there is no burn-in; a chain that never leaves its
real sample is run again over the same proposals from the first one (the paper's
restart), so no output is a real sample. Chains run as a batch on the device.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import click
import torch
from torch import Tensor

from .._torch import frozen, seeded_chunks
from ..errors import DDLSError
from .progress import step_bar
from .registry import Setting, register
from .target import LatentLogit, PosthocResult


@dataclass(frozen=True)
class MHGANConfig:
    chain_length: int = 640  # K, proposals per output sample (the paper's 640)
    chunk_size: int = 5000  # chains run at once

    def __post_init__(self):
        if self.chain_length < 1 or self.chunk_size < 1:
            raise DDLSError(f"MH-GAN chain length and chunk size must be >= 1, got {self.chain_length}, "
                            f"{self.chunk_size}")

    def to_dict(self) -> dict:
        return asdict(self)


class _Chain:
    """Current logit, latent and sample of a batch of chains, and whether each ever moved."""

    def __init__(self, logit: Tensor, z: Tensor, x: Tensor):
        self.logit, self.z, self.x = logit, z, x
        self.moved = torch.zeros_like(logit, dtype=torch.bool)

    def offer(self, logit: Tensor, z: Tensor, x: Tensor, log_u: Tensor) -> Tensor:
        """One MH step for every chain; returns the acceptance probabilities."""
        log_ratio = logit - self.logit
        accept = log_u <= log_ratio
        self.logit = torch.where(accept, logit, self.logit)
        self.z = torch.where(accept[:, None], z, self.z)
        self.x = torch.where(accept.view(-1, *([1] * (x.dim() - 1))), x, self.x)
        self.moved |= accept
        return log_ratio.clamp(max=0).exp()


@register("mhgan", MHGANConfig, "Metropolis-Hastings chains of generator proposals, started at real samples",
          needs_logit=True,
          shared={"chunk_size": "chunk_size"}, needs_real=True, settings=[
              Setting("--mh-chain-length", "chain_length", click.IntRange(min=1),
                      "MH-GAN: generator proposals per output sample."),
          ])
def sample(target: LatentLogit, n: int, config: MHGANConfig = MHGANConfig(), *,
           draw_real: Callable[[int, torch.Generator], Tensor], seed: int = 0, progress: bool = False) -> PosthocResult:
    """n samples, each the end of a K-step chain; chunk k of chains uses the stream (seed, k)."""
    if draw_real is None:
        raise DDLSError("MH-GAN starts its chains at real samples, and this checkpoint names no data source "
                        "(ddls checkpoints name theirs: 2-D data or an image data set)")
    xs, zs = [], []
    accept_sum = torch.zeros((), dtype=torch.float64)
    restarted = 0
    with torch.no_grad(), frozen(*target.modules()), \
            step_bar(progress, n, config.chunk_size, config.chain_length, "mhgan") as advance:
        for _, start, stop, gen in seeded_chunks(n, config.chunk_size, seed, target.device):
            size = stop - start
            real = draw_real(size, gen).to(target.device)
            from_real = _Chain(target.of_samples(real), torch.full((size, target.energy.dim), float("nan"),
                                                                    device=target.device), real)
            from_fake = None  # the restart: the same proposals, starting at the first
            for step in range(config.chain_length):
                z = target.prior_sample(size, gen)
                x = target.decode(z)
                logit = target.of_samples(x)
                log_u = torch.log(torch.rand(size, generator=gen, device=gen.device))
                accept_sum += from_real.offer(logit, z, x, log_u).double().sum().cpu()
                if from_fake is None:
                    from_fake = _Chain(logit, z, x)
                else:
                    from_fake.offer(logit, z, x, log_u)
                advance(1)
            keep = from_real.moved
            restarted += int((~keep).sum())
            xs.append(torch.where(keep.view(-1, *([1] * (real.dim() - 1))), from_real.x, from_fake.x).cpu())
            zs.append(torch.where(keep[:, None], from_real.z, from_fake.z).cpu())
    info = {"acceptance": float(accept_sum) / (n * config.chain_length), "restarted": restarted / n}
    # K proposals through G and D per chain, plus D on its real start
    return PosthocResult(torch.cat(xs), torch.cat(zs), n * (config.chain_length + 1), info)
