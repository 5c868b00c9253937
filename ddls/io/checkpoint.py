"""Reading and writing checkpoints. Only `torch.load(..., weights_only=True)`: no code runs on load."""
from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.model import Model
from ..core.score_map import Calibration
from ..errors import DDLSError
from .outputs import write_bytes
from .schema import build_checked, check_ddls_payload, check_fits, check_weights

FORMAT = "ddls"
FORMAT_VERSION = 1


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True, every failure turned into one line."""
    path = Path(path)
    if not path.exists():
        raise DDLSError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise DDLSError(f"checkpoint {path} is a folder; give the .pt file inside it")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DDLSError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    check_fits(size, "the file", path)
    if path.suffix == ".safetensors":
        from .safetensors_io import read_safetensors

        return read_safetensors(path, map_location)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            raise DDLSError(
                f"{path} was refused: it asks to import {found.group(1)}, and ddls loads only tensors and "
                f"plain data (torch.load weights_only=True); re-save the weights as a plain state dict"
            ) from None
        raise DDLSError(f"{path} is not a readable PyTorch checkpoint (unpickling failed); is the file "
                        f"complete?") from None
    except PermissionError as exc:
        raise DDLSError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError, TypeError,
            AttributeError, MemoryError, OverflowError, UnicodeDecodeError) as exc:
        # torch.load fails in many ways on a file that is not a checkpoint (a text file named .pt
        # raises IndexError); all of them mean the same to a user
        raise DDLSError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}); "
                        f"is the file complete?") from None


def save_ddls(path: str | os.PathLike, *, g: nn.Module, d: nn.Module, g_spec: dict, d_spec: dict,
              latent_shape: tuple[int, ...], energy_kind: str, config_json: str, step: int,
              data: str | None = None, optim_g: dict | None = None, optim_d: dict | None = None,
              extra: dict[str, Any] | None = None, score_map: dict | None = None) -> Path:
    """`score_map`: the state of a calibration map the energy applies to the score (Calibration.state())."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps({"generator": g_spec, "discriminator": d_spec, "latent_shape": list(latent_shape),
                             "energy": energy_kind, "data": data,
                             **({"score_map": score_map} if score_map else {})}),
        "config": config_json,
        "step": int(step),
        "generator": g.state_dict(),
        "discriminator": d.state_dict(),
        "optim_g": optim_g or {},
        "optim_d": optim_d or {},
        "extra": json.dumps(extra or {}),
    }
    return write_bytes(path, lambda fh: torch.save(payload, fh))


def load_state(module: nn.Module, state: dict, what: str, path: Path) -> None:
    """load_state_dict (strict) whose failure is one line naming the file and the first mismatch."""
    check_weights(module, state, what, path)
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DDLSError(f"{path}: {what} weights do not fit its architecture: {lines[-1][:200]}") from exc


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> Model:
    """Load a checkpoint of ddls's own (written by `ddls train` or `ddls calibrate`); `ddls.load_any`
    reads every format ddls knows, other libraries' included."""
    path = Path(path)
    return model_from_payload(read_checkpoint(path), path).to(device)


def is_ddls_payload(ckpt: Any) -> bool:
    return isinstance(ckpt, dict) and ckpt.get("format") == FORMAT


def model_from_payload(ckpt: Any, path: Path) -> Model:
    """The Model in an already-read `ddls train` checkpoint, on the CPU."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        keys = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DDLSError(f"{path} is not a ddls checkpoint (found {keys}); supported: checkpoints "
                        f"written by `ddls train`")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise DDLSError(f"{path} has ddls format version {ckpt.get('format_version')}, this ddls reads "
                        f"{FORMAT_VERSION}; upgrade ddls")
    fields = check_ddls_payload(ckpt, path)  # before anything is built
    model = fields["model"]
    g = build_checked(model["generator"], "model.generator", path)
    d = build_checked(model["discriminator"], "model.discriminator", path)
    load_state(g, ckpt["generator"], "generator", path)
    load_state(d, ckpt["discriminator"], "discriminator", path)
    meta = {"config": fields["config"], "step": fields["step"], "model": model, "extra": fields["extra"],
            "format": FORMAT}
    score_map = None
    if model.get("score_map"):
        score_map = Calibration.from_state(model["score_map"])
    # a loaded model samples: batch norm on its running statistics, whoever calls the networks
    return Model(g.eval(), d.eval(), tuple(model["latent_shape"]), model["energy"], model.get("data"), meta,
                 score_map=score_map)
