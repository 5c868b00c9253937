"""A user's own real points: a .npy file of shape (N, d), usable wherever a 2-D data name is
(`--data points.npy` for sample, eval, sweep, compare and tune)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DDLSError

SUFFIX = ".npy"
HOW = "save an (N, d) array of real numbers with numpy.save"
MAX_VALUES = 2 ** 28  # 2 GiB as float64: far more points than an exact EMD or a calibration uses


def is_points_file(name: str) -> bool:
    """Whether a data name is a points file (by its suffix: a name never chooses code, only a file to read)."""
    return str(name).lower().endswith(SUFFIX)


def load_points(path: str) -> np.ndarray:
    """The points in `path` as float64 (N, d): a readable .npy of finite real numbers, N, d >= 1."""
    file = Path(path)
    try:
        stat = file.stat() if file.is_file() else None
    except (OSError, ValueError):  # a name too long for the file system, or holding a NUL
        stat = None
    if stat is None:
        raise DDLSError(f"points file {str(path)[:200]!r} not found; {HOW}")
    return _load(str(file.resolve()), stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=4)  # one read per file version, however many times a run resolves the name
def _load(path: str, mtime_ns: int, size: int) -> np.ndarray:
    from ..io.schema import SAMPLE_KINDS

    try:  # the header first: shape and type are checked before anything is read into memory
        points = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DDLSError(f"{path} is not a readable .npy array ({type(exc).__name__}); {HOW}") from None
    if not isinstance(points, np.ndarray):
        raise DDLSError(f"{path} holds {type(points).__name__}, not one array; {HOW}")
    if points.dtype.kind not in SAMPLE_KINDS:  # complex would lose its imaginary part, bool and text mean nothing
        hint = "save numpy.real(points) if the imaginary parts are zero" if points.dtype.kind == "c" else HOW
        raise DDLSError(f"{path} holds {points.dtype} values; real points must be real numbers (float or int): "
                        f"{hint}")
    if points.ndim != 2 or 0 in points.shape:
        raise DDLSError(f"{path} holds an array of shape {points.shape}; real points are (N, d), one per row")
    if points.size > MAX_VALUES:
        raise DDLSError(f"{path} holds {points.shape[0]:,} points of {points.shape[1]:,} numbers, more than ddls "
                        f"reads ({MAX_VALUES:,} numbers); keep a random subset")
    points = np.array(points, dtype=np.float64)  # a copy: the file is not held open
    with np.errstate(over="ignore"):  # the networks see float32: beyond its range a point is inf to them
        bad = int((~np.isfinite(points.astype(np.float32))).any(axis=1).sum())
    if bad:
        raise DDLSError(f"{path}: {bad} of {len(points)} points are NaN, inf or beyond float32's range; drop them")
    points.setflags(write=False)
    return points
