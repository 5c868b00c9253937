"""Post-hoc samplers for a trained GAN, all behind one call: `run(method, ...)`.

- ddls, mala: Langevin in latent space on -log p0(z) - d(G(z)) (ddls.driver);
- drs: discriminator rejection sampling (drs.py);
- mhgan: Metropolis-Hastings with generator proposals (mhgan.py);
- dot: discriminator optimal transport in latent space (dot.py);
- dgflow: discriminator gradient flow in latent space (dgflow.py).

Each takes a LatentLogit (target.py: generator, calibrated logit, prior) and a
seed, and returns a PosthocResult: samples, latents, network evaluations, info.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch
from torch import Tensor

from ..errors import DDLSError
from . import dgflow
from . import dot
from . import drs
from . import mhgan
from .target import LatentLogit, PosthocResult, make_target

METHODS = ("ddls", "mala", "drs", "mhgan", "dot", "dgflow")
GENERATOR = "generator"  # the generator alone, as a baseline row
CALIBRATION_KEYS = ("calibration", "calibration_n", "finetune_steps")  # options of the calibration, not of a method


def run(method: str, target: LatentLogit, n: int, config: Any, *, seed: int = 0,
        draw_real: Callable[[int, torch.Generator], Tensor] | None = None,
        progress: bool = False) -> PosthocResult:
    """Draw n samples with `method`; `config` is its settings (see `default_config`)."""
    from ..sampling.driver import sample as langevin

    if method in ("ddls", "mala", GENERATOR):
        run_config = replace(config, n=n, seed=seed, method="mala" if method == "mala" else "ula",
                             steps=0 if method == GENERATOR else config.steps)
        result = langevin(target.as_energy() if method != GENERATOR else target.energy, run_config,
                          progress=progress)
        info = {} if result.acceptance is None else {"acceptance": float(result.acceptance.mean())}
        # each step evaluates energy and gradient once (a forward and a backward), plus once at the start
        evaluations = n if method == GENERATOR else 2 * n * (run_config.steps + 1)
        return PosthocResult(result.samples, result.latents, evaluations, info)
    if method == "drs":
        return drs.sample(target, n, config, seed=seed)
    if method == "mhgan":
        return mhgan.sample(target, n, config, draw_real=draw_real, seed=seed)
    if method == "dot":
        return dot.sample(target, n, config, seed=seed)
    if method == "dgflow":
        return dgflow.sample(target, n, config, seed=seed)
    raise DDLSError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def default_config(method: str, *, chunk_size: int = 5000, steps: int = 500, eps: float = 0.01,
                   noise_scale: float = 1.0, drs_pilot: int = 10000, drs_gamma_percentile: float | None = 95.0,
                   mh_chain_length: int = 640, dot_steps: int = 100, dot_lr: float = 0.05,
                   dot_optimizer: str = "sgd", dot_pairs: int = 100, dgflow_steps: int = 25,
                   dgflow_eta: float = 0.1, dgflow_gamma: float = 0.01, dgflow_f: str = "KL"):
    """The settings of `method` from the command line's flat options (the others are ignored)."""
    from ..sampling.driver import RunConfig

    if method in ("ddls", "mala", GENERATOR):
        return RunConfig(n=1, steps=steps, eps=eps, noise_scale=noise_scale, chunk_size=chunk_size)
    if method == "drs":
        return drs.DRSConfig(pilot=drs_pilot, gamma_percentile=drs_gamma_percentile, batch_size=chunk_size)
    if method == "mhgan":
        return mhgan.MHGANConfig(chain_length=mh_chain_length, chunk_size=chunk_size)
    if method == "dot":
        return dot.DOTConfig(steps=dot_steps, lr=dot_lr, optimizer=dot_optimizer, pairs=dot_pairs,
                             chunk_size=chunk_size)
    if method == "dgflow":
        return dgflow.DGflowConfig(steps=dgflow_steps, eta=dgflow_eta, gamma=dgflow_gamma, f_div=dgflow_f,
                                   chunk_size=chunk_size)
    raise DDLSError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


__all__ = ["GENERATOR", "LatentLogit", "METHODS", "PosthocResult", "default_config", "make_target", "run"]
