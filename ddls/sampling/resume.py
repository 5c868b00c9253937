"""The progress of an interrupted `ddls sample` run, saved to and read from its resume file
(ddls.io.resume writes and checks the file; this module knows the driver's progress)."""
from __future__ import annotations

import os
from typing import Any

import torch

from ..io.resume import SAMPLE_FORMAT, cpu, incomplete, read_progress, write_progress
from .driver import ChainProgress, SampleProgress
from .samplers import State


def _state(st: State) -> list:
    return [cpu(st.position), cpu(st.energy), cpu(st.grad)]


def save_sample_progress(path: str | os.PathLike, identity: dict, progress: SampleProgress) -> None:
    chain = None
    if progress.chain is not None:
        c = progress.chain
        chain = {"step": int(c.step), "state": _state(c.state), "accept_sum": cpu(c.accept_sum),
                 "first_bad": cpu(c.first_bad), "records": [cpu(r) for r in c.records],
                 "generator_state": cpu(c.generator_state), "last_good": _state(c.last_good),
                 "eps": cpu(c.eps), "restarts": [list(r) for r in c.restarts]}
    write_progress(path, SAMPLE_FORMAT, identity, {
        "chunk": int(progress.chunk), "latents": progress.latents, "samples": progress.samples,
        "accepts": progress.accepts, "trajs": progress.trajs,
        "restarts": [list(r) for r in progress.restarts], "chain": chain})


def load_sample_progress(path: str | os.PathLike, identity: dict,
                         device: torch.device | str = "cpu") -> SampleProgress:
    """The progress saved in `path`, with the current chunk's tensors on `device`."""
    p = read_progress(path, SAMPLE_FORMAT, identity)
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
        raise incomplete(path, exc) from None
