"""Folding stored spectral norms into plain weights.

Checkpoints of spectrally normalised layers keep the raw weight and the power-iteration
vectors. In eval mode the libraries use weight / sigma with sigma taken from those
stored vectors, so dividing once at load time gives the same forward pass with plain
layers, and no power iteration ever runs during sampling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _as_matrix(weight: Tensor, rows: int) -> Tensor:
    # torch's spectral_norm uses dim=0 (dim=1 for transposed convolutions): that dim becomes the rows.
    if weight.shape[0] == rows:
        return weight.reshape(rows, -1)
    return weight.transpose(0, 1).reshape(rows, -1)


def torch_sigma(weight: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """torch.nn.utils.spectral_norm in eval mode: sigma = u . (W v) with the stored u, v."""
    return torch.dot(u, _as_matrix(weight, u.numel()) @ v)


def mimicry_sigma(weight: Tensor, u: Tensor) -> Tensor:
    """torch-mimicry's own SNConv2d/SNLinear: one power iteration from the stored u, every call (also in eval)."""
    w = weight.reshape(weight.shape[0], -1)
    v = F.normalize(u @ w, eps=1e-12)
    u = F.normalize(v @ w.t(), eps=1e-12)
    return (u @ w @ v.t()).reshape(())


def fold_spectral_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A copy of `state` where every spectrally normalised layer has a plain `weight` = W / sigma."""
    out = dict(state)
    for key in list(state):
        if key.endswith("weight_orig"):
            prefix = key[: -len("weight_orig")]
            w, u, v = (out.pop(prefix + name) for name in ("weight_orig", "weight_u", "weight_v"))
            out[prefix + "weight"] = w / torch_sigma(w.float(), u.float(), v.float()).to(w.dtype)
        elif key.endswith("sn_u") and key[: -len("sn_u")] + "weight" in state:
            prefix = key[: -len("sn_u")]
            u = out.pop(prefix + "sn_u")
            out.pop(prefix + "sn_sigma", None)
            w = out[prefix + "weight"]
            out[prefix + "weight"] = w / mimicry_sigma(w.float(), u.float()).to(w.dtype)
    return out


def has_spectral_norm(state: dict[str, Tensor]) -> bool:
    return any(k.endswith(("weight_orig", "sn_u")) for k in state)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (one power iteration per training forward) on every conv, linear
    and embedding weight, any channel count. In eval mode the stored vectors are used as they are."""
    from torch.nn.utils.parametrizations import spectral_norm

    for child in list(module.modules()):
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            spectral_norm(child)
    return module
