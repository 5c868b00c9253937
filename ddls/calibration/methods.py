"""One entry point to every calibration: `calibrate(energy, method, draw_real, ...) -> CalibrationResult`.

`ddls calibrate` (run.py) and the post-hoc samplers' `--calibration` (posthoc/target.py) both
call it, so the same method, seed and settings give the same result either way.

- raw: nothing fitted;
- platt ('logistic'): a * score + b fitted on n real and n generated samples (maps.py);
- isotonic: a monotone step function of the score, fitted on the same samples (maps.py);
- finetune: D itself fine-tuned, early-stopped on held-out samples (finetune.py);
- head: D's last layer refitted exactly as a logistic regression on D's features (head.py);
- dcd: D fine-tuned by contrastive divergence against DDLS's own samples (dcd.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from ..sampling.energy import LatentEnergy
from .dcd import DCDConfig, dcd
from .finetune import FinetuneConfig, finetune
from .head import HeadConfig, fit_head
from .heldout import Draw
from .maps import RAW, Calibration, canonical, fit

FIT_STREAM = 7_000_001  # key of the platt/isotonic samples' random stream (see derived_seed)


@dataclass(frozen=True)
class CalibrationResult:
    """What a calibration made: the logit is map(energy.score(x))."""

    energy: LatentEnergy  # the same generator; the fine-tuned discriminator for finetune, else the input's
    map: Calibration  # put on top of energy.score: the fitted map for platt/isotonic, else the identity
    record: dict  # what was fitted and how it went
    evaluations: int  # passes through the discriminator spent

    def stored_map(self) -> Calibration | None:
        """The whole score map (the energy's own, then `map`), as a checkpoint stores it; None for none."""
        own = self.energy.score_map if self.energy.score_map is not None else RAW
        whole = own.then(self.map)
        return None if whole.identity else whole


@dataclass(frozen=True)
class Settings:
    n: int = 5000  # platt/isotonic: real and generated samples, each
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    heldout_real: Tensor | None = None
    progress: bool = False
    chain_steps: int = 5  # dcd: Langevin steps of the negatives' chains per update
    chain_eps: float = 0.01


def _raw(energy: LatentEnergy, draw_real: Draw | None, s: Settings) -> CalibrationResult:
    return CalibrationResult(energy, Calibration("raw"), RAW.to_dict(), 0)


def _fitted(kind: str) -> Callable[[LatentEnergy, Draw, Settings], CalibrationResult]:
    def method(energy: LatentEnergy, draw_real: Draw, s: Settings) -> CalibrationResult:
        gen = make_generator(derived_seed(s.seed, FIT_STREAM), energy.device)
        with torch.no_grad(), frozen(*energy.modules()):
            real = energy.score(draw_real(s.n, gen).to(energy.device))
            fake = energy.score(energy.decode(energy.prior_sample(s.n, gen)))
        cal = fit(kind, real, fake)
        return CalibrationResult(energy, cal, cal.to_dict(), 2 * s.n)

    return method


def _finetune(energy: LatentEnergy, draw_real: Draw, s: Settings) -> CalibrationResult:
    tuned, record, evaluations = finetune(energy, draw_real, s.finetune, heldout_real=s.heldout_real,
                                          progress=s.progress)
    return CalibrationResult(tuned, Calibration("finetune"), record, evaluations)


def _head(energy: LatentEnergy, draw_real: Draw, s: Settings) -> CalibrationResult:
    config = HeadConfig(n=s.n, n_heldout=s.finetune.n_heldout, seed=s.seed)
    tuned, record, evaluations = fit_head(energy, draw_real, config, heldout_real=s.heldout_real, progress=s.progress)
    return CalibrationResult(tuned, Calibration("head"), record, evaluations)


def _dcd(energy: LatentEnergy, draw_real: Draw, s: Settings) -> CalibrationResult:
    config = DCDConfig(s.finetune, s.chain_steps, s.chain_eps)
    tuned, record, evaluations = dcd(energy, draw_real, config, heldout_real=s.heldout_real, progress=s.progress)
    return CalibrationResult(tuned, Calibration("dcd"), record, evaluations)


METHODS: dict[str, Callable[[LatentEnergy, Draw | None, Settings], CalibrationResult]] = {
    "raw": _raw, "platt": _fitted("platt"), "isotonic": _fitted("isotonic"), "finetune": _finetune, "head": _head,
    "dcd": _dcd}
NEEDS_REAL = ("platt", "isotonic", "finetune", "head", "dcd")


def calibrate(energy_or_model, method: str, draw_real: Draw | None = None, *, n: int = 5000, n_heldout: int = 1000,
              steps: int = 2000, lr: float = 1e-4, batch_size: int = 256, eval_every: int = 50, patience: int = 5,
              seed: int = 0, heldout_real: Tensor | None = None, progress: bool = False,
              layers: str = "all", noise: float = 0.0, chain_steps: int = 5,
              chain_eps: float = 0.01) -> CalibrationResult:
    """Calibrate the discriminator of a LatentEnergy (or a Model: its energy) by `method`.

    draw_real(n, generator) -> n real samples; needed by every method but raw. n: samples each for
    platt/isotonic and head. The rest set fine-tuning (see FinetuneConfig); heldout_real, when given, is
    the held-out real set (else drawn from draw_real, and the fine-tuning never sees it).
    layers: 'all' fine-tunes every parameter of D, 'last' only its last layer; noise: the std of Gaussian
    noise added to D's training inputs (not to the held-out ones); chain_steps, chain_eps: dcd's Langevin steps
    per update and their step size. The inputs are left as they were."""
    energy = energy_or_model if isinstance(energy_or_model, LatentEnergy) else energy_or_model.energy()
    method = canonical(method)
    if method in NEEDS_REAL and draw_real is None:
        raise DDLSError(f"{method} calibration needs real samples, and none were given (a ddls checkpoint "
                        f"names its data: 2-D data or an image data set)")
    if n < 2:
        raise DDLSError(f"calibration needs at least 2 samples of each kind, got {n}")
    config = FinetuneConfig(steps=steps, batch_size=batch_size, lr=lr, n_heldout=n_heldout, eval_every=eval_every,
                            patience=patience, seed=seed, layers=layers, noise=noise)
    return METHODS[method](energy, draw_real, Settings(n=n, seed=seed, finetune=config, heldout_real=heldout_real,
                                                       progress=progress, chain_steps=chain_steps,
                                                       chain_eps=chain_eps))
