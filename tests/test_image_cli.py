"""`ddls stats`, `ddls eval` and `ddls sweep` on images, end to end on a tiny made-up image checkpoint."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ddls import models
from ddls.io.checkpoint import save_ddls
from ddls.data.idx import FASHION_MNIST_DIR


pytestmark = pytest.mark.usefixtures("one_thread")


HAVE_FMNIST = Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").is_file()


from conftest import invoke, one_line_error  # noqa: E402


class TinyImageG(nn.Module):
    def __init__(self, z_dim=8):
        super().__init__()
        self.z_dim = z_dim
        self.lin = nn.Linear(z_dim, 28 * 28)

    def forward(self, z):
        return torch.tanh(self.lin(z)).view(-1, 1, 28, 28)


class TinyImageD(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(28 * 28, 1)

    def forward(self, x):
        return self.lin(x.flatten(1)).squeeze(1)


@pytest.fixture
def image_ckpt(tmp_path, monkeypatch):
    """A ddls checkpoint of 1x28x28 images whose architecture exists only in this test."""
    monkeypatch.setitem(models.ARCHITECTURES, "tiny_img_g", TinyImageG)
    monkeypatch.setitem(models.ARCHITECTURES, "tiny_img_d", TinyImageD)
    gen = torch.Generator().manual_seed(0)
    g, d = TinyImageG(), TinyImageD()
    with torch.no_grad():
        g.lin.weight.copy_(torch.randn(784, 8, generator=gen) * 0.5)
        d.lin.weight.copy_(torch.randn(1, 784, generator=gen) * 0.05)
    path = tmp_path / "tiny_img.pt"
    save_ddls(path, g=g, d=d, g_spec={"arch": "tiny_img_g", "z_dim": 8}, d_spec={"arch": "tiny_img_d"},
              latent_shape=(8,), energy_kind="gan", config_json="{}", step=0, data="fashion-mnist")
    return path


@pytest.fixture
def generator_stats(image_ckpt, tmp_path):
    """Domain statistics of the generator alone (seed 0, 200 samples), as `ddls stats` would store them."""
    from ddls.metrics.features import make_features
    from ddls.metrics.fid import gaussian_stats
    from ddls.metrics.fid_stats import stats_meta, write_stats

    r = invoke("sample", "--ckpt", image_ckpt, "--steps", 0, "--n", 200, "--seed", 0, "--device", "cpu",
               "--out", tmp_path / "gen.npz")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "gen.npz") as npz:
        x = npz["x"]
    assert x.shape == (200, 1, 28, 28)
    extractor = make_features("domain")
    path = write_stats(tmp_path / "gen_stats.npz", gaussian_stats(extractor(x)), stats_meta(extractor, data="toy"))
    return path, x


def test_sweep_on_images_writes_table_plot_and_chains(image_ckpt, generator_stats, tmp_path):
    stats, _ = generator_stats
    out = tmp_path / "sw"
    r = invoke("sweep", "--ckpt", image_ckpt, "--eps", 1e-2, "--eps", 1e-1, "--steps", 50, "--n", 200,
               "--features", "domain", "--stats", stats, "--device", "cpu", "--grid-chains", 3, "--out", out,
               "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["eps"] for row in rows] == [None, 1e-2, 1e-1]
    assert all(isinstance(row["fid"], float) for row in rows)
    # the reference is the generator alone with the same seed: its row is ~0, DDLS moves away from it
    assert rows[0]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert rows[1]["fid"] > 1e-4 and rows[2]["fid"] > rows[1]["fid"]
    assert (out / "sweep.csv").read_text().splitlines()[0].startswith("eps,steps,fid,n")
    import matplotlib.image as mpimg

    assert mpimg.imread(out / "sweep.png").shape[0] > 100
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["features"] == "domain" and cfg["chains"] == {"eps": 1e-2, "n": 3, "every": 25}
    assert mpimg.imread(out / "chains.png").shape[0] > 50


def test_chains_grid_records_every_25th_step(image_ckpt):
    from ddls.sampling.driver import RunConfig
    from ddls.formats import load_any
    from ddls.sampling.sweep import chains_to_show

    energy = load_any(image_ckpt, None).energy()
    traj, steps = chains_to_show(energy, RunConfig(n=100, steps=60, seed=0), 1e-2, n_chains=4, every=25)
    assert steps == [0, 25, 50]
    assert traj.shape == (3, 4, 1, 28, 28)
    from ddls.viz.plots import image_tiles

    tiles = image_tiles(traj[:, :2].reshape(6, 1, 28, 28), 2, 3)
    assert tiles.shape == (56, 84)
    # image 1 (step 0, chain 1) sits in row 1, column 2; image 3 (step 25, chain 1) in row 2, column 1
    np.testing.assert_allclose(tiles[0:28, 28:56], np.clip((traj[0, 1, 0] + 1) / 2, 0, 1))
    np.testing.assert_allclose(tiles[28:56, 0:28], np.clip((traj[1, 1, 0] + 1) / 2, 0, 1))


def test_eval_images_against_stats_equals_hand_computation(generator_stats, tmp_path):
    from ddls.metrics.features import make_features
    from ddls.metrics.fid import fid, gaussian_stats
    from ddls.metrics.fid_stats import read_stats
    from ddls.io.outputs import write_npz

    stats, x = generator_stats
    shifted = np.clip(x[:100] + 0.5, -1, 1).astype(np.float32)
    write_npz(tmp_path / "s.npz", {"x": shifted}, {"data": "fashion-mnist"})
    r = invoke("eval", "--samples", tmp_path / "s.npz", "--stats", stats, "--device", "cpu", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    ref, _ = read_stats(stats)
    expected = fid(gaussian_stats(make_features("domain")(shifted)), ref)
    assert got["fid"] == pytest.approx(expected, rel=1e-9) and got["fid"] > 0.01
    assert got["n"] == 100 and got["features"] == "domain"
    assert got["fid_lo"] < got["fid"] < got["fid_hi"]  # a bootstrap interval around the value
    plain = json.loads(invoke("eval", "--samples", tmp_path / "s.npz", "--stats", stats, "--device", "cpu", "--json",
                              "--bootstrap", 0).stdout)
    assert plain["fid"] == got["fid"] and "fid_lo" not in plain


def test_missing_stats_or_weights_end_in_one_line(generator_stats, tmp_path, monkeypatch):
    from ddls.io.outputs import write_npz

    stats, x = generator_stats
    write_npz(tmp_path / "s.npz", {"x": x[:10]}, {})
    line = one_line_error(invoke("eval", "--samples", tmp_path / "s.npz", "--stats", tmp_path / "no.npz"))
    assert "not found; make them with `ddls stats --data fashion-mnist --features domain --out FILE`" in line
    line = one_line_error(invoke("eval", "--samples", tmp_path / "s.npz"))
    assert "give reference statistics (make them with `ddls stats" in line
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    line = one_line_error(invoke("eval", "--samples", tmp_path / "s.npz", "--stats", stats,
                                 "--features", "inception", "--device", "cpu"))
    assert "FID Inception weights not found" in line and "ddls inception install --from-fid-helper" in line
    line = one_line_error(invoke("inception", "install"))
    assert "give exactly one of" in line
    r = invoke("inception", "status", "--json")
    assert json.loads(r.stdout)["installed"] is False


def test_stats_of_other_features_are_refused(generator_stats, tmp_path):
    from ddls.metrics.fid_stats import write_stats
    from ddls.metrics.fid import GaussianStats
    from ddls.io.outputs import write_npz

    _, x = generator_stats
    write_stats(tmp_path / "inc.npz", GaussianStats(np.zeros(2048), np.eye(2048), 10), {"features": "inception",
                                                                                     "dim": 2048})
    write_npz(tmp_path / "s.npz", {"x": x[:10]}, {})
    line = one_line_error(invoke("eval", "--samples", tmp_path / "s.npz", "--stats", tmp_path / "inc.npz"))
    assert "holds inception statistics" in line and "score with inception features" in line


@pytest.mark.skipif(not HAVE_FMNIST, reason="needs `apt-get install dataset-fashion-mnist`")
def test_stats_command_on_fashion_mnist(tmp_path):
    from ddls.metrics.features import make_features
    from ddls.metrics.fid import gaussian_stats
    from ddls.metrics.fid_stats import dataset_images, read_stats

    r = invoke("stats", "--data", "fashion-mnist", "--n", 500, "--features", "domain", "--device", "cpu",
               "--out", tmp_path / "ref.npz")
    assert r.exit_code == 0, r.output
    stats, meta = read_stats(tmp_path / "ref.npz")
    assert (stats.n, stats.dim, meta["features"], meta["data"], meta["split"]) == (500, 128, "domain",
                                                                                   "fashion-mnist", "train")
    by_hand = gaussian_stats(make_features("domain")(dataset_images("fashion-mnist")[:500]))
    np.testing.assert_allclose(stats.mu, by_hand.mu)
    np.testing.assert_allclose(stats.sigma, by_hand.sigma)


@pytest.mark.skipif(not HAVE_FMNIST, reason="needs `apt-get install dataset-fashion-mnist`")
def test_stats_against_other_stats(tmp_path):
    from ddls.metrics.fid import fid
    from ddls.metrics.fid_stats import read_stats

    assert invoke("stats", "--data", "fashion-mnist", "--n", 300, "--device", "cpu",
                  "--out", tmp_path / "a.npz").exit_code == 0
    r = invoke("stats", "--data", "fashion-mnist", "--split", "test", "--n", 300, "--device", "cpu",
               "--out", tmp_path / "b.npz", "--against", tmp_path / "a.npz")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    expected = fid(read_stats(tmp_path / "b.npz")[0], read_stats(tmp_path / "a.npz")[0])
    assert got["fid"] == pytest.approx(expected, rel=1e-12) and got["fid"] > 0
    assert (got["n"], got["against_n"]) == (300, 300)
