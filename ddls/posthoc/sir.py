"""Importance resampling of generator samples by the discriminator (SIR; Grover et al., NeurIPS 2019).

With d(x) = log p_data(x)/p_g(x), weighting generator samples by w = exp(d) turns p_g into
p_data. SIR draws a pool of K * n generator samples and keeps n of them with probabilities
proportional to w. Here they are kept *without* replacement (Gumbel top-k: the n largest
d(x)/T + Gumbel noise; Kool et al., ICML 2019), so no sample is repeated; as K grows this is
the textbook SIR, which draws from p_g * w / Z.

The temperature flattens the weights to exp(d/T). A discriminator fine-tuned to near-perfect
accuracy gives logits far wider than the true log-ratio (its held-out loss near 0 means it
tells almost every fake apart), and exp(d) then keeps a handful of types; T > 1 trades the
correction for diversity. Only d is used, never its gradient, so the samples stay the
generator's own: nothing can walk into the critic's blind spots as a gradient step can.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import click
import torch

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from .progress import step_bar
from .registry import Setting, register
from .target import LatentLogit, PosthocResult


@dataclass(frozen=True)
class SIRConfig:
    pool_factor: int = 10  # K: generator proposals per kept sample
    batch_size: int = 5000  # proposals scored at once

    def __post_init__(self):
        if self.pool_factor < 1 or self.batch_size < 1:
            raise DDLSError(f"SIR pool factor and batch size must be >= 1, got {self.pool_factor}, "
                            f"{self.batch_size}")

    def to_dict(self) -> dict:
        return asdict(self)


@register("sir", SIRConfig, "importance resampling: keep n of K*n generator samples by weight exp(d/T)",
          shared={"chunk_size": "batch_size"}, needs_logit=True, settings=[
              Setting("--sir-pool-factor", "pool_factor", click.IntRange(min=1),
                      "SIR: generator proposals per kept sample (the pool is this times n)."),
          ])
def sample(target: LatentLogit, n: int, config: SIRConfig = SIRConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n of n * pool_factor proposals, drawn from one random stream; the n largest keys are kept as the
    pool streams past (the top n of a union is the top n of the parts' top n), so memory is O(n)."""
    gen = make_generator(derived_seed(seed, 0), target.device)
    pool = n * config.pool_factor
    keys = torch.empty(0, device=target.device)
    latents = torch.empty(0, target.energy.dim, device=target.device)
    logits = torch.empty(0, device=target.device)
    size = min(config.batch_size, pool)
    with torch.no_grad(), frozen(*target.modules()), \
            step_bar(progress, pool, size, 1, "sir") as advance:
        for start in range(0, pool, size):
            z = target.prior_sample(min(size, pool - start), gen)
            d = target(z)
            if not torch.isfinite(d).all():
                raise DDLSError("the discriminator gave NaN/inf logits; check the checkpoint")
            gumbel = -torch.log(-torch.log(torch.rand(len(z), generator=gen, device=gen.device).clamp_min(1e-30)))
            keys = torch.cat([keys, d + gumbel])
            latents, logits = torch.cat([latents, z]), torch.cat([logits, d])
            if len(keys) > n:
                top = torch.topk(keys, n).indices
                keys, latents, logits = keys[top], latents[top], logits[top]
            advance(1)
        order = torch.randperm(n, generator=gen, device=gen.device)  # no ranking left in the output order
        latents, logits = latents[order], logits[order]
        samples = torch.cat([target.decode(z).cpu() for z in latents.split(config.batch_size)])
    info = {"pool": pool, "kept_logit_mean": float(logits.mean()), "logit_spread": float(logits.std())
            if n > 1 else 0.0}
    # the pool through G and D, the kept latents through G once more
    return PosthocResult(samples, latents.cpu(), pool + n, info)
