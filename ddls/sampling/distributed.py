"""Sharding a `ddls sample` run across processes with torch.distributed (gloo on CPU, NCCL on GPUs).

Chunk k of a run is seeded by `derived_seed(seed, k)` whoever runs it, so each rank's
streams follow from the global seed and its chunk indices: rank r of K runs chunks
r, r + K, r + 2K, ... and sends each finished chunk to rank 0, which writes them in chunk
order. The output is the same, array for array, as a single-process run with the same
seed and chunk size (on the same kind of device). Start it with
`torchrun --nproc_per_node=K -m ddls sample ...`; on GPUs rank r uses cuda:<local rank>.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.distributed as dist

from .._torch import resolve_device
from .driver import Chunk, RunConfig, chunk_size, n_chunks
from ..errors import DDLSError

LAUNCH_HINT = "start it with torchrun: torchrun --nproc_per_node=K -m ddls sample ..."


@dataclass(frozen=True)
class Group:
    rank: int
    world: int
    device: torch.device  # this rank's compute device
    backend: str

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
        return self.device if self.backend == "nccl" else torch.device("cpu")


def launched() -> bool:
    """True inside a process started by torchrun (it sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str | None, *, required: bool = False) -> Group | None:
    """Join the process group torchrun set up; None when this is a plain single process."""
    if not launched():
        if required:
            raise DDLSError(f"a distributed run needs several processes; {LAUNCH_HINT}")
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError as exc:
        raise DDLSError(f"RANK/WORLD_SIZE/LOCAL_RANK are not integers ({exc}); {LAUNCH_HINT}") from None
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return Group(rank, world, dev, backend)


def shutdown(group: Group | None) -> None:
    if group is not None and dist.is_initialized():
        dist.destroy_process_group()


def rank_chunks(config: RunConfig, group: Group) -> range:
    """The chunk indices this rank runs."""
    return range(group.rank, n_chunks(config), group.world)


def _shapes(config: RunConfig, k: int, dim: int, sample_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes of the tensors a chunk travels as (the optional ones only when the run has them)."""
    b = chunk_size(config, k)
    shapes = [(b, dim), (b, *sample_shape)]
    if config.steps > 0 and config.method == "mala":
        shapes.append((b,))
    if config.steps > 0 and config.record_every:
        shapes.append((len(range(0, config.steps + 1, config.record_every)), b, *sample_shape))
    return shapes


def _send(chunk: Chunk, group: Group) -> None:
    restarts = torch.tensor(chunk.restarts, dtype=torch.float64).reshape(-1, 3)
    parts = [torch.tensor([chunk.index, len(restarts)], dtype=torch.long), chunk.latents, chunk.samples]
    parts += [t for t in (chunk.acceptance, chunk.trajectory) if t is not None]
    if len(restarts):
        parts.append(restarts)
    for t in parts:
        if t.dtype not in (torch.long, torch.float64):
            t = t.float()  # what the sample file stores
        dist.send(t.to(group.comm_device).contiguous(), dst=0)


def _recv(k: int, src: int, group: Group, config: RunConfig, dim: int, sample_shape: tuple[int, ...]) -> Chunk:
    def get(shape, dtype=torch.float32) -> torch.Tensor:
        t = torch.empty(shape, dtype=dtype, device=group.comm_device)
        dist.recv(t, src=src)
        return t.cpu()

    index, n_restarts = get((2,), torch.long).tolist()
    if index != k:
        raise DDLSError(f"rank {src} sent chunk {index} where chunk {k} was due; the ranks disagree on the run")
    shapes = _shapes(config, k, dim, sample_shape)
    latents, samples, *rest = [get(s) for s in shapes]
    accept = rest.pop(0) if config.steps > 0 and config.method == "mala" else None
    traj = rest.pop(0) if config.steps > 0 and config.record_every else None
    restarts = [(int(c), int(s), float(e)) for c, s, e in get((n_restarts, 3), torch.float64).tolist()] \
        if n_restarts else []
    return Chunk(k, k * config.chunk_size, latents, samples, accept, traj, restarts)


def gather_chunks(local: Iterable[Chunk], group: Group, config: RunConfig, dim: int,
                  sample_shape: tuple[int, ...]) -> Iterator[Chunk]:
    """On rank 0: every chunk of the run, in chunk order (its own and those the others send).

    On the other ranks: runs `local` and sends each chunk to rank 0; yields nothing.
    """
    if not group.is_writer:
        for chunk in local:
            _send(chunk, group)
        return
    mine = iter(local)
    for k in range(n_chunks(config)):
        owner = k % group.world
        yield next(mine) if owner == 0 else _recv(k, owner, group, config, dim, sample_shape)
