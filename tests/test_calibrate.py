"""Discriminator calibration against a frozen generator."""
import json

import numpy as np
import pytest
import torch

from ddls.calibration.finetune import calibrate
from ddls.io.checkpoint import load_model
from ddls.data.toy2d import get_dataset
from ddls.errors import DDLSError
from ddls.training.trainer import TrainConfig, train
from conftest import DEVICE, invoke

pytestmark = pytest.mark.usefixtures("no_train_metrics")  # train only to get checkpoints


@pytest.fixture(scope="module")
def trained():
    cfg = TrainConfig(data="gmm25", loss="wgan-gp", steps=10, batch_size=32, hidden=16, depth=2, gp_weight=0.1)
    return train(cfg, get_dataset("gmm25").sample, 2, device=DEVICE)


def test_calibration_lowers_the_logistic_loss_and_leaves_inputs_alone(trained):
    g, d = trained.generator, trained.discriminator
    g_before = {k: v.clone() for k, v in g.state_dict().items()}
    d_before = {k: v.clone() for k, v in d.state_dict().items()}
    new_d, losses = calibrate(g, d, (2,), get_dataset("gmm25").sample, steps=300, batch_size=64, lr=1e-2)
    assert np.mean(losses[-20:]) < 0.9 * np.mean(losses[:20])
    assert new_d is not d
    for k, v in d.state_dict().items():
        assert torch.equal(v, d_before[k])
    for k, v in g.state_dict().items():
        assert torch.equal(v, g_before[k])
    assert all(p.requires_grad for p in g.parameters())


def test_calibration_is_seeded(trained):
    sample = get_dataset("gmm25").sample
    a, _ = calibrate(trained.generator, trained.discriminator, (2,), sample, steps=5, batch_size=8, seed=1)
    b, _ = calibrate(trained.generator, trained.discriminator, (2,), sample, steps=5, batch_size=8, seed=1)
    for va, vb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(va, vb)


def test_zero_steps_refused(trained):
    with pytest.raises(DDLSError, match="calibration steps must be >= 1"):
        calibrate(trained.generator, trained.discriminator, (2,), get_dataset("gmm25").sample, steps=0)


def test_cli_calibrate_writes_a_gan_energy_checkpoint(tmp_path):
    raw, cal = tmp_path / "raw.pt", tmp_path / "cal.pt"
    r = invoke("train", "--data", "ring8", "--loss", "wgan-gp", "--steps", "5", "--hidden", "16",
               "--depth", "2", "--batch-size", "16", "--out", raw)
    assert r.exit_code == 0, r.output
    assert load_model(raw).energy_kind == "wgan"
    r = invoke("calibrate", "--ckpt", raw, "--steps", "5", "--batch-size", "16", "--out", cal)
    assert r.exit_code == 0, r.output
    model = load_model(cal)
    assert model.energy_kind == "gan" and model.data == "ring8"
    assert model.meta["extra"]["calibration"]["energy_before"] == "wgan"
    raw_g = load_model(raw).generator.state_dict()
    for k, v in model.generator.state_dict().items():
        assert torch.equal(v, raw_g[k])


def test_cli_calibrates_an_image_autoencoder_checkpoint_and_keeps_its_energy_kind(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from ddls.io.checkpoint import load_model

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        img = np.zeros((16, 16), dtype=np.uint8)
        a, b = rng.integers(0, 12, 2)
        img[a:a + 4, b:b + 4] = 255
        Image.fromarray(img).save(folder / f"{i}.png")
    run = tmp_path / "run"
    r = invoke("train", "--data", f"folder:{folder}", "--loss", "ebgan", "--steps", "3", "--width", "4",
               "--z-dim", "8", "--batch-size", "4", "--out", run)
    assert r.exit_code == 0, r.output
    r = invoke("calibrate", "--ckpt", run / "model.pt", "--steps", "60", "--batch-size", "16", "--lr",
               "1e-2", "--out", tmp_path / "cal.pt")
    assert r.exit_code == 0, r.output
    assert "energy kind now 'ae'" in r.output
    model = load_model(tmp_path / "cal.pt")
    assert model.energy_kind == "ae"
    losses = model.meta["extra"]["calibration"]
    assert losses["energy_before"] == "ae" and losses["final_loss"] < 2 * 0.6931 - 0.1  # better than chance
    assert json.loads(json.dumps(model.meta["config"]))["loss"] == "ebgan"
