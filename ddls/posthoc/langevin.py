"""Langevin in latent space as post-hoc methods: ddls (ULA, the DDLS update), mala, and the
generator alone (no steps) as the baseline row of `compare`. They run through the chain
driver (ddls.sampling.driver) on the energy of the calibrated logit."""
from __future__ import annotations

from dataclasses import replace
from functools import partial

from ..sampling.driver import RunConfig
from .registry import register
from .target import LatentLogit, PosthocResult


def config_from_options(kernel: str, *, steps: int = 500, eps: float = 0.01, noise_scale: float = 1.0,
                        chunk_size: int = 5000, **_) -> RunConfig:
    """The RunConfig of a Langevin method; n and seed are set by each run. `kernel` None: no steps."""
    return RunConfig(n=1, steps=steps if kernel else 0, method=kernel or "ula", eps=eps, noise_scale=noise_scale,
                     chunk_size=chunk_size)


def sample(kernel: str | None, target: LatentLogit, n: int, config: RunConfig, *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n chains of `kernel` ('ula' or 'mala'), or with kernel None the generator on the same prior latents."""
    from ..sampling.driver import sample as run_chains

    run_config = replace(config, n=n, seed=seed, method=kernel or "ula", steps=config.steps if kernel else 0)
    result = run_chains(target.as_energy() if kernel else target.energy, run_config, progress=progress)
    info = {} if result.acceptance is None else {"acceptance": float(result.acceptance.mean())}
    # each step evaluates energy and gradient once (a forward and a backward), plus once at the start
    evaluations = 2 * n * (run_config.steps + 1) if kernel else n
    return PosthocResult(result.samples, result.latents, evaluations, info)


def _entry(name: str, kernel: str | None, summary: str, **kw) -> None:
    register(name, RunConfig, summary, make_config=partial(config_from_options, kernel), **kw)(partial(sample, kernel))


_entry("ddls", "ula", "Langevin dynamics on the latent energy (DDLS)")
_entry("mala", "mala", "Metropolis-adjusted Langevin, as ddls plus an accept/reject step")
_entry("generator", None, "the generator alone, on the prior latents the others start from", listed=False)
