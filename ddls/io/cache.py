"""The user cache: results that are slow to compute and fixed by their inputs (reference statistics of a data
set's split, calibration fits of a checkpoint), kept between runs so `tune`, `compare`, `sweep` and `eval`
compute each once.

Where: $DDLS_CACHE_DIR, else $XDG_CACHE_HOME/ddls, else ~/.cache/ddls; DDLS_CACHE_DIR=off turns it off.
An entry is an .npz named by the sha256 of its kind, inputs and settings (`key`), written atomically. It
holds that key and a digest of its arrays: one that cannot be read or does not match is computed again
and rewritten, never trusted. A cache that cannot be written is skipped; the result is the same.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

VERSION = 1  # entries of another layout are misses
OFF = ("off", "none", "0")
Arrays = dict[str, np.ndarray]


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is turned off."""
    own = os.environ.get("DDLS_CACHE_DIR")
    if own is not None and own.strip():
        return None if own.strip().lower() in OFF else Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ddls"


def key(kind: str, parts: dict[str, Any]) -> str:
    """sha256 of the kind, the inputs' digests and the settings (JSON, keys sorted)."""
    text = json.dumps({"kind": kind, "version": VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _feed(h, a: np.ndarray, label: str = "") -> None:
    """One array into hash `h`: its label, dtype, shape and bytes."""
    h.update(f"{label}{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())


def digest_arrays(arrays: Arrays) -> str:
    """sha256 over each array's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        _feed(h, np.ascontiguousarray(arrays[name]), f"{name}|")
    return h.hexdigest()


def digest_tensors(*tensors) -> str:
    """sha256 of tensors (or arrays) as the cache keys inputs: images, network weights."""
    import torch

    h = hashlib.sha256()
    for t in tensors:
        _feed(h, t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t))
    return h.hexdigest()


def digest_modules(*modules) -> str:
    """sha256 of networks' parameters and buffers, by name (None counts as nothing)."""
    h = hashlib.sha256()
    for m in modules:
        if m is None:
            continue
        for name, t in m.state_dict().items():
            h.update(name.encode())
            h.update(digest_tensors(t).encode())
    return h.hexdigest()


def path_for(kind: str, parts: dict[str, Any]) -> Path | None:
    where = cache_dir()
    return None if where is None else where / f"{kind}-{key(kind, parts)}.npz"


def load(kind: str, parts: dict[str, Any]) -> tuple[Arrays, dict] | None:
    """(arrays, meta) of a whole, matching entry; None for a miss (absent, unreadable, or not this key)."""
    path = path_for(kind, parts)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = json.loads(str(npz["cache"]))
            arrays = {name: npz[name] for name in npz.files if name != "cache"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key(kind, parts) \
            or stored.get("digest") != digest_arrays(arrays):
        return None
    return arrays, stored.get("meta", {})


def store(kind: str, parts: dict[str, Any], arrays: Arrays, meta: dict | None = None) -> Path | None:
    """Write an entry atomically; None (nothing written) when the cache is off or cannot be written."""
    from ..errors import DDLSError
    from .outputs import write_bytes

    path = path_for(kind, parts)
    if path is None:
        return None
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    stamp = {"key": key(kind, parts), "digest": digest_arrays(arrays), "meta": meta or {}, "inputs": parts}
    payload = {**arrays, "cache": np.array(json.dumps(stamp, sort_keys=True, default=str))}
    try:
        return write_bytes(path, lambda fh: np.savez(fh, **payload))
    except (OSError, DDLSError):
        return None


def cached(kind: str, parts: dict[str, Any], compute: Callable[[], tuple[Arrays, dict]]) -> tuple[Arrays, dict]:
    """The entry for (kind, parts) from the cache, or `compute()` (arrays, meta), stored for next time."""
    found = load(kind, parts)
    if found is not None:
        return found
    arrays, meta = compute()
    store(kind, parts, arrays, meta)
    return arrays, meta
