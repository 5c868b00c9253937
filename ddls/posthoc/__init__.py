"""Post-hoc samplers for a trained GAN, all behind one call: `run(method, ...)`.

- ddls, mala: Langevin in latent space on -log p0(z) - d(G(z)) (langevin.py, through ddls.sampling.driver);
- drs: discriminator rejection sampling (drs.py);
- mhgan: Metropolis-Hastings with generator proposals (mhgan.py);
- dot: discriminator optimal transport in latent space (dot.py);
- dgflow: discriminator gradient flow in latent space (dgflow.py);
- sir: importance resampling of a pool of generator samples by exp(d/T) (sir.py);
- ex2mcmc: i-SIR moves from the prior between MALA steps on the latent energy (ex2mcmc.py);
- flex2mcmc: Ex2MCMC with a normalizing flow (flows.py) fitted to the chains as the proposal, then frozen
  (flex2mcmc.py);
- polarity, magnet: prior latents resampled by G's Jacobian volume to the power rho (polarity.py);
- collab: an activation inside G refined by D's gradient, leaving G's range (collab.py);
- prior-fit: a Gaussian latent prior fitted so that D's features of G(z) match the data's (prior_fit.py).

Each takes a LatentLogit (target.py: generator, calibrated logit, prior) and a seed, and
returns a PosthocResult: samples, latents, network evaluations, info. Each module registers
itself in registry.py; `register` adds a method of one's own (see its docstring).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from . import langevin  # noqa: F401  (ddls, mala, generator: registered first, so listed first)
from . import drs  # noqa: F401  (each import registers its method)
from . import mhgan  # noqa: F401
from . import dot  # noqa: F401
from . import dgflow  # noqa: F401
from . import sir  # noqa: F401
from . import polarity  # noqa: F401  (polarity, magnet)
from . import collab  # noqa: F401
from . import ex2mcmc  # noqa: F401
from . import flex2mcmc  # noqa: F401
from . import prior_fit  # noqa: F401
from .registry import Setting, get, names, option_names, register, unregister
from .target import LatentLogit, PosthocResult, make_target

GENERATOR = "generator"  # the generator alone, as a baseline row
CALIBRATION_KEYS = ("calibration", "calibration_n", "finetune_steps")  # options of the calibration, not of a method
LOG_RATIO_KINDS = ("gan", "lsgan")  # energies whose score estimates log p_data/p_g (and every f-GAN's)


def logit_warning(method: str, energy_kind: str, calibration: str) -> str | None:
    """A line for a method that weighs samples by exp(d) run on a raw score that is not a log-ratio."""
    if calibration != "raw" or not get(method).needs_logit:
        return None
    if energy_kind in LOG_RATIO_KINDS or energy_kind.startswith("fgan-"):
        return None
    return (f"warning: {method} weighs samples by exp(d), and this checkpoint's {energy_kind!r} score is not a "
            f"log-ratio (on a WGAN-GP critic DRS made FID 12 -> 151); use --calibration platt or `ddls tune`")


def __getattr__(name: str):
    if name == "METHODS":  # read when asked, so methods registered later count
        return names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(method: str, target: LatentLogit, n: int, config: Any, *, seed: int = 0,
        draw_real: Callable[[int, torch.Generator], Tensor] | None = None,
        progress: bool = False) -> PosthocResult:
    """Draw n samples with `method`; `config` is its settings (see `default_config`)."""
    entry = get(method)
    given = {"draw_real": draw_real, "progress": progress}
    return entry.sample(target, n, config, seed=seed, **{k: given[k] for k in entry.inputs})


def default_config(method: str, **options: Any) -> Any:
    """The settings of `method` from the command line's flat options (chunk_size, steps, eps,
    noise_scale, drs_pilot, dot_lr, ...); those of other methods are ignored, missing ones take
    the method's defaults."""
    unknown = sorted(set(options) - option_names())
    if unknown:
        raise TypeError(f"default_config() got unknown option(s) {', '.join(unknown)}")
    return get(method).config_from(**options)


__all__ = ["CALIBRATION_KEYS", "GENERATOR", "LatentLogit", "METHODS", "PosthocResult", "Setting", "default_config",
           "make_target", "register", "run", "unregister"]
