"""Will a run fit? Memory and disk it needs, estimated from its sizes before it starts.

The estimates are lower bounds (the arrays a run must hold, not the networks' activations),
so a refused run could never have finished; a run is refused only when it needs more than
the machine has. `allow_oversize()` lets the caller try anyway (the CLI's force option).
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import DDLSError
from ..io.schema import human_bytes, memory_bytes

FLOAT = 4  # bytes of a float32
CHAIN_COPIES = 4  # a chain holds at least position, gradient, noise and decoded sample
MAX_CHUNKS = 10 ** 6  # each chunk costs a few milliseconds at least: a million take hours
MAX_SEQUENTIAL_STEPS = 10 ** 8  # chunks x steps, one after another: a day even at 1,000 steps a second
_FORCED: contextvars.ContextVar[bool] = contextvars.ContextVar("ddls_oversize", default=False)


@contextlib.contextmanager
def allow_oversize(force: bool = True) -> Iterator[None]:
    """Inside the block, runs larger than the machine are tried instead of refused."""
    token = _FORCED.set(bool(force))
    try:
        yield
    finally:
        _FORCED.reset(token)


def _refuse(what: str, need: float, have: float, where: str, hint: str) -> None:
    if need > have and not _FORCED.get():
        raise DDLSError(f"{what} needs at least {human_bytes(need)} of {where}, and this machine has "
                        f"{human_bytes(have)}; {hint}, or force the run to try anyway")


def sample_bytes(n: int, dim: int, sample_shape: tuple[int, ...], *, steps: int = 0, record_every: int = 0) -> int:
    """Bytes of n samples and latents, and of the recorded trajectory."""
    per = math.prod(sample_shape) + dim
    records = len(range(0, steps + 1, record_every)) if steps and record_every else 0
    return FLOAT * (n * per + records * n * math.prod(sample_shape))


def check_chunks(config, dim: int, sample_shape: tuple[int, ...]) -> None:
    """One chunk of chains (with its recorded steps) must fit in memory, and the chunks must end in time."""
    chunks = math.ceil(config.n / config.chunk_size)
    if not _FORCED.get() and (chunks > MAX_CHUNKS or chunks * config.steps > MAX_SEQUENTIAL_STEPS):
        raise DDLSError(f"this run is {chunks:,} chunks of {config.steps:,} steps one after another, more than "
                        f"{MAX_CHUNKS:,} chunks or {MAX_SEQUENTIAL_STEPS:,} steps in all: it would run for days; "
                        f"use larger chunks or fewer steps, or force the run to try anyway")
    size = min(config.chunk_size, config.n)
    need = CHAIN_COPIES * sample_bytes(size, dim, sample_shape, steps=config.steps, record_every=config.record_every)
    need += 64 * math.ceil(config.n / config.chunk_size)  # the list of chunks to run
    _refuse(f"a chunk of {size:,} chains", need, memory_bytes(), "memory",
            "use fewer chains per chunk or record fewer steps")


def check_in_memory(n: int, dim: int, sample_shape: tuple[int, ...], *, copies: int = 1, steps: int = 0,
                    record_every: int = 0) -> None:
    """`copies` sets of n samples, all held in memory at once (a sweep keeps one per step size)."""
    need = copies * sample_bytes(n, dim, sample_shape, steps=steps, record_every=record_every)
    _refuse(f"keeping {copies * n:,} samples in memory", need, memory_bytes(), "memory", "use fewer samples")


def check_disk(out: str | Path, n: int, dim: int, sample_shape: tuple[int, ...], *, steps: int = 0,
               record_every: int = 0) -> None:
    """The samples file and its spool (each as large as the samples) must fit on `out`'s disk."""
    folder = Path(out).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    need = 2 * sample_bytes(n, dim, sample_shape, steps=steps, record_every=record_every)
    _refuse(f"writing {n:,} samples to {out}", need, free, f"free disk at {folder}",
            "write fewer samples or record fewer steps")
