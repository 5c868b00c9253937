"""Held-out data for calibration: a fixed set of real and generated samples the fitting never sees.

Real: drawn once from the real source with a stream of its own; the training draws then skip
every sample equal to a held-out one, so on a finite data set (images) the two parts are
disjoint, and on a continuous one (2-D targets) they are apart anyway. Generated: fresh
latents from the same stream, never used for training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .._torch import frozen
from ..errors import DDLSError
from ..training.losses import ns_d_loss

Draw = Callable[[int, torch.Generator], Tensor]
REDRAWS = 50  # tries to fill a training batch from outside the held-out set before giving up


@dataclass(frozen=True)
class HeldOut:
    real: Tensor  # (n, *sample_shape) on the energy's device
    fake: Tensor

    def loss(self, score: Callable[[Tensor], Tensor], batch_size: int = 1024) -> float:
        """The logistic loss -mean log sigmoid(s(real)) - mean log sigmoid(-s(fake)) of scores `score`."""
        with torch.no_grad():
            real = torch.cat([score(x) for x in self.real.split(batch_size)])
            fake = torch.cat([score(x) for x in self.fake.split(batch_size)])
        return float(ns_d_loss(real, fake))


def draw_heldout(energy, draw_real: Draw, n: int, generator: torch.Generator,
                 real: Tensor | None = None) -> HeldOut:
    """n held-out real (or the given `real`) and n generated samples of `energy`'s model."""
    if real is None:
        real = draw_real(n, generator)
    with torch.no_grad(), frozen(*energy.modules()):
        fake = torch.cat([energy.decode(energy.prior_sample(k, generator)) for k in _chunks(n, 1024)])
    return HeldOut(real.to(energy.device), fake)


def excluding(draw_real: Draw, heldout: Tensor) -> Draw:
    """`draw_real` whose samples never equal a held-out one (those are drawn again)."""
    held = {_key(row) for row in heldout.detach().cpu().reshape(len(heldout), -1)}

    def draw(n: int, generator: torch.Generator) -> Tensor:
        kept: list[Tensor] = []
        have = 0
        for _ in range(REDRAWS):
            x = draw_real(n - have, generator)
            flat = x.detach().cpu().reshape(len(x), -1)
            keep = torch.tensor([_key(row) not in held for row in flat], device=x.device)
            kept.append(x[keep])
            have += int(keep.sum())
            if have == n:
                return torch.cat(kept)
        raise DDLSError(f"could not draw real samples outside the held-out set in {REDRAWS} tries: it covers "
                        f"(almost) all the real data; hold out fewer samples")

    return draw


def _key(row: Tensor) -> bytes:
    return row.numpy().tobytes()


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]
