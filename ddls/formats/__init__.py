"""Checkpoint formats: find which library wrote a file and build the Model it holds.

Each module here reads one library's layout and exposes NAME, DESCRIPTION, ONE_FILE (True when
one file holds both networks), `detect(payload, path)` and `load(payload, path, disc, disc_path) -> Model`.
A new format is one such module and one entry in FORMATS (detection tries them in order).
Everything is read through `read_checkpoint` (torch.load weights_only=True).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..io.checkpoint import Model, read_checkpoint
from ..errors import DDLSError
from . import ddls_native
from . import gan_collections
from . import mimicry
from . import studiogan
from ._common import summary_keys

FORMATS = (ddls_native, gan_collections, mimicry, studiogan)


def supported() -> str:
    return "; ".join(f.DESCRIPTION for f in FORMATS)


def load_any(ckpt: str | os.PathLike, disc: str | os.PathLike | None = None, *, label: int | None = None,
             device: str | torch.device = "cpu") -> Model:
    """The Model in `ckpt` (and `disc`, for libraries that save G and D apart), whichever format wrote it:
    ddls's own checkpoints and those of the libraries in FORMATS (`ddls.load_model` reads ddls's alone)."""
    path = Path(ckpt)
    payload = read_checkpoint(path)
    disc_path = Path(disc) if disc is not None else None
    disc_payload = read_checkpoint(disc_path) if disc_path is not None else None
    for fmt in FORMATS:
        if fmt.detect(payload, path):
            if disc_path is not None and fmt.ONE_FILE:
                raise DDLSError(f"{path} is a {fmt.NAME} checkpoint, which holds both networks; "
                                f"drop the separate discriminator file")
            model = fmt.load(payload, path, disc_payload, disc_path)
            break
    else:
        hint = ""
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            hint = " It is a bare state dict of one network, with no generator/discriminator pair."
        raise DDLSError(f"{path}: no checkpoint format ddls knows (found {summary_keys(payload)}).{hint} "
                        f"Supported: {supported()}")
    if label is not None:
        model.label = model.checked_label(label, source=str(path))
    model.meta = {**(model.meta or {}), "ckpt": str(path), "disc": None if disc is None else str(disc)}
    return model.to(device)


def describe(model: Model) -> dict:
    """What `ddls inspect` prints: where the model came from and how big it is."""
    meta = model.meta or {}
    return {
        "format": meta.get("format"),
        "architecture": meta.get("architecture"),
        "variant": meta.get("variant"),
        "latent_shape": list(model.latent_shape),
        "classes": model.num_classes,
        "energy": model.energy_kind,
        "generator_parameters": sum(p.numel() for p in model.generator.parameters()),
        "discriminator_parameters": sum(p.numel() for p in model.discriminator.parameters()),
    }
