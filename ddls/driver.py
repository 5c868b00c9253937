"""The chain driver: runs a sampler's kernel over many chains, in chunks, and records.

Chunk k of a run draws its initial latents and its noise from a stream seeded by
(seed, k): for a given chunk size, chunk k gives the same chains whichever process
or device order runs it, so a run can be split by chunk and stitched back.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import Tensor

from ._torch import derived_seed, frozen, make_generator
from .energy import LatentEnergy
from .errors import DDLSError, NonFiniteEnergy
from .samplers import Info, Sampler, State

# Recording hook: (step, state) -> something to keep, or None.
Recorder = Callable[[int, State], Tensor | None]


@dataclass(frozen=True)
class RunConfig:
    """How chains are run; stored next to every sample set."""

    n: int
    steps: int
    method: str = "ula"
    eps: float | None = None
    noise_scale: float = 1.0
    seed: int = 0
    chunk_size: int = 5000
    record_every: int = 0
    check_every: int = 50

    def __post_init__(self):
        if self.n < 1:
            raise DDLSError(f"n must be >= 1, got {self.n}")
        if self.steps < 0:
            raise DDLSError(f"steps must be >= 0, got {self.steps}")
        if self.chunk_size < 1:
            raise DDLSError(f"chunk size must be >= 1, got {self.chunk_size}")
        if self.record_every < 0:
            raise DDLSError(f"record_every must be >= 0, got {self.record_every}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChainRun:
    """What one chunk of chains produced."""

    state: State
    records: list[Tensor] = field(default_factory=list)
    accept_sum: Tensor | None = None


def run_chain(sampler: Sampler, energy: Callable[[Tensor], Tensor], position: Tensor, *, steps: int,
              generator: torch.Generator, record: Recorder | None = None, record_every: int = 0,
              check_every: int = 50, chain_offset: int = 0,
              on_step: Callable[[], None] | None = None) -> ChainRun:
    """Run `steps` kernel steps from `position`.

    Non-finite energies are tracked on the device and checked every `check_every`
    steps, at recording points and at the end, so the loop never waits on the host.
    """
    state = sampler.init(position, energy)
    first_bad = torch.full(state.energy.shape, -1, dtype=torch.long, device=position.device)
    accept_sum = torch.zeros_like(state.energy)
    run = ChainRun(state)

    def mark_bad(st: State, step: int) -> None:
        bad = ~torch.isfinite(st.energy) | ~torch.isfinite(st.grad).all(1)
        first_bad.copy_(torch.where(bad & (first_bad < 0), step, first_bad))

    def check(step: int) -> None:
        if bool((first_bad >= 0).any()):
            idx = torch.nonzero(first_bad >= 0).flatten()
            raise NonFiniteEnergy(int(first_bad[idx].min()), [int(i) + chain_offset for i in idx.tolist()],
                                  sampler.eps)

    mark_bad(state, 0)
    check(0)
    if record is not None and record_every:
        run.records.append(record(0, state))
    for i in range(1, steps + 1):
        state, info = sampler.step(state, energy, generator=generator)
        accept_sum += info.accept_prob
        mark_bad(state, i)
        if on_step is not None:
            on_step()
        recording = record is not None and record_every and i % record_every == 0
        if recording or i % check_every == 0 or i == steps:
            check(i)
        if recording:
            run.records.append(record(i, state))
    run.state = state
    run.accept_sum = accept_sum
    return run


@dataclass
class SampleResult:
    latents: Tensor  # (N, D) final latent positions
    samples: Tensor  # (N, *sample_shape)
    acceptance: Tensor | None  # (N,) mean acceptance probability per chain, MALA only
    trajectory: Tensor | None  # (R, N, *sample_shape) samples every record_every steps
    record_steps: list[int]
    config: RunConfig

    def arrays(self) -> dict[str, "object"]:
        out = {"x": self.samples.numpy(), "z": self.latents.numpy()}
        if self.acceptance is not None:
            out["acceptance"] = self.acceptance.numpy()
        if self.trajectory is not None:
            out["trajectory"] = self.trajectory.numpy()
            out["record_steps"] = torch.tensor(self.record_steps).numpy()
        return out


def sample(energy: LatentEnergy, config: RunConfig, *, sampler: Sampler | None = None,
           progress: bool = False) -> SampleResult:
    """Draw `config.n` samples: prior latents, then `config.steps` Langevin/MALA steps.

    With steps=0 (or no sampler) this is the generator alone, on the same latents
    that a run with the same seed starts from.
    """
    from .samplers import make_sampler

    if sampler is None and config.steps > 0:
        if config.eps is None:
            raise DDLSError("eps is needed when steps > 0")
        sampler = make_sampler(config.method, config.eps, config.noise_scale)
    device = energy.device
    n_chunks = math.ceil(config.n / config.chunk_size)
    bar = None
    if progress and config.steps > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_chunks * config.steps, desc=f"{config.method} eps={config.eps:g}",
                   unit="step", leave=False, dynamic_ncols=True)
    latents, samples, accepts, trajs = [], [], [], []
    record_steps: list[int] = []
    try:
        with frozen(*energy.modules()):
            for k in range(n_chunks):
                size = min(config.chunk_size, config.n - k * config.chunk_size)
                gen = make_generator(derived_seed(config.seed, k), device)
                z0 = energy.prior_sample(size, gen)
                if config.steps == 0:
                    with torch.no_grad():
                        latents.append(z0.cpu())
                        samples.append(energy.decode(z0).cpu())
                    continue

                def record(step: int, st: State) -> Tensor:
                    if k == 0:
                        record_steps.append(step)
                    with torch.no_grad():
                        return energy.decode(st.position).cpu()

                run = run_chain(sampler, energy, z0, steps=config.steps, generator=gen, record=record,
                                record_every=config.record_every, check_every=config.check_every,
                                chain_offset=k * config.chunk_size,
                                on_step=bar.update if bar is not None else None)
                latents.append(run.state.position.cpu())
                with torch.no_grad():
                    samples.append(energy.decode(run.state.position).cpu())
                if sampler.name == "mala":
                    accepts.append((run.accept_sum / config.steps).cpu())
                if run.records:
                    trajs.append(torch.stack(run.records))
    finally:
        if bar is not None:
            bar.close()
    return SampleResult(
        latents=torch.cat(latents),
        samples=torch.cat(samples),
        acceptance=torch.cat(accepts) if accepts else None,
        trajectory=torch.cat(trajs, dim=1) if trajs else None,
        record_steps=record_steps,
        config=config,
    )
