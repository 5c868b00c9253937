"""Your own networks: checkpoints written by `ddls.save`, and state-dict files read through a factory.

`ddls.save` writes the state dicts of G and D with the factory that builds them (its name
and arguments) and what the energy needs (latent shape, energy kind, data, the score map a
calibration put on D's score). Loading calls
the factory again (see ddls.models.factory) and fills in the weights, strictly. The factory a
file names is data: it is imported only when the user trusts it (`--trust-factory`) or names
a factory of their own (`--model`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import DDLSError
from ..io.checkpoint import Model, load_state
from ..io.outputs import write_bytes
from ..models.factory import build_from, origin_of, shown
from ._common import summary_keys, tensor_state

NAME = "own"
ONE_FILE = True
DESCRIPTION = "your own networks (written by `ddls.save`; rebuilt by their factory)"
FORMAT = "ddls-own"
FORMAT_VERSION = 1
# Key pairs under which a state-dict file may hold the two networks
PAIRS = (("generator", "discriminator"), ("G", "D"), ("g", "d"), ("netG", "netD"), ("net_G", "net_D"))
EXTRA_META = ("config", "step", "history")  # what a trained Model's meta keeps across a save


def save(model_or_energy: Any, path: str | os.PathLike) -> Path:
    """Write the networks, the factory that builds them and what the energy needs; returns the path."""
    from ..core.energy import LatentEnergy

    x = model_or_energy
    if isinstance(x, Model):
        g, d, latent, kind, score_map = x.generator, x.discriminator, x.latent_shape, x.energy_kind, x.score_map
        data, classes, label = x.data, x.num_classes, x.label
        extra = {k: v for k, v in (x.meta or {}).items() if k in EXTRA_META}
    elif isinstance(x, LatentEnergy):
        g, d, latent, kind, score_map = x.generator, x.discriminator, x.latent_shape, x.kind, x.score_map
        data, classes, label, extra = None, 0, x.label, {}
    else:
        raise DDLSError(f"ddls.save takes a Model (from ddls.wrap, ddls.train or a load) or a LatentEnergy, "
                        f"got {type(x).__name__}")
    origin = origin_of(g)
    if origin is None:
        raise DDLSError("ddls.save cannot tell how to rebuild these networks: build them with a function "
                        "marked @ddls.factory")
    from ..core.score_map import Calibration

    if score_map is not None and not isinstance(score_map, Calibration):
        raise DDLSError("ddls.save stores score maps made by ddls's calibrations only; this energy's score_map "
                        "is a function of your own: save the model without it and pass it again when you load")
    info = {"latent_shape": list(latent), "energy": kind, "data": data, "num_classes": int(classes),
            "label": label if isinstance(label, int) else None,
            "score_map": None if score_map is None else score_map.state()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "factory": origin.spec,
        "factory_kwargs": origin.to_json(),
        "model": json.dumps(info),
        "extra": json.dumps(extra, default=str),
        "generator": {k: v.detach().cpu() for k, v in g.state_dict().items()},
        "discriminator": {k: v.detach().cpu() for k, v in d.state_dict().items()},
    }
    return write_bytes(path, lambda fh: torch.save(payload, fh))


def detect(payload: Any, path: Path) -> bool:
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None, *,
         factory: str | None = None) -> Model:
    """The Model in a `ddls.save` checkpoint, built by its recorded factory (or by `factory`)."""
    if payload.get("format_version") != FORMAT_VERSION:
        raise DDLSError(f"{path} has own-network format version {payload.get('format_version')}, this ddls reads "
                        f"{FORMAT_VERSION}; upgrade ddls")
    from ..io.schema import check_latent_shape, json_field

    # every field is checked before any factory is called
    info = json_field(payload, "model", path, required=True, kind=dict)
    kwargs = json_field(payload, "factory_kwargs", path, required=False, kind=dict)
    extra = json_field(payload, "extra", path, required=False, kind=dict)
    spec = factory or payload.get("factory")
    if not isinstance(spec, str):
        raise DDLSError(f"{path}: the checkpoint names no model factory (module:function); give it yourself "
                        f"with --model MODULE:FUNCTION")
    latent_shape = check_latent_shape(info.get("latent_shape"), path)
    energy, classes, label = info.get("energy"), info.get("num_classes") or 0, info.get("label")
    if not isinstance(energy, str) or len(energy) > 64:
        raise DDLSError(f"{path}: model.energy must be an energy kind (gan, wgan, ae, ...), got {shown(repr(energy))}")
    if type(classes) is not int or classes < 0 or (label is not None and type(label) is not int):
        raise DDLSError(f"{path}: model.num_classes and model.label must be whole numbers")
    model = build_from(spec, kwargs, from_checkpoint=factory is None, source=str(path))
    _fill(model, payload.get("generator"), payload.get("discriminator"), path)
    model.latent_shape = latent_shape
    model.energy_kind = energy
    model.data = info.get("data")
    model.num_classes = classes or model.num_classes
    if label is not None and model.label is None:
        model.label = label
    if info.get("score_map"):  # files written before score maps were stored have none
        from ..core.score_map import Calibration

        model.score_map = Calibration.from_state(info["score_map"])
    model.meta = {**model.meta, **extra}
    return model


def load_with_factory(spec: str, payload: Any, path: Path) -> Model:
    """The networks `spec` builds, with their weights from `payload` (a `ddls.save` file or G and D state dicts)."""
    if detect(payload, path):
        return load(payload, path, factory=spec)
    g_state, d_state = state_pair(payload, path)
    model = build_from(spec)
    _fill(model, g_state, d_state, path)
    return model


def state_pair(payload: Any, path: Path) -> tuple[dict, dict]:
    if isinstance(payload, dict):
        for g_key, d_key in PAIRS:
            if g_key in payload and d_key in payload:
                return tensor_state(payload[g_key], g_key, path), tensor_state(payload[d_key], d_key, path)
    raise DDLSError(f"{path} holds no generator and discriminator state dicts (found {summary_keys(payload)}); "
                    f"save them as {{'G': G.state_dict(), 'D': D.state_dict()}}, or with ddls.save")


def _fill(model: Model, g_state: Any, d_state: Any, path: Path) -> None:
    load_state(model.generator, tensor_state(g_state, "generator", path), "generator", path)
    load_state(model.discriminator, tensor_state(d_state, "discriminator", path), "discriminator", path)
    model.generator.eval()
    model.discriminator.eval()
