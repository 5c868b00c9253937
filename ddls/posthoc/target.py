"""What every post-hoc sampler acts on: latents, the generator, and a calibrated logit d(G(z)).

The samplers of this package (DRS, MH-GAN, DOT, DGflow) see a GAN through a
`LatentLogit`: prior draws z, samples G(z), and d(x), an estimate of
log p_data(x)/p_g(x) after calibration. They return a `PosthocResult`.
`make_target(energy, calibration)` makes one, with the record of its calibration's fit in `.record`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ..sampling.energy import LatentEnergy
from ..errors import DDLSError
from ..calibration.maps import RAW, Calibration


@dataclass(frozen=True)
class LatentLogit:
    """z -> d(G(z)) / T, with d the calibrated score of `energy` and T its temperature."""

    energy: LatentEnergy
    calibration: Calibration = RAW
    record: dict = field(default_factory=dict, compare=False)  # the calibration's fit: what, and its cost

    def __iter__(self):
        """`target, record = make_target(...)`, as make_target once returned a pair; use `.record` instead."""
        warnings.warn("make_target returns the LatentLogit itself; read the fit's record as `target.record` "
                      "instead of unpacking a pair", DeprecationWarning, stacklevel=2)
        return iter((self, self.record))

    @property
    def device(self) -> torch.device:
        return self.energy.device

    def modules(self):
        return self.energy.modules()

    def prior_sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.energy.prior_sample(n, generator)

    def decode(self, z: Tensor) -> Tensor:
        return self.energy.decode(z)

    def of_samples(self, x: Tensor) -> Tensor:
        """The calibrated logit of samples x, shape (B,)."""
        return self.calibration(self.energy.score(x)) / self.energy.temperature

    def __call__(self, z: Tensor) -> Tensor:
        return self.of_samples(self.decode(z))

    def as_energy(self) -> LatentEnergy:
        """The DDLS energy -log p0(z) - d(G(z)) for this calibrated logit.

        A Platt (logistic) calibration a*s + b is the score at temperature T/a (b is a constant
        energy shift, which no sampler sees); a non-differentiable one cannot drive Langevin.
        """
        if not self.calibration.differentiable:
            raise DDLSError(f"{self.calibration.kind} calibration is a step function, so gradient samplers "
                            f"(ddls, mala, dot, dgflow) cannot use it; choose raw, platt or finetune")
        if self.calibration.kind != "platt":
            return self.energy
        if not self.calibration.a > 0:
            raise DDLSError(f"Platt (logistic) calibration found slope {self.calibration.a:.3g} <= 0: the discriminator "
                            f"ranks generated samples above real ones; it cannot guide sampling")
        return self.energy.replaced(temperature=self.energy.temperature / self.calibration.a)


@dataclass
class PosthocResult:
    """Kept samples, their latents, and what it cost."""

    samples: Tensor  # (n, *sample_shape), on the CPU
    latents: Tensor  # (n, dim), on the CPU
    evaluations: int  # passes through d(G(.)): each forward and each backward counts one
    info: dict = field(default_factory=dict)  # per method: acceptance, k_eff, ...

    def arrays(self) -> dict:
        return {"x": self.samples.numpy(), "z": self.latents.numpy()}


DrawReal = Callable[[int, torch.Generator], Tensor]  # n real samples, drawn with the given generator


def make_target(energy: LatentEnergy, calibration: str, draw_real: DrawReal | None = None, *, n: int = 5000, seed: int = 0,
                finetune_steps: int = 2000, data: str | None = None) -> LatentLogit:
    """The LatentLogit for `calibration` (raw, platt/logistic, isotonic, finetune), by ddls.calibration.calibrate:
    the same fit `ddls calibrate` makes for the same seed. n: samples each for platt/isotonic.

    data: a name for what draw_real draws (a data set, or a file): with it the fit is kept in the user cache
    (ddls.io.cache) under the networks, calibration, n, seed, schedule and data, so tune, compare and sample
    of one checkpoint fit it once. Its `.record` says what was fitted: {'calibration': ..., 'evaluations':
    passes through D spent (0 when read from the cache)}.
    """
    from ..calibration import calibrate

    if calibration != "raw" and draw_real is None:
        raise DDLSError(f"{calibration} calibration needs real samples, and this checkpoint names no data "
                        f"source; pass --data (a .npy of your own real points, or a data set) or use raw calibration")
    if calibration != "raw" and data is not None:
        from .calibration_cache import cached_calibration

        return LatentLogit(*cached_calibration(energy, calibration, draw_real, n=n, seed=seed,
                                               finetune_steps=finetune_steps, data=data))
    result = calibrate(energy, calibration, draw_real, n=n, seed=seed, steps=finetune_steps)
    return LatentLogit(result.energy, result.map, {"calibration": result.record, "evaluations": result.evaluations})
