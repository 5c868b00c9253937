"""Resume files: the progress of an interrupted `sample` or `train` run, saved and read back.

A resume file holds only tensors, numbers and strings, so it loads with
`torch.load(weights_only=True)`, and it is written atomically: a crash leaves the
previous one whole. It records the identity of its run (the options that decide the
result); resuming under a different identity is refused, since the result would be
neither run.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import read_checkpoint
from ..sampling.driver import ChainProgress, SampleProgress
from ..errors import DDLSError, UnfinishedRun
from .outputs import write_bytes
from ..sampling.samplers import State
from ..training.trainer import TrainProgress

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


def _cpu(t):
    return t.detach().cpu() if isinstance(t, torch.Tensor) else t


def _state(st: State) -> list:
    return [_cpu(st.position), _cpu(st.energy), _cpu(st.grad)]


def save_sample_progress(path: str | os.PathLike, identity: dict, progress: SampleProgress) -> None:
    chain = None
    if progress.chain is not None:
        c = progress.chain
        chain = {"step": int(c.step), "state": _state(c.state), "accept_sum": _cpu(c.accept_sum),
                 "first_bad": _cpu(c.first_bad), "records": [_cpu(r) for r in c.records],
                 "generator_state": _cpu(c.generator_state), "last_good": _state(c.last_good),
                 "eps": _cpu(c.eps), "restarts": [list(r) for r in c.restarts]}
    _write(Path(path), SAMPLE_FORMAT, identity, {
        "chunk": int(progress.chunk), "latents": progress.latents, "samples": progress.samples,
        "accepts": progress.accepts, "trajs": progress.trajs,
        "restarts": [list(r) for r in progress.restarts], "chain": chain})


def load_sample_progress(path: str | os.PathLike, identity: dict,
                         device: torch.device | str = "cpu") -> SampleProgress:
    """The progress saved in `path`, with the current chunk's tensors on `device`."""
    path = Path(path)
    p = _read(path, SAMPLE_FORMAT, identity)
    try:
        chain = None
        if p["chain"] is not None:
            c = p["chain"]

            def on(t: Any):
                return t.to(device) if isinstance(t, torch.Tensor) else t

            chain = ChainProgress(
                step=int(c["step"]), state=State(*map(on, c["state"])), accept_sum=on(c["accept_sum"]),
                first_bad=on(c["first_bad"]), records=list(c["records"]), generator_state=c["generator_state"],
                last_good=State(*map(on, c["last_good"])), eps=on(c["eps"]),
                restarts=[tuple(r) for r in c["restarts"]])
        return SampleProgress(int(p["chunk"]), list(p["latents"]), list(p["samples"]), list(p["accepts"]),
                              list(p["trajs"]), [tuple(r) for r in p["restarts"]], chain)
    except (KeyError, TypeError, ValueError) as exc:
        raise DDLSError(f"{path} is an incomplete resume file ({type(exc).__name__}: {exc}); "
                        f"delete it to start over") from None


def save_train_progress(path: str | os.PathLike, identity: dict, progress: TrainProgress) -> None:
    _write(Path(path), TRAIN_FORMAT, identity, {
        "step": int(progress.step), "generator": progress.generator, "discriminator": progress.discriminator,
        "opt_g": progress.opt_g, "opt_d": progress.opt_d, "history": json.dumps(progress.history),
        "generator_state": _cpu(progress.generator_state),
        "loss_state": {k: _cpu(v) for k, v in progress.loss_state.items()}, "scalers": progress.scalers})


# the number of steps may change on resume: it only says where the run ends (no schedule reads it)
TRAIN_FREE = ("config.steps",)


def load_train_progress(path: str | os.PathLike, identity: dict) -> TrainProgress:
    path = Path(path)
    p = _read(path, TRAIN_FORMAT, identity, TRAIN_FREE)
    try:
        return TrainProgress(int(p["step"]), p["generator"], p["discriminator"], p["opt_g"], p["opt_d"],
                             json.loads(p["history"]), p["generator_state"], dict(p.get("loss_state") or {}),
                             dict(p.get("scalers") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise DDLSError(f"{path} is an incomplete resume file ({type(exc).__name__}: {exc}); "
                        f"delete it to start over") from None


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
