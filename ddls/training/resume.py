"""The progress of an interrupted `ddls train` run, saved to and read from its resume file
(ddls.io.resume writes and checks the file; this module knows the trainer's progress)."""
from __future__ import annotations

import json
import os

from ..io.resume import TRAIN_FORMAT, cpu, incomplete, read_progress, write_progress
from .trainer import TrainProgress

# the number of steps may change on resume: it only says where the run ends (no schedule reads it)
TRAIN_FREE = ("config.steps",)


def save_train_progress(path: str | os.PathLike, identity: dict, progress: TrainProgress) -> None:
    write_progress(path, TRAIN_FORMAT, identity, {
        "step": int(progress.step), "generator": progress.generator, "discriminator": progress.discriminator,
        "opt_g": progress.opt_g, "opt_d": progress.opt_d, "history": json.dumps(progress.history),
        "generator_state": cpu(progress.generator_state),
        "loss_state": {k: cpu(v) for k, v in progress.loss_state.items()}, "scalers": progress.scalers})


def load_train_progress(path: str | os.PathLike, identity: dict) -> TrainProgress:
    p = read_progress(path, TRAIN_FORMAT, identity, TRAIN_FREE)
    try:
        return TrainProgress(int(p["step"]), p["generator"], p["discriminator"], p["opt_g"], p["opt_d"],
                             json.loads(p["history"]), p["generator_state"], dict(p.get("loss_state") or {}),
                             dict(p.get("scalers") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise incomplete(path, exc) from None
