"""`ddls tune`'s reference file: a recipe plus the checkpoint (and discriminator) it was tuned on,
named by path and sha256 (ddls.tuning.recipe). Loading it loads those files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DDLSError
from ..io.checkpoint import Model

NAME = "ddls-tuned"
ONE_FILE = True  # it names the checkpoint (and discriminator file) it was tuned on
DESCRIPTION = "ddls-tuned (written by `ddls tune` for checkpoints of other formats)"


def detect(payload: Any, path: Path) -> bool:
    from ..tuning.recipe import REFERENCE_FORMAT

    return isinstance(payload, dict) and payload.get("format") == REFERENCE_FORMAT


def _checked(payload: dict, key: str, path: Path) -> str | None:
    from ..io.resume import file_digest

    named = payload.get(key)
    if named is None:
        return None
    if not Path(named).is_file():
        raise DDLSError(f"{path} was tuned on {named}, which is gone; put it back or run `ddls tune` again")
    if file_digest(named) != payload.get(f"{key}_sha256"):
        raise DDLSError(f"{named} changed since {path} was tuned on it (sha256 differs); run `ddls tune` again")
    return named


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None) -> Model:
    from . import load_any
    from ..tuning.recipe import stored_recipe

    if disc_path is not None:
        raise DDLSError(f"{path} names its own discriminator; drop the discriminator file")
    model = load_any(_checked(payload, "ckpt", path), _checked(payload, "disc", path))
    model.meta = {**(model.meta or {}), "recipe": stored_recipe(payload), "tuned_from": payload.get("ckpt")}
    return model
