"""The shipped Fashion-MNIST GANs load, say their own energy, and `ddls sample` runs on each without flags."""
import json
from pathlib import Path

import numpy as np
import pytest

from ddls.io.checkpoint import load_model
from conftest import invoke

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
SHIPPED = {"fmnist_sngan.pt": ("sngan", "wgan"), "fmnist_wgangp.pt": ("wgan-gp", "wgan"),
           "fmnist_ebgan.pt": ("ebgan", "ae"), "fmnist_ns64.pt": ("ns", "gan"),
           "fmnist_sngan64.pt": ("sngan", "wgan"), "fmnist_wgangp64.pt": ("wgan-gp", "wgan")}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_model_samples_with_its_default_energy(name, tmp_path):
    loss, kind = SHIPPED[name]
    model = load_model(PRETRAINED / name)
    assert model.meta["config"]["loss"] == loss and model.meta["config"]["data"] == "fashion-mnist"
    assert model.energy_kind == kind and model.latent_shape == (64,)
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", PRETRAINED / name, "--n", "6", "--steps", "3", "--eps", "0.01", "--device", "cpu",
               "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        x, meta = f["x"], json.loads(str(f["meta"]))
    assert x.shape == (6, 1, 28, 28) and np.isfinite(x).all() and -1 <= x.min() and x.max() <= 1
    assert meta["energy"] == kind and meta["data"] == "fashion-mnist"
    assert x.std() > 0.1  # images, not a constant
