"""ddls's own checkpoints, written by `ddls train` and `ddls calibrate`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.checkpoint import Model, is_ddls_payload, model_from_payload

NAME = "ddls"
DESCRIPTION = "ddls (written by `ddls train` / `ddls calibrate`)"
ONE_FILE = True


def detect(payload: Any, path: Path) -> bool:
    return is_ddls_payload(payload)


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None) -> Model:
    model = model_from_payload(payload, path)
    model.meta["architecture"] = model.meta["model"]["generator"].get("arch")
    return model
