"""Helpers the format readers share: renaming keys, reading shapes, one-line errors."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from ..io.checkpoint import load_state
from ..errors import DDLSError
from ..models.spectral_norm import fold_spectral_norm

Rule = tuple[str, str | Callable[[re.Match], str]]


def rename(state: dict[str, Tensor], rules: list[Rule]) -> dict[str, Tensor]:
    """Each key rewritten by the first rule whose pattern matches its start; other keys kept as they are."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            new, n = re.subn("^" + pattern, repl, key, count=1)
            if n:
                key = new
                break
        out[key] = value
    return out


def tensor_state(obj: Any, what: str, path: Path) -> dict[str, Tensor]:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise DDLSError(f"{path}: {what} is not a state dict of tensors")
    return obj


def shape(state: dict[str, Tensor], key: str, path: Path, expected: str) -> tuple[int, ...]:
    """The shape of state[key] (spectral-norm `weight_orig` counts as `weight`), or a one-line error."""
    for k in (key, key.replace("weight", "weight_orig")):
        if k in state:
            return tuple(state[k].shape)
    raise DDLSError(f"{path}: no {key!r} in the weights; expected {expected}")


def fill(module: nn.Module, state: dict[str, Tensor], what: str, path: Path) -> nn.Module:
    """Load folded (spectral norm divided out) weights into `module`, strictly, and switch to eval."""
    load_state(module, fold_spectral_norm(state), what, path)
    return module.eval()


def summary_keys(obj: Any, n: int = 6) -> str:
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        return "[" + ", ".join(keys[:n]) + (", ..." if len(keys) > n else "") + "]"
    return type(obj).__name__


@dataclass(frozen=True)
class PairSpec:
    """How a one-file-per-network library names its files, for pairing the generator and discriminator files."""

    library: str  # "torch-mimicry"
    state_key: str  # the payload key that holds the state dict
    pass_hint: str  # "the generator file netG_<step>_steps.pth and the discriminator file netD_..."
    disc_keys: str  # what a checkpoint of the library holds, for the error
    disc_file: str  # how the discriminator file is named
    pair: str  # "a <G layout> and <D layout> pair"


def pair_networks(payload: Any, path: Path, disc: Any, disc_path: Path | None, spec: PairSpec,
                  role: Callable[[dict], str], detect: Callable[[Any, Path], bool]):
    """((g_state, g_path), (d_state, d_path)) from the two files, given in either order."""
    first = tensor_state(payload[spec.state_key], spec.state_key, path)
    if disc is None:
        raise DDLSError(f"{path} is one {spec.library} network ({role(first)}); DDLS needs both: give {spec.pass_hint}")
    if not detect(disc, disc_path):
        raise DDLSError(f"{disc_path} is not a {spec.library} checkpoint ({spec.disc_keys}); "
                        f"{path.name} needs its {spec.disc_file} as the discriminator file")
    second = tensor_state(disc[spec.state_key], spec.state_key, disc_path)
    roles = {role(first): (first, path), role(second): (second, disc_path)}
    if set(roles) != {"generator", "discriminator"}:
        raise DDLSError(f"{path} and {disc_path} are not {spec.pair}")
    return roles["generator"], roles["discriminator"]
