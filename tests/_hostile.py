"""Structured-bad checkpoints and samples files: a valid file with one field missing, of the
wrong type, or of an absurd size. Shared by the fuzz and the regression tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def _model(payload: dict, **changes) -> str:
    model = json.loads(payload["model"])
    for key, value in changes.items():
        if "." in key:
            net, field = key.split(".")
            model[net][field] = value
        elif value is ...:
            model.pop(key)
        else:
            model[key] = value
    return json.dumps(model)


def _retype(state: dict, dtype) -> dict:
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}


def bad_checkpoint_payloads(payload: dict) -> dict[str, dict]:
    """name -> a copy of the ddls checkpoint `payload` with one thing wrong."""
    g = payload["generator"]
    cases = {
        "config_not_json": {"config": "{not json"},
        "config_a_list": {"config": "[1, 2]"},
        "extra_not_json": {"extra": "nope{"},
        "extra_an_int": {"extra": 5},
        "model_missing": {"model": None},
        "model_not_json": {"model": "{"},
        "model_a_list": {"model": "[]"},
        "generator_a_str": {"generator": "weights"},
        "generator_a_list": {"generator": [1, 2, 3]},
        "generator_missing": {"generator": None},
        "generator_int64": {"generator": {k: v.to(torch.int64) for k, v in g.items()}},
        "generator_complex": {"generator": _retype(g, torch.complex64)},
        "generator_nan": {"generator": {k: torch.full_like(v, float("nan")) for k, v in g.items()}},
        "latent_missing": {"model": _model(payload, latent_shape=...)},
        "latent_negative": {"model": _model(payload, latent_shape=[-2])},
        "latent_str": {"model": _model(payload, latent_shape="2")},
        "latent_huge": {"model": _model(payload, latent_shape=[10 ** 9])},
        "latent_wrong": {"model": _model(payload, latent_shape=[3])},
        "hidden_negative": {"model": _model(payload, **{"generator.hidden": -5})},
        "hidden_huge": {"model": _model(payload, **{"generator.hidden": 10 ** 9})},
        "hidden_huge_d": {"model": _model(payload, **{"discriminator.hidden": 10 ** 6, "discriminator.depth": 9})},
        "hidden_str": {"model": _model(payload, **{"generator.hidden": "many"})},
        "hidden_float": {"model": _model(payload, **{"generator.hidden": 2.5})},
        "hidden_list": {"model": _model(payload, **{"generator.hidden": [4]})},
        "arch_unknown": {"model": _model(payload, **{"generator.arch": "transformer"})},
        "arch_missing_net": {"model": _model(payload, generator=...)},
        "energy_int": {"model": _model(payload, energy=3)},
        "data_list": {"model": _model(payload, data=["gmm25"])},
        "step_str": {"step": "ten"},
        "version_wrong": {"format_version": 99},
    }
    out = {}
    for name, change in cases.items():
        p = dict(payload)
        for key, value in change.items():
            if value is None:
                p.pop(key, None)
            else:
                p[key] = value
        out[name] = p
    return out


def write_bad_checkpoints(real: Path, folder: Path) -> list[str]:
    """Write every bad payload of `real` into `folder` as <name>.pt; returns the file names."""
    payload = torch.load(real, weights_only=True)
    names = []
    for name, p in bad_checkpoint_payloads(payload).items():
        torch.save(p, folder / f"bad_{name}.pt")
        names.append(f"bad_{name}.pt")
    (folder / "bad_text.pt").write_text("this is not a checkpoint\n")
    names.append("bad_text.pt")
    return names


def write_bad_samples(folder: Path) -> list[str]:
    """Samples files with one thing wrong; returns the file names."""
    meta = np.array('{"data": "gmm25"}')
    cases = {
        "complex": {"x": np.zeros((4, 2), np.complex64), "meta": meta},
        "bool": {"x": np.zeros((4, 2), bool), "meta": meta},
        "object_free_str": {"x": np.array([["a", "b"]]), "meta": meta},
        "empty": {"x": np.zeros((0, 2)), "meta": meta},
        "rank3": {"x": np.zeros((4, 2, 2)), "meta": meta},
        "meta_list": {"x": np.zeros((4, 2)), "meta": np.array("[1, 2]")},
        "meta_int": {"x": np.zeros((4, 2)), "meta": np.array("7")},
        "meta_array": {"x": np.zeros((4, 2)), "meta": np.array(["{}", "{}"])},
        "meta_number": {"x": np.zeros((4, 2)), "meta": np.array(3.0)},
        "data_int": {"x": np.zeros((4, 2)), "meta": np.array('{"data": 5}')},
    }
    names = []
    for name, arrays in cases.items():
        np.savez(folder / f"bad_{name}.npz", **arrays)
        names.append(f"bad_{name}.npz")
    # a header that claims 10**12 rows over a 64-byte body: reading it would try to allocate 16 TB
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12, 2)})
    buf.write(b"\0" * 64)
    with zipfile.ZipFile(folder / "bad_huge.npz", "w") as zf:
        zf.writestr("x.npy", buf.getvalue())
        zf.writestr("meta.npy", _npy(meta))
    names.append("bad_huge.npz")
    return names


def _npy(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()
