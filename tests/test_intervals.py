"""Bootstrap intervals for FID and EMD, and the rules that compare two scores."""
import json

import numpy as np
import pytest

from ddls.errors import DDLSError
from ddls.metrics.fid import GaussianStats, fid, gaussian_stats
from ddls.metrics.intervals import Score, beats, better, difference, emd_bootstrap, fid_bootstrap, interval
from ddls.metrics.points2d import emd


def test_beats_needs_disjoint_intervals():
    a, b = Score(1.0, 0.8, 1.2, 100), Score(2.0, 1.5, 2.5, 100)
    assert beats(a, b) and not beats(b, a)
    assert not beats(Score(1.0, 0.8, 1.6, 100), b)  # overlapping: no verdict
    assert Score(1.0, 0.8, 1.2, 100).columns("emd") == {"emd": 1.0, "emd_lo": 0.8, "emd_hi": 1.2}


def test_interval_is_recentred_on_the_estimate():
    reps = np.arange(1000) / 1000 + 5.0  # uniform on [5, 6): mean 5.4995, shifted by the bias
    lo, hi = interval(1.0, reps)
    assert lo == pytest.approx(1.0 + np.quantile(reps, 0.025) - reps.mean())
    assert hi == pytest.approx(1.0 + np.quantile(reps, 0.975) - reps.mean())


def test_fid_value_is_the_plain_fid_and_the_interval_covers_the_truth():
    # N(m, I) against the exact statistics of N(0, I): the population FID is |m|^2 = 1
    ref = GaussianStats(np.zeros(2), np.eye(2), 10**6)
    covered = 0
    for seed in range(40):
        f = np.random.default_rng(seed).standard_normal((400, 2)) + [1.0, 0.0]
        b = fid_bootstrap(f, ref, resamples=100, seed=seed)
        assert b.score.value == fid(gaussian_stats(f), ref)
        assert b.score.lo < b.score.value < b.score.hi
        covered += b.score.lo <= 1.0 <= b.score.hi
    assert covered >= 34  # a 95% interval: 38 expected of 40


def test_emd_value_is_the_plain_emd_and_paired_differences_find_the_better_set():
    rng = np.random.default_rng(0)
    data, base = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    noise = rng.standard_normal((300, 2))
    worse, better_set = base + 0.6 * noise, base + 0.1 * noise  # the same points, moved less or more
    a = emd_bootstrap(better_set, data, resamples=60, seed=3)
    b = emd_bootstrap(worse, data, resamples=60, seed=3)
    assert a.score.value == emd(better_set, data)
    assert a.score.lo < a.score.value < a.score.hi
    assert better(a, b) and not better(b, a)
    d = difference(a, b)
    assert d.value == pytest.approx(a.score.value - b.score.value) and d.hi < 0
    same = difference(a, a)  # a set against itself: exactly no difference
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0) and not better(a, a)


def test_paired_difference_refuses_sets_resampled_differently():
    x = np.random.default_rng(1).standard_normal((50, 2))
    with pytest.raises(DDLSError, match="resampled alike"):
        difference(emd_bootstrap(x, x, resamples=5, seed=0), emd_bootstrap(x, x, resamples=5, seed=1))


def test_emd_of_unequal_sets_and_large_sets_use_a_subset():
    rng = np.random.default_rng(2)
    x, r = rng.standard_normal((1200, 2)), rng.standard_normal((300, 2))
    b = emd_bootstrap(x, r, resamples=4, seed=0)
    assert b.score.value == pytest.approx(emd(x, r)) and b.score.n == 1200
    assert b.scale == pytest.approx(np.sqrt(1000 / 1200))


def test_sweep_and_compare_show_intervals_around_each_value(tmp_path):
    from pathlib import Path

    from conftest import invoke

    ckpt = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
    r = invoke("sweep", "--ckpt", ckpt, "--eps", 1e-3, "--steps", 3, "--n", 60, "--bootstrap", 20,
               "--out", tmp_path / "sw", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert all(row["emd_lo"] < row["emd"] < row["emd_hi"] for row in rows)
    r = invoke("compare", "--ckpt", ckpt, "--methods", "ddls", "--steps", 3, "--n", 60, "--bootstrap", 0,
               "--out", tmp_path / "cmp", "--json")
    assert r.exit_code == 0, r.output
    assert all(row["emd_lo"] is None and row["emd"] > 0 for row in json.loads(r.stdout))  # 0: no interval
