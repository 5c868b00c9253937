"""ddls checkpoints as .safetensors: tensors only, the rest as JSON metadata. Nothing is unpickled."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import DDLSError
from .outputs import atomic_path

NETWORKS = ("generator", "discriminator")
TEXT_FIELDS = ("format", "model", "config", "extra")


def _module():
    try:
        import safetensors.torch as st
    except ImportError as exc:
        raise DDLSError("reading .safetensors needs the safetensors package: pip install safetensors") from exc
    return st


def write_safetensors(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a ddls checkpoint payload; optimiser states are left out (they are for training only)."""
    st = _module()
    tensors = {f"{net}.{k}": v.detach().cpu().contiguous() for net in NETWORKS for k, v in payload[net].items()}
    meta = {k: str(payload[k]) for k in TEXT_FIELDS}
    meta.update(format_version=str(payload["format_version"]), step=str(payload["step"]))
    from safetensors import SafetensorError

    with atomic_path(path) as tmp:
        try:
            st.save_file(tensors, str(tmp), metadata=meta)
        except SafetensorError as exc:  # a failed write (a full disk) comes as text: "... (os error 28)",
            # or, from older releases (0.4.0), as Rust's debug form: "IoError(Os { code: 27, ... })"
            found = re.search(r"os error (\d+)|Os \{ code: (\d+)", str(exc))
            if found is None:
                raise DDLSError(f"cannot write {path}: {str(exc).splitlines()[0][:160]}") from None
            code = int(found.group(1) or found.group(2))
            raise OSError(code, os.strerror(code), str(path)) from None
    return Path(path)


def read_safetensors(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The same payload `torch.load` gives for a ddls .pt file, without optimiser states."""
    st = _module()
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DDLSError(f"{path} is not a readable .safetensors file ({str(exc).splitlines()[0][:120]})") from None
    if meta.get("format") != "ddls":
        raise DDLSError(f"{path} has no ddls metadata; ddls reads .safetensors files written by `ddls export`")
    payload: dict[str, Any] = {k: meta.get(k) for k in TEXT_FIELDS}
    try:
        payload.update(format_version=int(meta["format_version"]), step=int(meta["step"]))
    except (KeyError, ValueError):
        raise DDLSError(f"{path}: ddls metadata lacks format_version/step; re-export it") from None
    for net in NETWORKS:
        prefix = net + "."
        payload[net] = {k[len(prefix):]: v.to(map_location) for k, v in tensors.items() if k.startswith(prefix)}
    payload.update(optim_g={}, optim_d={})
    return payload
