"""What a checkpoint or samples file must hold, checked before anything is built from it.

Every check names the field that is wrong in one line. Sizes are measured against the
machine's memory (`memory_bytes`): a file whose networks or arrays could never fit is
refused before a byte is allocated for them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DDLSError

MAX_DIM = 1 << 24  # one entry of a latent shape or of an architecture's size field
MAX_LATENT = 1 << 24  # elements of one latent vector
MAX_RANK = 4  # a latent is a vector (D,) or at most (C, H, W)
MAX_TEXT = 1 << 20  # characters of a JSON field
SAMPLE_KINDS = "fiu"  # samples are real numbers: float, int, unsigned; never bool, complex, text or objects


def json_kind(value: Any) -> str:
    """The kind of a value read from a file, in JSON's words, for a one-line refusal."""
    names = {bool: "true or false", int: "a number", float: "a number", str: "text", list: "a list",
             dict: "an object"}
    return "null" if value is None else names.get(type(value), f"a {type(value).__name__}")


def memory_bytes() -> int:
    """The machine's physical memory (MemTotal of /proc/meminfo, else sysconf), or 2**40 if neither says."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def check_fits(nbytes: float, what: str, path: Path | str,
               hint: str = "the file is damaged or not meant for this machine") -> None:
    """Refuse `what` when it alone needs more than the machine's memory."""
    limit = memory_bytes()
    if nbytes > limit:
        raise DDLSError(f"{path}: {what} needs {human_bytes(nbytes)}, more than this machine's "
                        f"{human_bytes(limit)} of memory; {hint}")


def json_field(payload: dict, key: str, path: Path | str, *, required: bool, kind: type) -> Any:
    """The JSON text in `payload[key]`, parsed and of `kind` (dict or list); absent and not required: empty."""
    raw = payload.get(key)
    if raw is None and not required:
        return kind()
    if not isinstance(raw, str) or len(raw) > MAX_TEXT:
        got = "missing" if raw is None else f"a {type(raw).__name__}"
        raise DDLSError(f"{path}: field {key!r} must be a JSON string, it is {got}")
    try:
        value = json.loads(raw) if raw else kind()
    except (json.JSONDecodeError, RecursionError):
        raise DDLSError(f"{path}: field {key!r} is not valid JSON") from None
    if not isinstance(value, kind):
        raise DDLSError(f"{path}: field {key!r} must hold a JSON {'object' if kind is dict else kind.__name__}, "
                        f"it holds a {type(value).__name__}")
    return value


def _int(value: Any, field: str, path: Path, low: int = 1, high: int = MAX_DIM) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DDLSError(f"{path}: {field} must be an integer in [{low}, {high}], got {value!r}")
    return value


def check_spec(spec: Any, field: str, path: Path) -> dict:
    """An architecture spec: {'arch': name, size fields...}; sizes are integers in [1, MAX_DIM]."""
    from ..models import ARCHITECTURES

    if not isinstance(spec, dict):
        raise DDLSError(f"{path}: {field} must be a JSON object, it is a {type(spec).__name__}")
    if spec.get("arch") not in ARCHITECTURES:
        raise DDLSError(f"{path}: {field}.arch is {spec.get('arch')!r}; known: {', '.join(ARCHITECTURES)}")
    for key, value in spec.items():
        name = f"{field}.{key}"
        if isinstance(value, bool) or value is None or (isinstance(value, str) and len(value) < 64):
            continue
        if isinstance(value, int):
            _int(value, name, path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise DDLSError(f"{path}: {name} must be finite, got {value!r}")
        else:
            raise DDLSError(f"{path}: {name} must be a number, flag or short name, it is a {type(value).__name__}")
    return spec


def check_latent_shape(value: Any, path: Path, g_spec: dict | None = None) -> tuple[int, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RANK:
        raise DDLSError(f"{path}: model.latent_shape must be a list of 1 to {MAX_RANK} sizes, got {value!r}")
    shape = tuple(_int(v, "model.latent_shape", path) for v in value)
    if math.prod(shape) > MAX_LATENT:
        raise DDLSError(f"{path}: model.latent_shape {list(shape)} has {math.prod(shape):,} elements, "
                        f"more than {MAX_LATENT:,}")
    z_dim = (g_spec or {}).get("z_dim")
    if isinstance(z_dim, int) and math.prod(shape) != z_dim:
        raise DDLSError(f"{path}: model.latent_shape {list(shape)} does not match the generator's "
                        f"z_dim {z_dim}")
    return shape


def check_state_dict(state: Any, field: str, path: Path) -> dict[str, torch.Tensor]:
    """A state dict: string keys to tensors, together no larger than the machine's memory."""
    if not isinstance(state, dict):
        got = "missing" if state is None else f"a {type(state).__name__}"
        raise DDLSError(f"{path}: field {field!r} must be a state dict of tensors, it is {got}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise DDLSError(f"{path}: field {field!r} must map names to tensors; entry {str(key)[:60]!r} "
                            f"is a {type(value).__name__}")
    check_fits(sum(t.numel() * t.element_size() for t in state.values()), f"{field} weights", path)
    return state


def check_ddls_payload(payload: dict, path: Path) -> dict:
    """The fields of a `ddls train` checkpoint, parsed: {'model', 'config', 'extra', 'step'}."""
    model = json_field(payload, "model", path, required=True, kind=dict)
    for net in ("generator", "discriminator"):
        if net not in model:
            raise DDLSError(f"{path}: model.{net} is missing; the checkpoint is incomplete")
        check_spec(model[net], f"model.{net}", path)
    check_latent_shape(model.get("latent_shape"), path, model["generator"])
    if not isinstance(model.get("energy"), str):
        raise DDLSError(f"{path}: model.energy must be a name (gan, wgan, ae), got {model.get('energy')!r}")
    if not isinstance(model.get("data"), (str, type(None))):
        raise DDLSError(f"{path}: model.data must be a data set name, got {model.get('data')!r}")
    config = json_field(payload, "config", path, required=False, kind=dict)
    extra = json_field(payload, "extra", path, required=False, kind=dict)
    step = payload.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise DDLSError(f"{path}: field 'step' must be a non-negative integer, got {step!r}")
    for net in ("generator", "discriminator"):
        check_state_dict(payload.get(net), net, path)
    return {"model": model, "config": config, "extra": extra, "step": step}


def check_buildable(spec: dict, field: str, where: Path | str, copies: int = 1,
                    hint: str = "the file is damaged or not meant for this machine") -> None:
    """Build `spec` on the meta device (no memory) and refuse it when `copies` of its weights (4 when
    training: weights, gradients, two Adam moments) would not fit in memory."""
    from ..models import build

    try:
        with torch.device("meta"):
            shadow = build(spec)
    except DDLSError as exc:
        raise DDLSError(f"{where}: {field}: {exc}") from None
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
        raise DDLSError(f"{where}: {field} cannot be built ({str(exc).splitlines()[0][:120]})") from None
    nbytes = sum(t.numel() * t.element_size() for t in [*shadow.parameters(), *shadow.buffers()])
    check_fits(copies * nbytes, f"{field} ({spec.get('arch')})", where, hint)


def build_checked(spec: dict, field: str, path: Path) -> nn.Module:
    """Build `spec`, once `check_buildable` says its weights fit in memory."""
    from ..models import build

    check_buildable(spec, field, path)
    return build(spec)


def check_weights(module: nn.Module, state: dict, what: str, path: Path) -> None:
    """Each stored tensor has the kind of number its slot holds (floats for weights) and is finite."""
    slots = module.state_dict()
    for key, value in state.items():
        slot = slots.get(key)
        if not isinstance(value, torch.Tensor) or slot is None:
            continue  # missing or unexpected keys are load_state_dict's to report
        if value.is_complex() or value.is_floating_point() != slot.is_floating_point() or value.dtype == torch.bool:
            raise DDLSError(f"{path}: {what} weight {key!r} is {str(value.dtype).replace('torch.', '')}, "
                            f"expected {str(slot.dtype).replace('torch.', '')}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise DDLSError(f"{path}: {what} weight {key!r} holds NaN or inf; the checkpoint is damaged")


def npy_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of an open .npy stream, without reading its data."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"npy version {version}")
    return tuple(shape), dtype


def check_samples_header(shape: tuple[int, ...], dtype: np.dtype, path: Path) -> None:
    """Samples `x`: (N, D) points or (N, C, H, W) images, N >= 1, of real numbers that fit in memory."""
    if dtype.kind not in SAMPLE_KINDS:
        raise DDLSError(f"{path}: array 'x' is {dtype}; samples must be real numbers (float or int)")
    if len(shape) not in (2, 4) or 0 in shape:
        raise DDLSError(f"{path}: array 'x' has shape {shape}; samples are (N, D) points or (N, C, H, W) images "
                        f"with N >= 1")
    check_fits(math.prod(shape) * dtype.itemsize, "array 'x'", path)


def check_samples_meta(raw: np.ndarray, path: Path) -> dict:
    """`meta`: a JSON object in a 0-d string array; its `data` names a data set or is absent."""
    if raw.dtype.kind != "U" or raw.shape != ():
        raise DDLSError(f"{path}: array 'meta' must be one JSON string, it is {raw.dtype} of shape {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except (json.JSONDecodeError, RecursionError):
        raise DDLSError(f"{path}: array 'meta' is not valid JSON") from None
    if not isinstance(meta, dict):
        raise DDLSError(f"{path}: array 'meta' must hold a JSON object, it holds a {type(meta).__name__}")
    if not isinstance(meta.get("data"), (str, type(None))):
        raise DDLSError(f"{path}: meta.data must be a data set name, got {meta.get('data')!r}")
    return meta
