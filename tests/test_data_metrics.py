"""2-D targets and their metrics."""
import numpy as np
import pytest
import torch

from ddls._torch import make_generator
from ddls.data.toy2d import DATASETS, GRID25, get_dataset
from ddls.errors import DDLSError
from ddls.metrics.points2d import emd, evaluate, mode_stats


def test_grid_has_25_modes_on_the_even_lattice():
    assert GRID25.shape == (25, 2)
    assert set(GRID25.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


def test_true_samples_score_perfectly():
    ds = get_dataset("gmm25")
    x = ds.sample(5000, make_generator(0)).numpy()
    modes, hq = mode_stats(x, ds.means.numpy(), ds.std)
    assert modes == 25
    assert hq > 99.9  # 4 std in 2-D leaves out exp(-8) ~ 0.03%
    assert np.abs(x.std(0) - np.sqrt(8 + 0.05**2)).max() < 0.15  # uniform over the lattice


def test_ring_and_swissroll_shapes():
    ring = get_dataset("ring8").sample(1000, make_generator(0)).numpy()
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1).mean(), 2.0, atol=0.01)
    roll = get_dataset("swissroll").sample(1000, make_generator(0)).numpy()
    r = np.linalg.norm(roll, axis=1)
    assert roll.shape == (1000, 2) and 0.3 < r.min() and r.max() < 2.2


def test_emd_of_a_shift_is_the_shift_length():
    a = np.random.default_rng(0).normal(size=(300, 2))
    assert emd(a, a + np.array([0.3, 0.4])) == pytest.approx(0.5, abs=1e-9)
    assert emd(a, a) == pytest.approx(0.0, abs=1e-12)


def test_emd_matches_brute_force_assignment():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    import itertools

    best = min(np.linalg.norm(a - b[list(p)], axis=1).mean() for p in itertools.permutations(range(6)))
    assert emd(a, b) == pytest.approx(best, rel=1e-9)


def test_mode_stats_by_hand():
    means = np.array([[0.0, 0.0], [2.0, 0.0]])
    x = np.array([[0.1, 0.0], [0.0, -0.19], [1.0, 0.0], [2.0, 0.25]])  # std 0.05: radius 0.2
    modes, hq = mode_stats(x, means, 0.05)
    assert modes == 1 and hq == 50.0


def test_evaluate_reports_what_applies():
    x = get_dataset("swissroll").sample(200, make_generator(1)).numpy()
    out = evaluate(x, get_dataset("swissroll"))
    assert out["modes"] is None and out["hq"] is None and 0 < out["emd"] < 0.5


def test_unknown_data_name():
    with pytest.raises(DDLSError, match="unknown 2-D data 'gmm9'; choose one of gmm25, ring8, swissroll"):
        get_dataset("gmm9")
    assert set(DATASETS) == {"gmm25", "ring8", "swissroll"}
