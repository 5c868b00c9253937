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


def test_shipped_tuned_wgangp_runs_its_recipe_without_flags(tmp_path):
    # the WGAN-GP with its critic's last layer refitted as a logistic classifier, and the recipe tune chose
    from ddls.tuning.recipe import read_recipe

    path = PRETRAINED / "fmnist_wgangp64_tuned.pt"
    recipe = read_recipe(path)
    assert recipe.method == "dot" and recipe.options == {"dot_steps": 50, "dot_lr": 0.01}
    model = load_model(path)
    calibration = model.meta["extra"]["calibration"]
    assert model.energy_kind == "gan" and calibration["layers"] == "last"
    assert calibration["heldout_loss"]["best"] < calibration["heldout_loss"]["first"] - 0.5
    # the generator is the shipped WGAN-GP's own: only D changed
    base = load_model(PRETRAINED / "fmnist_wgangp64.pt")
    for (k, a), b in zip(model.generator.state_dict().items(), base.generator.state_dict().values()):
        assert (a == b).all(), k
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", path, "--n", "6", "--device", "cpu", "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["method"] == "dot"
