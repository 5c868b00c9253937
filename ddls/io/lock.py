"""One run per output: `<out>.lock` holds the pid of the run writing `out`.

The lock file is created with O_EXCL, so of two runs started together exactly one gets
it; the other is refused in one line. A lock whose pid is no longer alive (a run killed
with -9) is stale and is taken over. The lock is removed when its run ends.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator

from ..errors import DDLSError


def lock_path(out: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(out).rstrip(os.sep) or os.sep}.lock")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> int | None:
    """The pid in a lock file, or None when it is unreadable (being written, or garbage)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    return True


@contextlib.contextmanager
def output_lock(out: str | os.PathLike) -> Iterator[Path]:
    """Hold `<out>.lock` for the block; refuse when a live process holds it, take it over when stale.

    Under torchrun only rank 0 writes the output, so only rank 0 takes the lock."""
    path = lock_path(out)
    if os.environ.get("RANK", "0") not in ("", "0") and "WORLD_SIZE" in os.environ:
        yield path
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        got = _try_create(path)
        if not got:
            pid = _holder(path)
            if pid is not None and _alive(pid):
                who = "this process" if pid == os.getpid() else f"process {pid}"
                raise DDLSError(f"{out} is being written by another ddls run ({who}, see {path}); wait for it "
                                f"to finish or give another output")
            # stale: its run died without removing it; replace it atomically and take it
            path.unlink(missing_ok=True)
            got = _try_create(path)
            if not got:
                raise DDLSError(f"{out} is being written by another ddls run (see {path}); wait for it to finish "
                                f"or give another output")
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise DDLSError(f"cannot write beside {out}: {exc.strerror}") from None
        raise DDLSError(f"cannot create the lock {path}: {exc.strerror}") from None
    try:
        yield path
    finally:
        if _holder(path) == os.getpid():
            path.unlink(missing_ok=True)
