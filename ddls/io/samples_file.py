"""Reading sample files written by `ddls sample`."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DDLSError


def read_samples(path: str | Path) -> tuple[np.ndarray, dict]:
    """(samples x, meta) from a .npz; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise DDLSError(f"samples file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files:
                raise DDLSError(f"{path} has no array 'x'; was it written by `ddls sample`?")
            x = npz["x"]
            meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    except DDLSError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as exc:
        raise DDLSError(f"{path} is not a readable .npz sample file ({type(exc).__name__})") from exc
    return x, meta
