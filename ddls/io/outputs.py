"""Atomic writers: every output appears whole under its final name, or not at all."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import DDLSError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it over `path` only if the block succeeds."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DDLSError(f"cannot create output folder {parent}: {exc.strerror}") from exc
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> Path:
    """Arrays plus a JSON string `meta` saying how they were made."""
    payload = dict(arrays)
    if meta is not None:
        payload["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return write_bytes(path, lambda fh: np.savez(fh, **payload))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_bytes(path, lambda fh: fh.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    fields = list(rows[0]) if rows else []
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return write_bytes(path, lambda fh: fh.write(buf.getvalue().encode()))


def save_figure(path: str | os.PathLike, fig) -> Path:
    fmt = Path(path).suffix.lstrip(".") or "png"
    return write_bytes(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120, bbox_inches="tight"))
