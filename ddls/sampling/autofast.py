"""`--fast auto`: pick, per model and chunk size, the fastest fast path that is numerically safe.

The paths are a registry: a name, the switches (ddls.sampling.fastpath.FastPath), when the
path applies (device, model), and the precision its networks run in. Adding a path is one
`register(...)`.

How auto chooses:
- On the CPU: the plain path, without probing. Measured with bench/langevin.py on the shipped
  Fashion-MNIST SNGAN and 25-Gaussian MLP, bf16 autocast and torch.compile were both slower
  than plain float32 (docs/benchmarks.md).
- On CUDA: every path that applies is timed for a few steps on the run's own chunk size (a
  short probe before the first chunk, on scratch latents and a scratch generator, so the run
  draws the same chains whichever path wins). A path in reduced precision takes part only
  when `ddls.sampling.precision` found its samples within noise of float32 ones for this
  model. The fastest wins.

What was chosen, and why, goes into the output's meta (`fast`) and the progress line.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from .._torch import make_generator
from ..errors import DDLSError
from .driver import RunConfig, run_chain
from .energy import LatentEnergy
from .fastpath import FastPath, prepare
from .samplers import make_sampler

MODES = ("auto", "off")
PROBE_STEPS = 8  # timed steps per path: per-step cost = (T(2k) - T(k)) / k, so capture and compile drop out
PROBE_SEED = 977  # scratch latents and noise of the probe: the run's own chains are untouched
PROBE_SHARE = 0.1  # probe only when it costs at most this share of the run's sample-steps


def _cuda(energy: LatentEnergy) -> bool:
    return energy.device.type == "cuda"


def _has_conv(energy: LatentEnergy) -> bool:
    return any(p.dim() == 4 for m in energy.modules() for p in m.parameters())


@dataclass(frozen=True)
class PathSpec:
    """One fast path: its switches, when it applies, the precision its networks run in."""

    name: str
    fast: FastPath
    applies: Callable[[LatentEnergy], bool]
    precision: str = "fp32"  # 'fp32' needs no check; 'bf16' / 'fp16' must pass ddls.sampling.precision

    def build(self, energy: LatentEnergy):
        return prepare(energy, self.fast)


PATHS: dict[str, PathSpec] = {}


def register(spec: PathSpec) -> PathSpec:
    PATHS[spec.name] = spec
    return spec


register(PathSpec("plain", FastPath(), lambda e: True))
register(PathSpec("cuda_graphs", FastPath(cuda_graphs=True), _cuda))
register(PathSpec("cuda_graphs+bf16", FastPath(cuda_graphs=True, autocast="bf16"), _cuda, "bf16"))
register(PathSpec("compile", FastPath(compile=True), _cuda))
register(PathSpec("compile+bf16", FastPath(compile=True, autocast="bf16"), _cuda, "bf16"))
register(PathSpec("compile+bf16+channels_last", FastPath(compile=True, autocast="bf16", channels_last=True),
                  lambda e: _cuda(e) and _has_conv(e), "bf16"))
register(PathSpec("cuda_graphs+fp16", FastPath(cuda_graphs=True, autocast="fp16"), _cuda, "fp16"))


@dataclass(frozen=True)
class FastChoice:
    """The path a run takes, and how it was chosen; stored in the output's meta as `fast`."""

    mode: str  # 'auto', 'off' or 'manual' (switches given by hand)
    path: str
    fast: FastPath
    reason: str
    probe: dict[str, float] = field(default_factory=dict)  # path -> sample-steps/s measured
    precision: dict[str, dict] = field(default_factory=dict)  # precision -> ddls.sampling.precision verdict

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fast"] = self.fast.to_dict()
        return out

    def line(self) -> str:
        probe = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(self.probe.items(), key=lambda kv: -kv[1]))
        return f"fast path: {self.path} ({self.reason}{'; sample-steps/s ' + probe if probe else ''})"


# A measurement: (path name, run(k steps)) -> seconds per step. Injected in tests.
Measure = Callable[[str, Callable[[int], None]], float]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_measure(device: torch.device, steps: int = PROBE_STEPS) -> Measure:
    """Seconds per step from the wall clock: (T(2k) - T(k)) / k after one warm-up step, waiting for the
    device at both ends (what every run pays once, such as a graph capture, drops out)."""
    def measure(name: str, run: Callable[[int], None]) -> float:
        run(1)  # compile, cuDNN's choices, lazy initialisation: before the clock
        times = {}
        for k in (steps, 2 * steps):
            _sync(device)
            t0 = time.perf_counter()
            run(k)
            _sync(device)
            times[k] = time.perf_counter() - t0
        if times[2 * steps] > times[steps]:
            return (times[2 * steps] - times[steps]) / steps
        return times[2 * steps] / (2 * steps)  # timing noise larger than k steps: the plain average
    return measure


def probe_runner(spec: PathSpec, energy: LatentEnergy, config: RunConfig) -> Callable[[int], None]:
    """run(k): k steps of the run's kernel on `spec`'s path, on chunk 0's size, from scratch latents."""
    size = min(config.chunk_size, config.n)
    chunk = energy.for_chains(0, size)
    sampler = make_sampler(config.method, config.eps, config.noise_scale)
    chain_energy = spec.build(chunk)

    def run(k: int) -> None:
        gen = make_generator(PROBE_SEED, energy.device)
        z0 = chunk.prior_sample(size, gen)
        run_chain(sampler, chain_energy, z0, steps=k, generator=gen, check_every=max(k, 1), on_nan="restart")
    return run


# A precision check: (precision) -> (passed, verdict for the meta). Injected in tests.
PrecisionGate = Callable[[str], tuple[bool, dict]]


def choose(energy: LatentEnergy, config: RunConfig, *, paths: dict[str, PathSpec] | None = None,
           measure: Measure | None = None, precision_ok: PrecisionGate | None = None) -> FastChoice:
    """The fastest applicable path, among those whose precision passed its check."""
    paths = PATHS if paths is None else paths
    candidates = {name: spec for name, spec in paths.items() if spec.applies(energy)}
    batch = min(config.chunk_size, config.n)
    probe_work = (1 + 3 * PROBE_STEPS) * batch * len(candidates)
    if config.steps == 0 or len(candidates) <= 1 or probe_work > PROBE_SHARE * config.steps * config.n:
        # On the CPU only the plain path applies (docs/benchmarks.md: bf16 and compile gained nothing reliable).
        why = ("no Langevin steps" if config.steps == 0 else f"the only path on {energy.device.type}"
               if len(candidates) <= 1 else "a run too short to pay for a probe")
        return FastChoice("auto", "plain", FastPath(), why)
    measure = measure or wall_measure(energy.device)
    verdicts: dict[str, tuple[bool, dict]] = {}
    timed: dict[str, float] = {}
    failed: list[str] = []
    for name, spec in candidates.items():
        if spec.precision != "fp32":
            if precision_ok is None:
                continue
            if spec.precision not in verdicts:
                verdicts[spec.precision] = precision_ok(spec.precision)
            if not verdicts[spec.precision][0]:
                continue
        try:
            timed[name] = measure(name, probe_runner(spec, energy, config))
        except Exception as exc:  # noqa: BLE001 - a path that cannot run here (compiler, memory) is no candidate
            if not spec.fast.any:
                raise
            failed.append(f"{name}: {type(exc).__name__}")
            if energy.device.type == "cuda":
                torch.cuda.empty_cache()  # what an out-of-memory path left cached
    if not timed:
        raise DDLSError("no fast path could run this model; sample with the fast paths off")
    best = min(timed, key=timed.get)
    reason = f"fastest in a {PROBE_STEPS}-step probe at chunk {batch}"
    skipped = [p for p, (ok, _) in verdicts.items() if not ok]
    if skipped:
        reason += f"; {'/'.join(skipped)} not used: precision check failed"
    if precision_ok is None and any(s.precision != "fp32" for s in candidates.values()):
        reason += "; reduced precision not tried: no precision check for this model"
    if failed:
        reason += f"; could not run: {', '.join(failed)}"
    return FastChoice("auto", best, paths[best].fast, reason, {k: batch / v for k, v in timed.items()},
                      {k: v[1] for k, v in verdicts.items()})


def resolve(mode: str, manual: FastPath, energy: LatentEnergy, config: RunConfig, *,
            precision_ok: PrecisionGate | None = None, measure: Measure | None = None) -> FastChoice:
    """The path of a run: the hand-set switches when any is on, else `mode` ('auto' or 'off')."""
    if mode not in MODES:
        raise DDLSError(f"fast must be one of {', '.join(MODES)}, got {mode!r}")
    if manual.any:
        return FastChoice("manual", manual.name, manual, "switches set by hand")
    if mode == "off":
        return FastChoice("off", "plain", FastPath(), "fast paths off")
    return choose(energy, config, measure=measure, precision_ok=precision_ok)


