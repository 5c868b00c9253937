"""A user's own 2-D GAN and own real points, through the command line alone: the networks' factory in the
user's mygan.py, their weights as plain state dicts, the real points as points.npy; inspect, sample (Langevin
and MH-GAN, which needs the points), sweep, compare, tune, sample the tuned recipe, and eval against the points.

The networks are set by hand so that every answer is known: G(z) = z (so the generator alone gives N(0, I))
and d(x) = -K |x|_1, which favours points near 0, where the user's points lie (N(0, 0.4^2 I)). Any sampler
guided by d must therefore come closer to the points than the generator alone."""
import json
import sys
import warnings

import numpy as np
import pytest
import torch

from conftest import invoke, one_line_error

MYGAN = '''
from torch import nn

import ddls


@ddls.factory
def make_gan(hidden=4):
    g = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    d = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    return g, d
'''
SPEC = "mygan.py:make_gan"
K = 2.0  # d(x) = -K |x|_1
SPREAD = 0.4  # the points' standard deviation
SPLIT = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]  # relu of these rows gives x+, x-, y+, y-


def _linear(index: int, weight, bias) -> dict:
    return {f"{index}.weight": torch.tensor(weight), f"{index}.bias": torch.tensor(bias)}


def _weights() -> dict:
    """G(z) = relu(z) - relu(-z) = z; d(x) = -K (relu(x) + relu(-x)) summed = -K |x|_1."""
    first = _linear(0, SPLIT, [0.0] * 4)
    g = {**first, **_linear(2, [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]], [0.0, 0.0])}
    d = {**first, **_linear(2, [[-K] * 4], [0.0])}
    return {"G": g, "D": d}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The user's folder: mygan.py, weights.pt (state dicts), points.npy and the same points moved by 3."""
    where = tmp_path_factory.mktemp("mine")
    (where / "mygan.py").write_text(MYGAN)
    torch.save(_weights(), where / "weights.pt")
    points = np.random.default_rng(0).normal(size=(400, 2)) * SPREAD
    np.save(where / "points.npy", points)
    np.save(where / "shifted.npy", points + 3.0)
    return where


@pytest.fixture
def mine(folder, monkeypatch):
    monkeypatch.chdir(folder)  # the user runs every command in their own folder
    yield folder
    sys.modules.pop("mygan", None)  # imported by name from this folder: not another test's mygan


def _ok(*args):
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    return r


def _npz(path):
    with np.load(path) as f:
        meta = json.loads(str(f["meta"])) if "meta" in f.files else None
        return {k: f[k] for k in f.files if k != "meta"}, meta


def _emd(samples, data="points.npy"):
    return json.loads(_ok("eval", "--samples", samples, "--data", data, "--bootstrap", "0", "--json").stdout)["emd"]


@pytest.mark.parametrize("spec", [SPEC, "mygan:make_gan"])
def test_inspect_builds_the_users_networks(mine, spec):
    info = json.loads(_ok("inspect", "--ckpt", "weights.pt", "--model", spec, "--json").stdout)
    assert info["latent_shape"] == [2] and info["factory"] == spec
    assert info["generator_parameters"] == (2 * 4 + 4) + (4 * 2 + 2)
    assert info["discriminator_parameters"] == (2 * 4 + 4) + (4 + 1)


def test_sample_and_eval_against_the_users_points(mine, tmp_path):
    out = tmp_path / "g.npz"
    _ok("sample", "--ckpt", "weights.pt", "--model", SPEC, "--steps", "0", "--n", "300", "--data", "points.npy",
        "--out", out)
    arrays, meta = _npz(out)
    assert arrays["x"].shape == (300, 2)
    torch.testing.assert_close(arrays["x"], arrays["z"], rtol=0, atol=1e-6)  # G(z) = z: the weights were loaded
    # the file records the points, so eval needs no --data; the same EMD as naming them
    recorded = json.loads(_ok("eval", "--samples", out, "--bootstrap", "0", "--json").stdout)
    assert recorded["data"] == "points.npy" and recorded["emd"] == _emd(out)
    near, far = _emd(out), _emd(out, "shifted.npy")
    assert np.isfinite(near) and near < far
    # N(0, I) against N(0, 0.4^2 I): W1 is about (1 - 0.4) * E|n| = 0.6 * 1.25 in 2-D
    assert 0.5 < near < 1.0, near


def test_langevin_and_mhgan_come_closer_to_the_points(mine, tmp_path):
    generator, ddls_out, mh = tmp_path / "g.npz", tmp_path / "d.npz", tmp_path / "m.npz"
    common = ["--ckpt", "weights.pt", "--model", SPEC, "--n", "200", "--seed", "1"]
    _ok("sample", *common, "--steps", "0", "--out", generator)
    _ok("sample", *common, "--steps", "100", "--eps", "0.01", "--out", ddls_out)
    line = one_line_error(invoke("sample", *common, "--method", "mhgan", "--out", mh))
    assert "--method mhgan needs real samples" in line and "--data points.npy" in line
    _ok("sample", *common, "--method", "mhgan", "--mh-chain-length", "50", "--data", "points.npy", "--out", mh)
    arrays, meta = _npz(mh)
    assert arrays["x"].shape == (200, 2) and meta["method"] == "mhgan" and meta["data"] == "points.npy"
    base = _emd(generator)
    assert _emd(ddls_out) < 0.6 * base and _emd(mh) < 0.6 * base


def test_sweep_scores_against_the_users_points(mine, tmp_path):
    rows = json.loads(_ok("sweep", "--ckpt", "weights.pt", "--model", SPEC, "--data", "points.npy", "--eps", "0.01",
                          "--steps", "100", "--n", "200", "--bootstrap", "0", "--json", "--out",
                          tmp_path / "sweep").stdout)
    assert [r["eps"] for r in rows][1:] == [0.01] and rows[1]["emd"] < 0.6 * rows[0]["emd"]
    assert json.loads((tmp_path / "sweep" / "config.json").read_text())["data"] == "points.npy"


def test_compare_scores_against_the_users_points(mine, tmp_path):
    table = json.loads(_ok("compare", "--ckpt", "weights.pt", "--model", SPEC, "--data", "points.npy", "--methods",
                           "mhgan", "--mh-chain-length", "20", "--n", "200", "--bootstrap", "0", "--json", "--out",
                           tmp_path / "compare").stdout)
    assert [r["method"] for r in table] == ["generator", "mhgan"] and table[1]["emd"] < table[0]["emd"]


def test_calibrate_against_the_users_points_names_them_in_the_new_checkpoint(mine, tmp_path):
    cal, out = tmp_path / "cal.pt", tmp_path / "m.npz"
    args = ["calibrate", "--ckpt", "weights.pt", "--model", SPEC, "--method", "platt", "--n", "300", "--out", cal]
    assert "--data points.npy" in one_line_error(invoke(*args))
    _ok(*args, "--data", "points.npy")
    _ok("sample", "--ckpt", cal, "--model", SPEC, "--method", "mhgan", "--mh-chain-length", "20", "--n", "50",
        "--out", out)  # the calibrated file names the points: no --data needed
    arrays, meta = _npz(out)
    assert arrays["x"].shape == (50, 2) and meta["data"] == "points.npy"


def test_tune_then_sample_the_recipe_with_the_users_factory_and_points(mine, tmp_path):
    from ddls.tuning.recipe import read_recipe, stored_recipe
    from ddls.io.checkpoint import read_checkpoint

    tuned = tmp_path / "TUNED.pt"
    r = _ok("tune", "--ckpt", "weights.pt", "--model", SPEC, "--data", "points.npy", "--methods", "mhgan",
            "--calibrations", "raw", "--n-start", "32", "--n-max", "64", "--n-report", "64", "--bootstrap", "20",
            "--budget", "1m", "--out", tuned)
    assert f"--model {SPEC} --data points.npy` runs it" in r.output
    recipe = read_recipe(tuned)
    assert recipe.method == "mhgan"  # the only method searched, far better than N(0, I) here
    record = stored_recipe(read_checkpoint(tuned))["tuning"]
    assert record["factory"] == SPEC and record["data"] == "points.npy" and record["improved"]

    out = tmp_path / "t.npz"
    line = one_line_error(invoke("sample", "--ckpt", tuned, "--n", "100", "--data", "points.npy", "--out", out))
    assert f"--model '{SPEC}'" in line  # a file names the factory; the user gives it
    line = one_line_error(invoke("sample", "--ckpt", tuned, "--model", SPEC, "--n", "100", "--out", out))
    assert "--data points.npy" in line and "tuned on 'points.npy'" in line
    _ok("sample", "--ckpt", tuned, "--model", SPEC, "--n", "100", "--data", "points.npy", "--out", out)
    arrays, meta = _npz(out)
    assert arrays["x"].shape == (100, 2) and meta["method"] == "mhgan"
    _ok("sample", "--ckpt", "weights.pt", "--model", SPEC, "--steps", "0", "--n", "100", "--out", tmp_path / "g.npz")
    assert _emd(out) < 0.6 * _emd(tmp_path / "g.npz")


def _write(path, value):
    np.save(path, value)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _write(p, np.ones((50, 3))), "holds points of 3 numbers, but the samples of"),
    (lambda p: _write(p, np.ones((50, 2)) * (1 + 1j)), "holds complex128 values; real points must be real"),
    (lambda p: _write(p, np.full((50, 2), np.nan)), "50 of 50 points are NaN"),
    (lambda p: _write(p, np.full((50, 2), 1e300)), "beyond float32's range"),
    (lambda p: _write(p, np.ones(50)), "shape (50,)"),
    (lambda p: _write(p, np.array([["a", "b"]] * 50)), "holds <U1 values; real points must be real"),
    (lambda p: _write(p, np.array([{"x": 1}] * 50, dtype=object)), "not a readable .npy"),
    (lambda p: p.write_bytes(b"\x93NUMPY garbage") and p, "not a readable .npy"),
    (lambda p: p, "not found"),
])
def test_a_points_file_mistake_is_one_line_in_every_command(mine, tmp_path, make, message):
    bad = make(tmp_path / "bad.npy")
    _ok("sample", "--ckpt", "weights.pt", "--model", SPEC, "--steps", "0", "--n", "20", "--out", tmp_path / "g.npz")
    runs = [["sample", "--ckpt", "weights.pt", "--model", SPEC, "--method", "mhgan", "--n", "20",
             "--out", tmp_path / "m.npz"],
            ["sample", "--ckpt", "weights.pt", "--model", SPEC, "--steps", "1", "--n", "20",
             "--out", tmp_path / "l.npz"],
            ["eval", "--samples", tmp_path / "g.npz"],
            ["sweep", "--ckpt", "weights.pt", "--model", SPEC, "--n", "20", "--out", tmp_path / "sweep"]]
    for args in runs:
        assert message in one_line_error(invoke(*args, "--data", bad)), args
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "l.npz").exists()


def test_points_are_drawn_from_the_file_by_the_generator(tmp_path):
    from ddls.data.real import real_data
    from ddls.data.toy2d import get_dataset, is_point_data

    points = np.arange(20, dtype=np.float64).reshape(10, 2)
    path = str(_write(tmp_path / "p.npy", points))
    assert is_point_data(path) and is_point_data("gmm25") and not is_point_data("fashion-mnist")
    dataset = get_dataset(path)
    every = dataset.sample(10, torch.Generator().manual_seed(0)).numpy()
    assert sorted(map(tuple, every)) == sorted(map(tuple, points))  # n = N: the file itself, shuffled
    more = dataset.sample(25, torch.Generator().manual_seed(0)).numpy()
    assert more.shape == (25, 2) and {tuple(p) for p in more} <= {tuple(p) for p in points}
    again = dataset.sample(7, torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(again, dataset.sample(7, torch.Generator().manual_seed(3)).numpy())
    draw, shape, _ = real_data(path)
    assert shape == (2,) and draw(4, torch.Generator().manual_seed(1)).shape == (4, 2)


def test_make_target_is_the_target_and_keeps_its_fit():
    from ddls import posthoc
    from ddls.posthoc import LatentLogit, make_target
    from ddls.sampling.energy import LatentEnergy

    torch.manual_seed(0)
    g, d = torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    energy = LatentEnergy(g, d, latent_shape=2, kind="gan")
    target = make_target(energy, "raw")
    assert isinstance(target, LatentLogit) and target.record["evaluations"] == 0 and "calibration" in target.record
    result = posthoc.run("drs", target, 16, posthoc.default_config("drs"), seed=0)  # as the README writes it
    assert result.samples.shape == (16, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same, record = make_target(energy, "raw")  # the old pair still unpacks, with a warning
    assert isinstance(same, LatentLogit) and record == target.record
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
