"""FID split into mean, spread along the data's principal directions and rotation (ddls.metrics.explain):
known answers, parts that sum to FID, and `ddls eval --explain`."""
import json

import numpy as np
import pytest

from conftest import invoke
from ddls.metrics.explain import format_split, split_fid
from ddls.metrics.fid import GaussianStats, fid, gaussian_stats

pytestmark = pytest.mark.usefixtures("one_thread")


def stats_of(rng, n, cov, mean=0.0):
    x = rng.multivariate_normal(np.zeros(len(cov)) + mean, cov, size=n)
    return gaussian_stats(x)


def test_narrow_samples_have_ratio_a_quarter_and_a_narrow_verdict():
    rng = np.random.default_rng(0)
    data = stats_of(rng, 20000, np.eye(6))
    samples = stats_of(rng, 20000, 0.25 * np.eye(6))
    split = split_fid(samples, data, k=4)
    ratios = [d.ratio for d in split.directions] + [split.rest["ratio"]]
    np.testing.assert_allclose(ratios, 0.25, atol=0.02)
    assert split.narrow > 0.99 * split.fid and split.mean < 0.01 * split.fid
    assert split.verdict.startswith("samples too narrow") and "spread would help" in split.verdict
    assert split.best_scale == pytest.approx(2.0, rel=0.03) and split.fid_scaled < 0.01 * split.fid


def test_wide_samples_get_a_wide_verdict():
    rng = np.random.default_rng(1)
    split = split_fid(stats_of(rng, 20000, 4 * np.eye(5)), stats_of(rng, 20000, np.eye(5)), k=3)
    np.testing.assert_allclose([d.ratio for d in split.directions], 4.0, rtol=0.05)
    assert split.wide > 0.99 * split.fid and split.verdict.startswith("samples too wide")


def test_a_mean_shift_is_the_mean_term():
    rng = np.random.default_rng(2)
    cov = np.diag([3.0, 2.0, 1.0, 0.5])
    data, samples = stats_of(rng, 20000, cov), stats_of(rng, 20000, cov, mean=2.0)
    split = split_fid(samples, data, k=2)
    assert split.mean == pytest.approx(16.0, rel=0.02) and split.mean > 0.99 * split.fid
    assert split.verdict.startswith("mean shift")
    per_direction = sum(d.mean_shift for d in split.directions) + split.rest["mean_shift"]
    assert per_direction == pytest.approx(split.mean, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_parts_sum_to_fid(seed):
    """mean + spread + rotation is FID, the rotation computed on its own (not as what is left)."""
    rng = np.random.default_rng(seed)
    dim = 12
    a, b = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
    data = stats_of(rng, 3000, a @ a.T / dim)
    samples = stats_of(rng, 3000, b @ b.T / dim, mean=rng.normal(scale=0.3, size=dim))
    split = split_fid(samples, data, k=5)
    total = fid(samples, data)
    assert split.fid == total
    assert split.mean + split.spread + split.rotation == pytest.approx(total, rel=1e-6)
    assert split.rotation >= 0 and split.narrow + split.wide == pytest.approx(split.spread, rel=1e-12)
    assert sum(d.spread for d in split.directions) + split.rest["spread"] == pytest.approx(split.spread, rel=1e-10)
    lam = np.sort(np.linalg.eigvalsh(data.sigma))[::-1]
    np.testing.assert_allclose([d.data_var for d in split.directions], lam[:5], rtol=1e-10)


def test_same_variances_turned_is_all_rotation():
    """Samples with the data's variance along each of its axes but correlated: no spread part, only rotation."""
    data = GaussianStats(np.zeros(2), np.diag([4.0, 1.0]), 1000)
    samples = GaussianStats(np.zeros(2), np.array([[4.0, 1.5], [1.5, 1.0]]), 1000)
    split = split_fid(samples, data, k=2)
    assert split.spread == pytest.approx(0.0, abs=1e-12) and split.mean == 0
    assert split.rotation == pytest.approx(fid(samples, data), rel=1e-9) and split.rotation > 0.1
    assert split.verdict.startswith("rotation")


def test_exactly_shrunk_covariance_is_fixed_by_one_rescaling():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(6, 6))
    data = GaussianStats(np.zeros(6), a @ a.T, 1000)
    samples = GaussianStats(np.zeros(6), 0.25 * a @ a.T, 1000)
    split = split_fid(samples, data, k=3)
    assert split.best_scale == pytest.approx(2.0, rel=1e-9)
    assert split.fid_scaled == pytest.approx(0.0, abs=1e-8) and split.fid_matched == pytest.approx(0.0, abs=1e-8)
    assert split.fid_scaled <= split.fid_matched_top <= split.fid
    assert split.rotation == pytest.approx(0.0, abs=1e-8)
    assert "verdict: samples too narrow" in format_split(split)


def test_eval_explain_prints_and_returns_the_split(tmp_path):
    from ddls.io.outputs import write_npz
    from ddls.metrics.features import make_features
    from ddls.metrics.fid_stats import stats_meta, write_stats

    rng = np.random.default_rng(5)
    extractor = make_features("domain")
    real = np.tanh(rng.normal(size=(300, 1, 28, 28))).astype(np.float32)
    stats = write_stats(tmp_path / "ref.npz", gaussian_stats(extractor(real)), stats_meta(extractor, data="toy"))
    write_npz(tmp_path / "s.npz", {"x": (0.5 * real[:200]).astype(np.float32)}, {})
    args = ("eval", "--samples", tmp_path / "s.npz", "--stats", stats, "--device", "cpu", "--bootstrap", 0,
            "--explain", "--directions", 3)
    got = json.loads(invoke(*args, "--json").stdout)
    split = got["explain"]
    assert split["fid"] == got["fid"] and len(split["directions"]) == 3 and split["rest"]["count"] == 125
    assert split["mean"] + split["spread"] + split["rotation"] == pytest.approx(got["fid"], rel=1e-6)
    text = invoke(*args).stdout
    assert f"fid: {got['fid']:.4g}" in text and f"verdict: {split['verdict']}" in text
    assert "direction  data_var  sample_var" in text
