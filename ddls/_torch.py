"""Small PyTorch helpers shared by the energy, sampler and trainer."""
from __future__ import annotations

import contextlib
import math
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Eval mode and no parameter gradients inside the block; the previous state is restored."""
    mods = [m for m in modules if m is not None]
    params = [(p, p.requires_grad) for m in mods for p in m.parameters()]
    try:
        for p, _ in params:
            p.requires_grad_(False)
        with eval_mode(*mods):
            yield
    finally:
        for p, req in params:
            p.requires_grad_(req)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Eval mode inside the block (batch norm on its running statistics, no dropout); afterwards
    every submodule is back in its own mode, so a caller's networks are never left switched."""
    subs = [m for mod in modules if mod is not None for m in mod.modules()]
    training = [m.training for m in subs]
    if not any(training):  # already in eval mode (the driver freezes the networks): nothing to do
        yield
        return
    try:
        for mod in modules:
            if mod is not None:
                mod.eval()
        yield
    finally:
        for m, was in zip(subs, training):
            m.training = was


def derived_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed mixed from a global seed and keys (chunk index, rank, ...).

    Chunk k of a run always gets the same stream, whoever runs it, so sharding
    chains across chunks or processes does not change the samples.
    """
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *keys]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1] & 0x7FFFFFFF) << 32)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


class SeededChunk(NamedTuple):
    """Items start..stop-1 of a run, and the random stream they draw from."""

    index: int
    start: int
    stop: int
    generator: torch.Generator

    @property
    def size(self) -> int:
        return self.stop - self.start


def seeded_chunks(n: int, chunk_size: int, seed: int, device: torch.device | str = "cpu",
                  indices: Iterable[int] | None = None) -> Iterator[SeededChunk]:
    """The chunks of n items, chunk_size at a time (the last may be smaller); chunk k's stream is
    seeded by derived_seed(seed, k), so it is the same whoever runs it. `indices` picks chunks (default: all)."""
    for k in range(math.ceil(n / chunk_size)) if indices is None else indices:
        start = k * chunk_size
        yield SeededChunk(k, start, min(start + chunk_size, n), make_generator(derived_seed(seed, k), device))


def resolve_device(name: str | None) -> torch.device:
    """'auto' (or None) picks CUDA when present, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        from .errors import DDLSError

        raise DDLSError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from exc
    if device.type not in ("cpu", "cuda"):
        from .errors import DDLSError

        raise DDLSError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        from .errors import DDLSError

        raise DDLSError(f"device {name!r} asked for but no CUDA GPU is available; use the cpu device")
    return device
