"""Reading sample files written by `ddls sample`."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DDLSError
from .schema import check_fits, check_samples_header, check_samples_meta, npy_header


def read_samples(path: str | Path) -> tuple[np.ndarray, dict]:
    """(samples x, meta) from a .npz; never unpickles. The header of `x` and the `meta` are checked
    (see ddls.io.schema) before `x` is read."""
    path = Path(path)
    if not path.is_file():
        raise DDLSError(f"samples file not found: {path}")
    try:
        check_fits(path.stat().st_size, "the file", path)
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files:
                raise DDLSError(f"{path} has no array 'x'; was it written by `ddls sample`?")
            with npz.zip.open("x.npy") as fh:
                shape, dtype = npy_header(fh)
            check_samples_header(shape, dtype, path)
            meta = check_samples_meta(npz["meta"], path) if "meta" in npz.files else {}
            x = npz["x"]
    except DDLSError:
        raise
    except PermissionError as exc:
        raise DDLSError(f"cannot read {path}: {exc.strerror}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, MemoryError) as exc:
        raise DDLSError(f"{path} is not a readable .npz sample file ({type(exc).__name__})") from None
    return x, meta
