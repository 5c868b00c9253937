"""Resume files: the progress of an interrupted `sample` or `train` run, saved and read back.

A resume file holds only tensors, numbers and strings, so it loads with
`torch.load(weights_only=True)`, and it is written atomically: a crash leaves the
previous one whole. It records the identity of its run (the options that decide the
result); resuming under a different identity is refused, since the result would be
neither run.

This module writes, reads and checks the file; what it holds for each kind of run, and how that
becomes the driver's or the trainer's progress again, is ddls.sampling.resume and ddls.training.resume.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import read_checkpoint
from ..errors import DDLSError, UnfinishedRun
from .outputs import write_bytes

SAMPLE_FORMAT = "ddls-sample-resume"
TRAIN_FORMAT = "ddls-train-resume"
VERSION = 1


def resume_path(out: str | os.PathLike) -> Path:
    """Where the progress of a run writing `out` is kept: `<out>.resume.pt`."""
    return Path(f"{out}.resume.pt")


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file: ties a resume file to the exact checkpoint it sampled."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity_json(identity: dict) -> str:
    return json.dumps(identity, sort_keys=True, default=str)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _write(path: Path, kind: str, identity: dict, body: dict) -> None:
    payload = {"format": kind, "version": VERSION, "identity": _identity_json(identity), **body}
    write_bytes(path, lambda fh: torch.save(payload, fh))


def _read(path: Path, kind: str, identity: dict, free: tuple[str, ...] = ()) -> dict:
    """The payload of a resume file, after checking it belongs to this very run; the flattened keys in
    `free` may differ."""
    try:
        payload = read_checkpoint(path)
    except DDLSError as exc:
        raise DDLSError(f"resume file {exc}; delete it to start over") from None
    if not isinstance(payload, dict) or payload.get("format") != kind or payload.get("version") != VERSION:
        raise DDLSError(f"{path} is not a {kind} file (version {VERSION}); delete it to start over")
    try:
        saved = json.loads(payload["identity"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise DDLSError(f"{path} does not say which run it belongs to; delete it to start over") from None
    now = json.loads(_identity_json(identity))
    a, b = _flatten(saved), _flatten(now)
    diff = [f"{k}={a.get(k)!r} (now {b.get(k)!r})" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in free]
    if diff:
        raise DDLSError(f"{path} belongs to a different run: it was made with {', '.join(diff[:4])}; "
                        f"rerun with the same options, or delete it to start over")
    return payload


def cpu(t):
    """`t` detached on the CPU when it is a tensor: what a resume file stores."""
    return t.detach().cpu() if isinstance(t, torch.Tensor) else t


def write_progress(path: str | os.PathLike, kind: str, identity: dict, body: dict) -> None:
    """Write the progress `body` (tensors, numbers, strings) of run `identity` as a `kind` resume file."""
    _write(Path(path), kind, identity, body)


def read_progress(path: str | os.PathLike, kind: str, identity: dict, free: tuple[str, ...] = ()) -> dict:
    """The body of the `kind` resume file at `path`, refused unless it belongs to run `identity`."""
    return _read(Path(path), kind, identity, free)


def incomplete(path: str | os.PathLike, exc: Exception) -> DDLSError:
    """The one-line error for a resume file that lacks a field its reader needs."""
    return DDLSError(f"{path} is an incomplete resume file ({type(exc).__name__}: {exc}); delete it to start over")


def progress_to_resume(state_file: Path, resume: bool, load: Callable[[Path], Any]) -> Any | None:
    """What `--resume` continues from: the loaded progress, or None to start afresh.

    Without --resume an existing resume file is refused, so saved work is never overwritten.
    """
    if resume and state_file.exists():
        return load(state_file)
    if resume:
        import click

        click.echo(f"no {state_file} to resume from; starting from the beginning", err=True)
    elif state_file.exists():
        raise UnfinishedRun(state_file)
    return None
