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
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except RuntimeError as exc:
        # torch.save reports a failed write (a full disk) as a RuntimeError; the OSError is its context
        if isinstance(exc.__context__, OSError):
            raise exc.__context__ from None
        raise
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


# Names derived from an output: `<out>.resume.pt`, `<out>.parts`, `<out>.lock`, and the
# temporary `.<name>.XXXXXXXX.tmp` of each atomic write; the longest adds this many characters.
DERIVED_NAME_EXTRA = len(".") + len(".resume.pt") + len(".XXXXXXXX.tmp")


def _name_max(folder: Path) -> int:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_output_path(out: str | os.PathLike, inputs: list = (), *, what: str = "output") -> Path:
    """Refuse an output that cannot be written safely: empty, too long for the file system once the
    names derived from it are added, or the same file as one of `inputs` (it would be overwritten)."""
    text = os.fspath(out)
    if not text.strip():
        raise DDLSError(f"the {what} path is empty; give a file name")
    if "\0" in text:
        raise DDLSError(f"the {what} path contains a NUL character")
    path = Path(text)
    longest = _name_max(path.parent if str(path.parent) else Path(".")) - DERIVED_NAME_EXTRA
    if len(os.fsencode(path.name)) > longest:
        raise DDLSError(f"the {what} name is {len(os.fsencode(path.name))} bytes long; this file system allows "
                        f"{longest} for it (its temporary and resume files add {DERIVED_NAME_EXTRA}); "
                        f"give a shorter name")
    if len(os.fsencode(os.path.abspath(text))) + DERIVED_NAME_EXTRA > 4000:
        raise DDLSError(f"the {what} path is too long; give a shorter one")
    for given in inputs:
        if given is None or not os.fspath(given):
            continue
        source = Path(given)
        same = os.path.abspath(source) == os.path.abspath(path)
        if not same and source.exists() and path.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(source, path)
        if same:
            raise DDLSError(f"the {what} {path} is the input {source}; writing it would destroy the input. "
                            f"Give another output name")
    return path


def os_error_line(exc: OSError, out: str | os.PathLike | None = None) -> str:
    """One line for a failed read or write: a full disk, a read-only or immutable file, a missing permission."""
    import errno

    where = exc.filename or out or "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"no space left for {where} ({exc.strerror})"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: {exc.strerror} (read-only, immutable or not yours)"
    return f"{where}: {exc.strerror or exc}"
