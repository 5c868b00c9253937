"""`ddls compare` and the post-hoc samplers on image checkpoints: a tiny made-up 1x28x28 GAN whose
real data is a folder of 40 random images written by the test (Fashion-MNIST where installed)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ddls import models
from ddls.io.checkpoint import save_ddls
from ddls.data.idx import FASHION_MNIST_DIR
from conftest import invoke

HAVE_FMNIST = Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").is_file()


pytestmark = pytest.mark.usefixtures("one_thread")


class TinyG(nn.Module):
    def __init__(self, z_dim=8, channels=1):
        super().__init__()
        self.channels = channels
        self.lin = nn.Linear(z_dim, channels * 28 * 28)

    def forward(self, z):
        return torch.tanh(self.lin(z)).view(-1, self.channels, 28, 28)


class TinyD(nn.Module):
    def __init__(self, channels=1):
        super().__init__()
        self.lin = nn.Linear(channels * 28 * 28, 1)

    def forward(self, x):
        # uniform real pixels have mean |x| 0.5, the saturated tanh fakes more: real scores higher,
        # so a fitted calibration always has a positive slope
        return self.lin(x.flatten(1)).squeeze(1) - 10 * x.flatten(1).abs().mean(1)


@pytest.fixture
def folder(tmp_path):
    """40 random 28x28 grayscale PNGs and their pixels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    root = tmp_path / "real"
    root.mkdir()
    for i, p in enumerate(pixels):
        Image.fromarray(p, mode="L").save(root / f"{i:02d}.png")
    return root, pixels


def make_ckpt(path, data, monkeypatch, channels=1):
    monkeypatch.setitem(models.ARCHITECTURES, "tiny_cmp_g", TinyG)
    monkeypatch.setitem(models.ARCHITECTURES, "tiny_cmp_d", TinyD)
    gen = torch.Generator().manual_seed(0)
    g, d = TinyG(channels=channels), TinyD(channels=channels)
    with torch.no_grad():
        g.lin.weight.copy_(torch.randn(channels * 784, 8, generator=gen) * 0.5)
        d.lin.weight.copy_(torch.randn(1, channels * 784, generator=gen) * 0.05)
    save_ddls(path, g=g, d=d, g_spec={"arch": "tiny_cmp_g", "z_dim": 8, "channels": channels},
              d_spec={"arch": "tiny_cmp_d", "channels": channels}, latent_shape=(8,), energy_kind="gan",
              config_json="{}", step=0, data=data)
    return path


@pytest.fixture
def image_ckpt(tmp_path, folder, monkeypatch):
    return make_ckpt(tmp_path / "tiny.pt", f"folder:{folder[0]}", monkeypatch)


@pytest.fixture
def real_stats(folder, tmp_path):
    """Domain statistics of the 40 folder images, as `ddls stats` would store them."""
    from ddls.metrics.features import make_features
    from ddls.metrics.fid import gaussian_stats
    from ddls.metrics.fid_stats import stats_meta, write_stats

    extractor = make_features("domain")
    images = torch.from_numpy(folder[1][:, None]).float() / 127.5 - 1
    return write_stats(tmp_path / "ref.npz", gaussian_stats(extractor(images)), stats_meta(extractor, data="folder"))


def test_real_source_of_an_image_checkpoint_draws_its_images(image_ckpt, folder):
    from ddls.data.real import real_source
    from ddls.formats import load_any

    model = load_any(image_ckpt, None)
    draw = real_source(model, (1, 28, 28))
    gen = torch.Generator().manual_seed(3)
    x = draw(5, gen)
    idx = torch.randint(40, (5,), generator=torch.Generator().manual_seed(3))
    expected = torch.from_numpy(folder[1][idx.numpy()][:, None]).float() / 127.5 - 1
    assert x.shape == (5, 1, 28, 28)
    torch.testing.assert_close(x, expected)


def test_compare_on_images_scores_every_method_by_fid(image_ckpt, real_stats, tmp_path):
    from ddls.metrics.features import make_features
    from ddls.metrics.fid import fid, gaussian_stats
    from ddls.metrics.fid_stats import read_stats

    out = tmp_path / "cmp"
    r = invoke("compare", "--ckpt", image_ckpt, "--methods", "ddls,drs,mhgan,dot,dgflow,sir", "--n", 40, "--steps", 5,
               "--eps", 1e-2, "--drs-pilot", 50, "--mh-chain-length", 4, "--dot-steps", 3, "--dgflow-steps", 3,
               "--sir-pool-factor", 3, "--calibration", "logistic", "--calibration-n", 40, "--stats", real_stats, "--device", "cpu",
               "--out", out, "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert [row["method"] for row in rows] == ["generator", "ddls", "drs", "mhgan", "dot", "dgflow", "sir"]
    assert set(rows[0]) == {"method", "fid", "fid_lo", "fid_hi", "precision", "recall", "density", "coverage",
                            "seconds", "evals_per_sample", "acceptance"}
    assert rows[0]["precision"] is None  # the statistics name no data set whose images precision could use
    assert all(np.isfinite(row["fid"]) and row["fid"] > 0 for row in rows)
    assert all(row["fid_lo"] < row["fid"] < row["fid_hi"] for row in rows)
    by = {row["method"]: row for row in rows}
    assert by["generator"]["evals_per_sample"] == 1 and by["mhgan"]["evals_per_sample"] == 4 + 1
    assert by["sir"]["evals_per_sample"] == 3 + 1
    assert by["ddls"]["evals_per_sample"] == 2 * 6 and by["dgflow"]["evals_per_sample"] == 2 * 3
    # the generator row is the plain generator with the same seed: FID computed here by hand
    r = invoke("sample", "--ckpt", image_ckpt, "--steps", 0, "--n", 40, "--seed", 0, "--device", "cpu",
               "--out", tmp_path / "gen.npz")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "gen.npz") as npz:
        x = npz["x"]
    expected = fid(gaussian_stats(make_features("domain")(x)), read_stats(real_stats)[0])
    assert by["generator"]["fid"] == pytest.approx(expected, rel=1e-9)
    assert (out / "compare.csv").read_text().splitlines()[0].startswith(
        "method,fid,fid_lo,fid_hi,precision,recall,density,coverage,seconds,evals_per_sample,acceptance")
    record = json.loads((out / "compare.json").read_text())
    assert record["features"] == "domain" and record["reference"]["stats"] == str(real_stats)
    assert record["calibration"]["calibration"]["kind"] == "platt"  # logistic is its alias
    import matplotlib.image as mpimg

    figure = mpimg.imread(out / "compare.png")
    assert figure.shape[1] > figure.shape[0] > 100  # six 8x4 grids side by side


def test_mhgan_on_images_starts_at_real_samples_and_returns_generated_ones(image_ckpt):
    from ddls.data.real import real_source
    from ddls.formats import load_any
    from ddls.posthoc import default_config, make_target, run

    model = load_any(image_ckpt, None)
    energy = model.energy()
    draw_real = real_source(model, energy.sample_shape)
    target = make_target(energy, "raw")
    result = run("mhgan", target, 12, default_config("mhgan", mh_chain_length=6, chunk_size=5), seed=1,
                 draw_real=draw_real)
    assert result.samples.shape == (12, 1, 28, 28) and result.latents.shape == (12, 8)
    assert result.evaluations == 12 * (6 + 1)
    assert 0 <= result.info["acceptance"] <= 1
    # every output is the generator's image of its latent: no real sample is handed out
    with torch.no_grad():
        torch.testing.assert_close(result.samples, energy.decode(result.latents))


def test_image_checkpoint_without_data_is_one_line(tmp_path, real_stats, monkeypatch):
    ckpt = make_ckpt(tmp_path / "nodata.pt", None, monkeypatch)
    for extra in (["--methods", "ddls,mhgan"], ["--methods", "ddls", "--calibration", "isotonic"]):
        r = invoke("compare", "--ckpt", ckpt, "--n", 10, "--steps", 2, "--stats", real_stats, "--device", "cpu",
                   "--out", tmp_path / "o", *extra)
        assert r.exit_code == 1, r.output
        assert "Traceback" not in r.output
        assert "names no data set; pass --data" in r.output.strip().splitlines()[-1]
    # without a real-data need it runs: the generator and DDLS against the given statistics
    r = invoke("compare", "--ckpt", ckpt, "--methods", "ddls", "--n", 10, "--steps", 2, "--stats", real_stats,
               "--device", "cpu", "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r.output
    assert [row["method"] for row in json.loads(r.stdout.strip().splitlines()[-1])] == ["generator", "ddls"]


@pytest.mark.skipif(not HAVE_FMNIST, reason="needs `apt-get install dataset-fashion-mnist`")
def test_fashion_mnist_real_source_and_shape_mismatch(tmp_path, monkeypatch):
    from ddls.data.real import real_source
    from ddls.errors import DDLSError
    from ddls.formats import load_any
    from ddls.data.images import get_image_data, to_float

    model = load_any(make_ckpt(tmp_path / "fm.pt", "fashion-mnist", monkeypatch), None)
    x = real_source(model, (1, 28, 28))(4, torch.Generator().manual_seed(0))
    idx = torch.randint(60000, (4,), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, to_float(get_image_data("fashion-mnist").images[idx]))
    rgb = load_any(make_ckpt(tmp_path / "rgb.pt", "fashion-mnist", monkeypatch, channels=3), None)
    with pytest.raises(DDLSError, match="fashion-mnist images are 1x28x28, but the generator makes 3x28x28"):
        real_source(rgb, rgb.energy().sample_shape)
