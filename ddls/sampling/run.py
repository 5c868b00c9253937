"""A whole sampling run, as `ddls sample` and `ddls.sample_to_file` start it: load the model, run
the chains in chunks (resumable, sharded under torchrun), stream them into the .npz, and record
in its meta everything that made it. The other post-hoc methods run into a file through
`ddls.posthoc.to_file.run_posthoc_sampling`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._interrupt import deferred_interrupt
from .._torch import resolve_device
from ..errors import DDLSError, Interrupted
from .driver import RunConfig, run_chunks
from .fastpath import FastPath

EACH = "each"  # label 'each': chain i gets class i mod num_classes


def load_energy(ckpt: str, device: str = "auto", temperature: float = 1.0, sigma: float = 0.0,
                energy_kind: str | None = None, disc: str | None = None, label: int | str | None = None,
                n: int = 0, factory: str | None = None):
    """(model, its latent energy) from any checkpoint format; label EACH cycles n chains through the classes.
    factory: the function that builds your own networks (`pkg.mod:fn` or `file.py:fn`); ckpt holds their weights."""
    from ..formats import load_any

    model = load_any(ckpt, disc, label=None if label == EACH else label, device=resolve_device(device),
                     factory=factory)
    chains = model.cycled_labels(n, source=ckpt) if label == EACH else None
    return model, model.energy(temperature=temperature, sigma=sigma, kind=energy_kind, label=chains)


@dataclass(frozen=True)
class SampleJob:
    """One Langevin sampling run into a file: what to load, how to run, where to write."""

    ckpt: str
    out: str
    run: RunConfig
    disc: str | None = None
    factory: str | None = None  # the function that builds your own networks; their weights are in ckpt
    data: str | None = None  # the real data the samples are of, when the checkpoint names none (or other)
    label: int | str | None = None
    temperature: float = 1.0
    sigma: float = 0.0
    energy_kind: str | None = None
    device: str = "auto"
    on_nan: str = "stop"
    checkpoint_every: int = 50
    resume: bool = False
    distributed: bool = False
    fast: FastPath = field(default_factory=FastPath)  # switches set by hand: they override fast_mode
    fast_mode: str = "auto"  # 'auto' (ddls.sampling.autofast picks) or 'off'


@dataclass
class SampleSummary:
    out: str
    n: int
    steps: int
    seconds: float
    processes: int = 1
    acceptance: float | None = None
    restarts: list = field(default_factory=list)
    written: bool = True  # False on the non-writing ranks of a distributed run
    fast: str = "plain"  # the fast path the chains ran on
    energy_kind: str | None = None  # how the score was read (gan: a logit; wgan: a critic, ...)


def run_sampling(job: SampleJob, *, echo: Callable[[str], None] = lambda s: None) -> SampleSummary:
    """Run `job` to the end (or from its resume file), write `job.out`, and say what was done."""
    from ..io.resume import file_digest, progress_to_resume, resume_path
    from .resume import load_sample_progress, save_sample_progress
    from . import distributed as dist
    from .budget import check_disk
    from .stream import SampleWriter, sample_layout, stream_chunks

    config = job.run
    group = dist.setup(job.device, required=job.distributed)
    if group is not None and job.resume:
        raise DDLSError("resuming is not supported in distributed runs; rerun without it")
    model, energy = load_energy(job.ckpt, str(group.device) if group else job.device, job.temperature, job.sigma,
                                job.energy_kind, job.disc, job.label, config.n, job.factory)
    if job.data is not None:  # the samples will name it: points that do not fit them are refused now, not at eval
        from ..data.images import is_image_data
        from ..data.real import real_source

        if not is_image_data(job.data):
            real_source(model, energy.sample_shape, data=job.data)
    check_disk(job.out, config.n, energy.dim, energy.sample_shape, steps=config.steps,
               record_every=config.record_every)
    state_file = resume_path(job.out)
    identity = {"ckpt_sha256": file_digest(job.ckpt), "disc_sha256": file_digest(job.disc) if job.disc else None,
                **({"factory": job.factory} if job.factory else {}), "label": job.label, "energy": energy.kind,
                "temperature": job.temperature, "sigma": job.sigma, "device": str(energy.device),
                "run": config.to_dict()}
    progress = None
    if group is None:
        progress = progress_to_resume(state_file, job.resume,
                                      lambda f: load_sample_progress(f, identity, energy.device))
    if progress is not None:
        echo(f"resuming from {state_file}: chunk {progress.chunk + 1}, step "
             f"{progress.chain.step if progress.chain is not None else 0}")

    def save(p):
        save_sample_progress(state_file, identity, p)

    writes = group is None or group.is_writer
    choice = choose_fast(job, model, energy)
    if writes:
        echo(choice.line())
    t0 = time.perf_counter()
    chunks = run_chunks(energy, config, progress=writes, on_nan=job.on_nan, resume=progress,
                        chunks=dist.rank_chunks(config, group) if group else None, fast=choice.fast,
                        save=save if job.checkpoint_every and config.steps and group is None else None,
                        save_every=job.checkpoint_every)
    if group is not None:
        chunks = dist.gather_chunks(chunks, group, config, energy.dim, energy.sample_shape)
    if not writes:
        for _ in chunks:
            pass
        dist.shutdown(group)
        return SampleSummary(job.out, config.n, config.steps, time.perf_counter() - t0, group.world, written=False,
                             fast=choice.path)
    writer = SampleWriter(job.out, sample_layout(config.n, energy.dim, energy.sample_shape, method=config.method,
                                                 steps=config.steps, record_every=config.record_every),
                          resume=progress is not None, required=progress is not None and progress.chunk > 0)
    try:
        with deferred_interrupt():  # Ctrl-C stops between steps and saves the progress
            seen = stream_chunks(writer, chunks, keep_spool=state_file.exists)
    except KeyboardInterrupt:
        raise Interrupted(state_file if state_file.exists() else None) from None
    restarts = (progress.restarts if progress is not None else []) + seen.restarts
    wall = time.perf_counter() - t0
    meta = {"ckpt": str(job.ckpt), "disc": job.disc, **({"factory": job.factory} if job.factory else {}),
            "label": job.label,
            "format": (model.meta or {}).get("format"), "data": job.data or model.data, "energy": energy.kind,
            "temperature": job.temperature, "sigma": job.sigma, "run": config.to_dict(), "on_nan": job.on_nan,
            "resumed": progress is not None, "restarts": [list(r) for r in restarts], "seconds": round(wall, 3),
            "processes": group.world if group else 1, "fast": choice.to_dict()}
    extra = ({"record_steps": np.arange(0, config.steps + 1, config.record_every)}
             if config.steps and config.record_every else {})
    labels = energy.chain_labels(config.n)
    if labels is not None:
        extra["y"] = labels.numpy()
    try:
        writer.finish(meta, extra)
    except BaseException:  # a full disk while assembling: the spool stays only if it can be resumed
        writer.close() if state_file.exists() else writer.discard()
        raise
    state_file.unlink(missing_ok=True)
    dist.shutdown(group)
    acceptance = seen.accept_sum / config.n if config.method == "mala" and config.steps else None
    return SampleSummary(job.out, config.n, config.steps, wall, group.world if group else 1, acceptance, restarts,
                         fast=choice.path, energy_kind=energy.kind)


def choose_fast(job: SampleJob, model, energy):
    """The fast path of `job` (ddls.sampling.autofast.FastChoice); on CUDA auto first checks reduced precision."""
    from .autofast import resolve
    from .precision import precision_gate

    gate = precision_gate(model, energy, job.run) if energy.device.type == "cuda" else None
    return resolve(job.fast_mode, job.fast, energy, job.run, precision_ok=gate)


def describe_restarts(restarts: list) -> str:
    shown = ", ".join(f"chain {c} at step {s} (eps now {e:g})" for c, s, e in restarts[:5])
    more = f" and {len(restarts) - 5} more" if len(restarts) > 5 else ""
    return f"restarted {len(restarts)} diverging chain(s): {shown}{more}; listed in meta['restarts']"
