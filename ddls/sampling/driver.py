"""The chain driver: runs a sampler's kernel over many chains, in chunks, and records.

Chunk k of a run draws its initial latents and its noise from a stream seeded by
(seed, k): for a given chunk size, chunk k gives the same chains whichever process
or device order runs it, so a run can be split by chunk and stitched back. Chunk k
evaluates `energy.for_chains(start, stop)`, which carries its chains' class labels.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import torch
from torch import Tensor

from .._interrupt import stop_requested
from .._torch import frozen, seeded_chunks
from .energy import LatentEnergy
from ..errors import DDLSError, NonFiniteEnergy
from .samplers import Info, Sampler, State
from .stepper import EagerStepper, flag_non_finite, make_stepper  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from .fastpath import FastPath

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
        if self.check_every < 1:
            raise DDLSError(f"check_every must be >= 1, got {self.check_every}")
        if self.eps is not None and not (math.isfinite(self.eps) and self.eps > 0):
            raise DDLSError(f"eps must be a positive finite number, got {self.eps}")

    def to_dict(self) -> dict:
        return asdict(self)


ON_NAN = ("stop", "restart")
RESTART_FACTOR = 0.5  # a restarted chain continues at this times its previous eps
MAX_RESTARTS = 10  # a chain halved this often is given up: the run stops


@dataclass
class ChainRun:
    """What one chunk of chains produced."""

    state: State
    records: list[Tensor] = field(default_factory=list)
    accept_sum: Tensor | None = None
    restarts: list[tuple[int, int, float]] = field(default_factory=list)  # (chain, step, new eps)


@dataclass
class ChainProgress:
    """Everything needed to continue a chunk of chains exactly where it stood after `step`."""

    step: int
    state: State
    accept_sum: Tensor
    first_bad: Tensor  # (B,) first step a chain went non-finite since the last check, -1 if none
    records: list[Tensor]
    generator_state: Tensor  # torch.Generator.get_state()
    last_good: State  # the state at the last check, where every chain was finite
    eps: Tensor | None = None  # (B,) per-chain step sizes once a chain was restarted, else None
    restarts: list[tuple[int, int, float]] = field(default_factory=list)


def run_chain(sampler: Sampler, energy: Callable[[Tensor], Tensor], position: Tensor, *, steps: int,
              generator: torch.Generator, record: Recorder | None = None, record_every: int = 0,
              check_every: int = 50, chain_offset: int = 0,
              on_step: Callable[[], None] | None = None, on_nan: str = "stop",
              start: ChainProgress | None = None, save: Callable[[ChainProgress], None] | None = None,
              save_every: int = 0) -> ChainRun:
    """Run `steps` kernel steps from `position` (or from `start`, a saved `ChainProgress`).

    Non-finite energies or gradients are tracked on the device and checked every
    `check_every` steps, at recording and save points and at the end, so the loop never
    waits on the host between them: those checks are its only host syncs (no `.item()`,
    no data-dependent branch). A step allocates only its outputs and what autograd needs
    (on CUDA the caching allocator serves both; with ddls.sampling.graphs the
    whole step replays as one graph in fixed memory). At a check, `on_nan="stop"` raises NonFiniteEnergy;
    `on_nan="restart"` puts the affected chains back to their state at the previous check
    and multiplies their eps by RESTART_FACTOR (a restarted chain loses the steps since that
    check; at the final check it ends at its last finite state). `save(progress)` is called every
    `save_every` steps (after that step's check and record) with what `start` needs.
    """
    if on_nan not in ON_NAN:
        raise DDLSError(f"on_nan must be one of {', '.join(ON_NAN)}, got {on_nan!r}")
    if start is None:
        state = sampler.init(position, energy)
        first_bad = torch.full(state.energy.shape, -1, dtype=torch.long, device=position.device)
        accept_sum = torch.zeros_like(state.energy)
        records: list[Tensor] = []
        eps: Tensor | None = None
        restarts: list[tuple[int, int, float]] = []
        done = 0
    else:
        state, first_bad, accept_sum = start.state, start.first_bad.clone(), start.accept_sum.clone()
        records, eps, restarts, done = list(start.records), start.eps, list(start.restarts), start.step
        generator.set_state(start.generator_state)
    last_good = state if start is None else start.last_good

    stepper = make_stepper(sampler, energy, generator, accept_sum, first_bad)

    def chain_eps() -> Tensor:
        return eps if eps is not None else torch.full_like(state.energy, sampler.eps)

    def check(step: int) -> None:
        """Host sync: stop, or restart the chains that went non-finite since the last check."""
        nonlocal state, eps, last_good
        bad = first_bad >= 0
        if bool(bad.any()):
            idx = torch.nonzero(bad).flatten()
            when = int(first_bad[idx].min())
            chains = [int(i) + chain_offset for i in idx.tolist()]
            now = chain_eps()
            if on_nan == "stop" or step == 0:
                raise NonFiniteEnergy(when, chains, float(now[idx].min()))
            new_eps = torch.where(bad, now * RESTART_FACTOR, now)
            if float(new_eps[idx].min()) < sampler.eps * RESTART_FACTOR ** MAX_RESTARTS:
                raise NonFiniteEnergy(when, chains, float(now[idx].min()),
                                      note=f"after {MAX_RESTARTS} restarts at ever smaller eps")
            keep = bad[:, None]
            state = State(torch.where(keep, last_good.position, state.position),
                          torch.where(bad, last_good.energy, state.energy),
                          torch.where(keep, last_good.grad, state.grad))
            restarts.extend((c, int(first_bad[i]), float(new_eps[i])) for c, i in zip(chains, idx.tolist()))
            eps = new_eps
            first_bad.fill_(-1)
        last_good = stepper.hold(state)

    try:
        if start is None:
            flag_non_finite(first_bad, state, 0)
            check(0)
            if record is not None and record_every:
                records.append(record(0, state))
        for i in range(done + 1, steps + 1):
            if stop_requested():  # Ctrl-C: step i - 1 is whole; saved unchecked, the resume checks where this run would
                if save is not None:
                    save(ChainProgress(i - 1, stepper.hold(state), accept_sum, first_bad, records,
                                       generator.get_state(), last_good, eps, restarts))
                raise KeyboardInterrupt
            state = stepper(state, eps, i)
            if on_step is not None:
                on_step()
            recording = record is not None and record_every and i % record_every == 0
            saving = save is not None and save_every and i % save_every == 0 and i < steps
            if recording or saving or i % check_every == 0 or i == steps:
                check(i)
            if recording:
                records.append(record(i, state))
            if saving:
                save(ChainProgress(i, stepper.hold(state), accept_sum, first_bad, records, generator.get_state(),
                                   last_good, eps, restarts))
        return ChainRun(stepper.hold(state), records, accept_sum, restarts)
    finally:
        stepper.close()


@dataclass
class SampleResult:
    latents: Tensor  # (N, D) final latent positions
    samples: Tensor  # (N, *sample_shape)
    acceptance: Tensor | None  # (N,) mean acceptance probability per chain, MALA only
    trajectory: Tensor | None  # (R, N, *sample_shape) samples every record_every steps
    record_steps: list[int]
    config: RunConfig
    restarts: list[tuple[int, int, float]] = field(default_factory=list)  # (chain, step, new eps)

    def arrays(self) -> dict[str, "object"]:
        out = {"x": self.samples.numpy(), "z": self.latents.numpy()}
        if self.acceptance is not None:
            out["acceptance"] = self.acceptance.numpy()
        if self.trajectory is not None:
            out["trajectory"] = self.trajectory.numpy()
            out["record_steps"] = torch.tensor(self.record_steps).numpy()
        return out


@dataclass
class SampleProgress:
    """A run of `sample` part-way: chunks before `chunk` are finished, `chain` is chunk `chunk` so far."""

    chunk: int
    latents: list[Tensor] = field(default_factory=list)  # one per finished chunk, on the CPU
    samples: list[Tensor] = field(default_factory=list)
    accepts: list[Tensor] = field(default_factory=list)
    trajs: list[Tensor] = field(default_factory=list)
    restarts: list[tuple[int, int, float]] = field(default_factory=list)
    chain: ChainProgress | None = None  # None: chunk `chunk` has not started


@dataclass
class Chunk:
    """One finished chunk of chains: chains start .. start + len(latents) - 1 of the run, on the CPU."""

    index: int
    start: int
    latents: Tensor  # (B, D)
    samples: Tensor  # (B, *sample_shape)
    acceptance: Tensor | None  # (B,) MALA only
    trajectory: Tensor | None  # (R, B, *sample_shape) when recording
    restarts: list[tuple[int, int, float]] = field(default_factory=list)


def n_chunks(config: RunConfig) -> int:
    return math.ceil(config.n / config.chunk_size)


def chunk_size(config: RunConfig, k: int) -> int:
    """How many chains chunk k holds (the last chunk may be smaller)."""
    return min(config.chunk_size, config.n - k * config.chunk_size)


def run_chunks(energy: LatentEnergy, config: RunConfig, *, sampler: Sampler | None = None,
               chunks: Sequence[int] | None = None, progress: bool = False, on_nan: str = "stop",
               resume: SampleProgress | None = None, save: Callable[[SampleProgress], None] | None = None,
               save_every: int = 0, fast: "FastPath | None" = None) -> Iterator[Chunk]:
    """Run the chunks of a sample set one after another and yield each as it finishes.

    Only one chunk is ever in memory, so the caller decides what to keep: `sample` keeps
    all of them, `ddls sample` streams them to its output file. `chunks` picks which
    chunk indices to run (default: all; a rank of a distributed run takes every K-th).
    `save(progress)` is called every `save_every` steps and after each finished chunk has
    been yielded (so once the caller has stored it); `resume=progress` continues such a
    run. The progress it saves holds no finished chunks: the caller stores those.
    `fast` switches on the options of ddls.fastpath for the chains (not for the final decode).
    """
    from .fastpath import prepare
    from .samplers import make_sampler

    from .budget import check_chunks

    if sampler is None and config.steps > 0:
        if config.eps is None:
            raise DDLSError("eps is needed when steps > 0")
        sampler = make_sampler(config.method, config.eps, config.noise_scale)
    if sampler is not None and config.eps is None:
        config = replace(config, eps=sampler.eps)  # what the run records and shows is the sampler's eps
    check_chunks(config, energy.dim, energy.sample_shape)
    total = n_chunks(config)
    order = list(range(total)) if chunks is None else list(chunks)
    done = SampleProgress(0) if resume is None else SampleProgress(resume.chunk, restarts=list(resume.restarts),
                                                                    chain=resume.chain)
    if resume is not None and chunks is not None:
        raise DDLSError("a run restricted to some chunks cannot be resumed")
    if not 0 <= done.chunk <= total:
        raise DDLSError(f"resume state is at chunk {done.chunk} of a run with {total} chunks")
    order = [k for k in order if k >= done.chunk]
    bar = None
    if progress and config.steps > 0:
        from tqdm.auto import tqdm

        started = done.chain.step if done.chain is not None else 0
        desc = f"{config.method} eps={config.eps:g}" + (f" [{fast.name}]" if fast is not None and fast.any else "")
        bar = tqdm(total=len(order) * config.steps, initial=started, desc=desc,
                   unit="step", leave=False, dynamic_ncols=True)
    last_chunk = None
    try:
        with frozen(*energy.modules()):
            for k, start, stop, gen in seeded_chunks(config.n, config.chunk_size, config.seed, energy.device, order):
                chunk = energy.for_chains(start, stop)  # its labels
                if chunk is not last_chunk:  # one prepared energy while the chunks share it: compile once
                    chain_energy = prepare(chunk, fast) if fast is not None and config.steps > 0 else chunk
                    last_chunk = chunk
                z0 = chunk.prior_sample(stop - start, gen)
                if config.steps == 0:
                    with torch.no_grad():
                        yield Chunk(k, start, z0.cpu(), chunk.decode(z0).cpu(), None, None)
                    continue

                def record(step: int, st: State) -> Tensor:
                    with torch.no_grad():
                        return chunk.decode(st.position).cpu()

                def save_chain(chain: ChainProgress, k=k) -> None:
                    done.chunk, done.chain = k, chain
                    save(done)

                run = run_chain(sampler, chain_energy, z0, steps=config.steps, generator=gen, record=record,
                                record_every=config.record_every, check_every=config.check_every,
                                chain_offset=start, on_step=bar.update if bar is not None else None,
                                on_nan=on_nan, start=done.chain if done.chunk == k else None,
                                save=save_chain if save is not None else None, save_every=save_every)
                with torch.no_grad():
                    samples = chunk.decode(run.state.position).cpu()
                accept = (run.accept_sum / config.steps).cpu() if sampler.name == "mala" else None
                traj = torch.stack(run.records) if run.records else None
                done.chain = None
                yield Chunk(k, start, run.state.position.cpu(), samples, accept, traj, list(run.restarts))
                done.restarts.extend(run.restarts)
                done.chunk = k + 1
                if save is not None and k + 1 < total:
                    save(done)
    finally:
        if bar is not None:
            bar.close()


def sample(energy: LatentEnergy, config: RunConfig, *, sampler: Sampler | None = None,
           progress: bool = False, on_nan: str = "stop", resume: SampleProgress | None = None,
           save: Callable[[SampleProgress], None] | None = None, save_every: int = 0,
           fast: "FastPath | None" = None) -> SampleResult:
    """Draw `config.n` samples: prior latents, then `config.steps` Langevin/MALA steps.

    With steps=0 (or no sampler) this is the generator alone, on the same latents
    that a run with the same seed starts from. `save(progress)` is called every
    `save_every` steps and after each finished chunk; `resume=progress` continues
    such a run and gives, on the same device, exactly the samples of an uninterrupted one.
    The whole result is kept in memory; `run_chunks` streams it instead.
    """
    from .budget import check_in_memory

    if sampler is not None and config.eps is None:
        config = replace(config, eps=sampler.eps)
    check_in_memory(config.n, energy.dim, energy.sample_shape, steps=config.steps, record_every=config.record_every)
    kept = SampleProgress(0) if resume is None else replace(
        resume, latents=list(resume.latents), samples=list(resume.samples), accepts=list(resume.accepts),
        trajs=list(resume.trajs), restarts=list(resume.restarts))

    def save_all(p: SampleProgress) -> None:  # the finished chunks travel with the progress
        save(replace(p, latents=kept.latents, samples=kept.samples, accepts=kept.accepts, trajs=kept.trajs))

    for c in run_chunks(energy, config, sampler=sampler, progress=progress, on_nan=on_nan, resume=resume,
                        save=save_all if save is not None else None, save_every=save_every, fast=fast):
        kept.latents.append(c.latents)
        kept.samples.append(c.samples)
        if c.acceptance is not None:
            kept.accepts.append(c.acceptance)
        if c.trajectory is not None:
            kept.trajs.append(c.trajectory)
        kept.restarts.extend(c.restarts)
    record_steps = list(range(0, config.steps + 1, config.record_every)) if config.record_every else []
    return SampleResult(
        latents=torch.cat(kept.latents),
        samples=torch.cat(kept.samples),
        acceptance=torch.cat(kept.accepts) if kept.accepts else None,
        trajectory=torch.cat(kept.trajs, dim=1) if kept.trajs else None,
        record_steps=record_steps,
        config=config,
        restarts=kept.restarts,
    )
