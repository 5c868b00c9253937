"""Sample files written chunk by chunk, so a run of any size holds one chunk in memory.

A `ddls sample` file is a plain, uncompressed .npz (what `np.savez` writes, readable with
`np.load(..., allow_pickle=False)`): `x` (N, *sample_shape) samples, `z` (N, D) final latents,
`acceptance` (N,) for MALA, `trajectory` (R, N, *sample_shape) and `record_steps` (R,) when
steps were recorded, and `meta`, a JSON string saying how the file was made.

While a run goes, each array lives in its own .npy file in a spool folder `<out>.parts/`:
its header is written first, for the full shape, and each finished chunk is written at its
own rows. Chunk k always lands at the same offset, so a resumed or sharded run writes the
same bytes whatever order the chunks come in. `finish` copies the .npy files, block by
block, into the .npz under a temporary name and renames it over `out`, then removes the spool.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import zipfile
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import DDLSError
from ..io.outputs import atomic_path

Layout = dict[str, tuple[tuple[int, ...], np.dtype]]  # array name -> (full shape, dtype)

COPY_BLOCK = 1 << 22  # bytes copied at a time when assembling the .npz


def sample_layout(n: int, dim: int, sample_shape: tuple[int, ...], *, method: str, steps: int,
                  record_every: int) -> Layout:
    """The arrays of a sample file for a run of `n` chains, as `ddls.driver.sample` returns them."""
    f32 = np.dtype(np.float32)
    layout: Layout = {"x": ((n, *sample_shape), f32), "z": ((n, dim), f32)}
    if steps > 0 and method == "mala":
        layout["acceptance"] = ((n,), f32)
    if steps > 0 and record_every:
        records = len(range(0, steps + 1, record_every))
        layout["trajectory"] = ((records, n, *sample_shape), f32)
    return layout


def _read_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of an open .npy file, leaving it at the first data byte."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def spool_path(out: str | os.PathLike) -> Path:
    """Where the arrays of a run writing `out` are kept until it finishes: `<out>.parts/`."""
    return Path(f"{out}.parts")


def check_spool(spool: Path, layout: Layout) -> None:
    """Every array of `layout` is in `spool` with its full shape, dtype and size, or a one-line error."""
    for name, (shape, dtype) in layout.items():
        path = spool / f"{name}.npy"
        try:
            with open(path, "rb") as fh:
                got_shape, _, got_dtype = _read_header(fh)
                start = fh.tell()
            size = path.stat().st_size
        except FileNotFoundError:
            raise DDLSError(f"{path} is missing: the finished chunks of the interrupted run are gone, so it "
                            f"cannot be resumed; delete its resume file to start over") from None
        except (OSError, ValueError) as exc:
            raise DDLSError(f"{path} is unreadable ({type(exc).__name__}); delete the resume file and "
                            f"{spool} to start over") from None
        if tuple(got_shape) != tuple(shape) or got_dtype != dtype or size != start + math.prod(shape) * dtype.itemsize:
            raise DDLSError(f"{path} does not match the interrupted run (a {got_dtype} {tuple(got_shape)} array of "
                            f"{size} bytes); delete the resume file and {spool} to start over")


class SampleWriter:
    """Streams chunks of a sample set into `out` (see the module doc for the format).

    `resume=True` keeps the spool a previous, interrupted run left (its chunks stay);
    otherwise the spool starts empty. `required=True` (a resumed run with finished chunks)
    refuses a spool that is missing or whose arrays are not whole: the finished rows live
    only there, and a new spool would leave them zero.
    """

    def __init__(self, out: str | os.PathLike, layout: Layout, *, resume: bool = False, required: bool = False):
        self.out = Path(out)
        self.layout = dict(layout)
        self.spool = spool_path(out)
        if not resume and self.spool.exists():
            shutil.rmtree(self.spool)
        if resume and required:
            check_spool(self.spool, self.layout)
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DDLSError(f"cannot create {self.spool}: {exc.strerror}") from exc
        self._files = {}
        try:
            for name, (shape, dtype) in self.layout.items():
                self._files[name] = self._open(name, shape, dtype)
        except BaseException:  # a full disk: a new spool goes, a resumed one stays for the next try
            self.close() if resume else self.discard()
            raise

    def _open(self, name: str, shape: tuple[int, ...], dtype: np.dtype):
        path = self.spool / f"{name}.npy"
        if path.exists():
            with open(path, "rb") as fh:
                got_shape, _, got_dtype = _read_header(fh)
            if tuple(got_shape) != tuple(shape) or got_dtype != dtype:
                raise DDLSError(f"{path} holds a {got_dtype} array of shape {got_shape}, not the {dtype} "
                                f"{tuple(shape)} this run writes; delete {self.spool} to start over")
        else:
            # The header says the full shape; the data region is a hole until chunks fill it.
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
            with open(path, "wb") as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                fh.truncate(fh.tell() + math.prod(shape) * dtype.itemsize)
        fh = open(path, "r+b")
        _read_header(fh)
        return fh, fh.tell()

    def write(self, name: str, start: int, block: Any, axis: int = 0) -> None:
        """Put `block` at index `start` along `axis` (0, or 1 for `trajectory`) of array `name`."""
        shape, dtype = self.layout[name]
        block = np.ascontiguousarray(np.asarray(block), dtype=dtype)
        if block.shape[:axis] != shape[:axis] or block.shape[axis + 1:] != shape[axis + 1:] \
                or start + block.shape[axis] > shape[axis]:
            raise ValueError(f"block of shape {block.shape} does not fit {name} {shape} at {start} on axis {axis}")
        fh, data_start = self._files[name]
        row = math.prod(shape[axis + 1:]) * dtype.itemsize  # bytes per index along `axis`
        outer = block.shape[0] if axis == 1 else 1
        for i in range(outer):
            part = block[i] if axis == 1 else block
            fh.seek(data_start + (i * shape[1] if axis == 1 else 0) * row + start * row)
            fh.write(memoryview(part).cast("B"))

    def add(self, chunk) -> None:
        """Write one finished chunk of `ddls.driver.run_chunks` at its chains' rows."""
        self.write("x", chunk.start, chunk.samples.numpy())
        self.write("z", chunk.start, chunk.latents.numpy())
        if "acceptance" in self.layout:
            self.write("acceptance", chunk.start, chunk.acceptance.numpy())
        if "trajectory" in self.layout:
            self.write("trajectory", chunk.start, chunk.trajectory.numpy(), axis=1)
        self._sync()

    def _sync(self) -> None:
        # On disk before the run's resume file says the chunk is done: a killed run loses nothing.
        for fh, _ in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, meta: dict, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Assemble the .npz atomically (with `meta` and small `extra` arrays), then drop the spool."""
        self._sync()
        with atomic_path(self.out) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, (fh, _) in self._files.items():
                    fh.seek(0)
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as dst:
                        shutil.copyfileobj(fh, dst, COPY_BLOCK)
                small = dict(extra or {})
                small["meta"] = np.array(json.dumps(meta, sort_keys=True))
                for name, arr in small.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as dst:
                        np.lib.format.write_array(dst, np.asarray(arr), allow_pickle=False)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        self.discard()
        return self.out

    def discard(self) -> None:
        """Close and remove the spool (a failed run that cannot be resumed leaves nothing behind)."""
        for fh, _ in self._files.values():
            fh.close()
        self._files = {}
        shutil.rmtree(self.spool, ignore_errors=True)

    def close(self) -> None:
        """Close the spool files and keep them, for `--resume`."""
        for fh, _ in self._files.values():
            fh.close()
        self._files = {}


@dataclass
class Written:
    """What streaming a run into its file saw on the way."""

    restarts: list[tuple[int, int, float]] = field(default_factory=list)
    accept_sum: float = 0.0  # sum of per-chain acceptance (MALA)
    chains: int = 0


def stream_chunks(writer: SampleWriter, chunks: Iterable, *, keep_spool: Callable[[], bool]) -> Written:
    """Write every chunk as it comes; on failure keep the spool only if `keep_spool()` (a resume file exists)."""
    seen = Written()
    try:
        for chunk in chunks:
            writer.add(chunk)
            seen.restarts.extend(chunk.restarts)
            seen.chains += len(chunk.latents)
            if chunk.acceptance is not None:
                seen.accept_sum += float(chunk.acceptance.double().sum())
    except BaseException:
        if keep_spool():
            writer.close()
        else:
            writer.discard()
        raise
    return seen
