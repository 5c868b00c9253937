"""Checkpoint formats: find which library wrote a file and build the Model it holds.

Each module here reads one library's layout and exposes NAME, DESCRIPTION, ONE_FILE (True when
one file holds both networks), `detect(payload, path)` and `load(payload, path, disc, disc_path) -> Model`.
A new format is one such module and one entry in FORMATS (detection tries them in order).
Everything is read through `read_checkpoint` (torch.load weights_only=True).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch

from ..io.checkpoint import Model, read_checkpoint
from ..errors import DDLSError
from ..models.factory import trusting
from . import ddls_native
from . import gan_collections
from . import mimicry
from . import own
from . import studiogan
from . import tuned
from ._common import summary_keys

FORMATS = (ddls_native, own, gan_collections, mimicry, studiogan, tuned)


def supported() -> str:
    return "; ".join(f.DESCRIPTION for f in FORMATS)


def load_any(ckpt: str | os.PathLike, disc: str | os.PathLike | None = None, *, label: int | None = None,
             device: str | torch.device = "cpu", factory: str | None = None,
             trust_factory: bool | str | Iterable[str] | None = None) -> Model:
    """The Model in `ckpt` (and `disc`, for libraries that save G and D apart), whichever format wrote it:
    ddls's own checkpoints and those of the libraries in FORMATS (`ddls.load_model` reads ddls's alone).

    factory: `pkg.mod:fn` or `path/to/gan.py:fn`, a function that builds your own networks, whose
    state dicts `ckpt` holds (see ddls.models.factory).
    trust_factory: whether the factory a `ddls.save` file names may be imported and run: True, False, or
    the module prefixes and paths to trust; None leaves it to DDLS_TRUST_FACTORY (unset: never)."""
    with trusting(trust_factory):
        return _load_any(Path(ckpt), disc, label=label, device=device, factory=factory)


def _load_any(path: Path, disc, *, label, device, factory) -> Model:
    payload = read_checkpoint(path)
    disc_path = Path(disc) if disc is not None else None
    if factory is not None and disc_path is not None:
        raise DDLSError(f"a model factory reads both networks' weights from {path}; drop the discriminator file")
    disc_payload = read_checkpoint(disc_path) if disc_path is not None else None
    if tuned.detect(payload, path):  # it names the checkpoint it was tuned on, in any format
        model = tuned.load(payload, path, disc_payload, disc_path, factory=factory, load_any=load_any)
    elif factory is not None:
        model = own.load_with_factory(factory, payload, path)
    else:
        model = _load_detected(payload, path, disc_payload, disc_path)
    if label is not None:
        model.label = model.checked_label(label, source=str(path))
    model.meta = {**(model.meta or {}), "ckpt": str(path), "disc": None if disc is None else str(disc)}
    return model.to(device)


def _load_detected(payload, path: Path, disc_payload, disc_path: Path | None) -> Model:
    """The Model of the first format that recognises `payload`, or a one-line refusal saying what was found."""
    for fmt in FORMATS:
        if fmt.detect(payload, path):
            if disc_path is not None and fmt.ONE_FILE:
                raise DDLSError(f"{path} is a {fmt.NAME} checkpoint, which holds both networks; "
                                f"drop the separate discriminator file")
            return fmt.load(payload, path, disc_payload, disc_path)
    hint = ""
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        hint = " It is a bare state dict of one network, with no generator/discriminator pair."
    elif isinstance(payload, dict) and any(g in payload and d in payload for g, d in own.PAIRS):
        hint = (" It holds generator and discriminator state dicts: give the model factory (module:function "
                "or file.py:function) that builds the networks.")
    raise DDLSError(f"{path}: no checkpoint format ddls knows (found {summary_keys(payload)}).{hint} "
                    f"Supported: {supported()}")


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
        **({"factory": meta["factory"]} if meta.get("factory") else {}),
    }
