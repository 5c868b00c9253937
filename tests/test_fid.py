"""FID math against hand computations, and reference-statistics files."""
import numpy as np
import pytest

from ddls.errors import DDLSError
from ddls.metrics.fid import GaussianStats, fid, frechet_distance, gaussian_stats, trace_sqrt_product
from ddls.metrics.fid_stats import read_stats, write_stats


def test_one_dimensional_gaussians_by_hand():
    # N(1, 2^2) vs N(-2, 3^2): (1 + 2)^2 + 4 + 9 - 2 * sqrt(4 * 9) = 9 + 1 = 10
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(10.0, abs=1e-12)


def test_diagonal_gaussians_by_hand():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2 = (1 + 0 + 4) + (4 + 1 + 0) = 10
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(10.0, abs=1e-12)


def test_non_commuting_covariances_by_hand():
    # S1 = diag(4, 1) and S2 = R diag(4, 1) R^T with R a 90-degree rotation = diag(1, 4):
    # S1 S2 = diag(4, 4), its square root diag(2, 2): FD = 5 + 5 - 2 * 4 = 2.
    s1 = np.diag([4.0, 1.0])
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    s2 = rot @ s1 @ rot.T
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(2.0, abs=1e-12)
    # a general pair: tr sqrt(S1 S2) from the eigenvalues of S1 S2 (real, non-negative for SPD pairs)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + 0.1 * np.eye(4)
    by_hand = np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    assert trace_sqrt_product(s1, s2) == pytest.approx(by_hand, rel=1e-10)


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")
def test_agrees_with_pytorch_gan_metrics():
    from pytorch_gan_metrics.core import calculate_frechet_distance

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16))
    y = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) * 0.4 + 0.3
    sx, sy = gaussian_stats(x), gaussian_stats(y)
    ours = fid(sx, sy)
    theirs = calculate_frechet_distance(sx.mu, sx.sigma, sy.mu, sy.sigma)
    assert ours > 1.0
    assert ours == pytest.approx(float(theirs), rel=1e-9)


def test_set_against_itself_and_shifted():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 10))
    s = gaussian_stats(x)
    assert fid(s, s) == pytest.approx(0.0, abs=1e-9)
    # a shift moves only the mean: FID = |shift|^2 exactly
    shift = np.full(10, 0.5)
    assert fid(s, gaussian_stats(x + shift)) == pytest.approx(10 * 0.25, rel=1e-9)
    # a scaling by 2 keeps the mean direction, FID = |mu|^2 + tr S (1 + 4 - 4) = |mu|^2 + tr S
    expected = float(s.mu @ s.mu + np.trace(s.sigma))
    assert fid(s, gaussian_stats(2 * x)) == pytest.approx(expected, rel=1e-8)


def test_fewer_samples_than_dimensions_stays_finite():
    rng = np.random.default_rng(3)
    s1, s2 = gaussian_stats(rng.normal(size=(5, 50))), gaussian_stats(rng.normal(size=(5, 50)))
    assert fid(s1, s1) == pytest.approx(0.0, abs=1e-8)
    assert np.isfinite(fid(s1, s2)) and fid(s1, s2) > 0


def test_gaussian_stats_by_hand_and_refusals():
    s = gaussian_stats(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]]))
    np.testing.assert_allclose(s.mu, [2.0, 4.0])
    np.testing.assert_allclose(s.sigma, [[4.0, 7.0], [7.0, 13.0]])
    assert s.n == 3
    with pytest.raises(DDLSError, match="at least 2"):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(DDLSError, match="NaN"):
        gaussian_stats(np.array([[0.0], [np.nan]]))
    with pytest.raises(DDLSError, match="same feature space"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_stats_file_round_trip_and_missing(tmp_path):
    s = GaussianStats(np.arange(3.0), np.diag([1.0, 2.0, 3.0]), 7)
    path = write_stats(tmp_path / "ref.npz", s, {"features": "domain", "dim": 3, "data": "toy"})
    back, meta = read_stats(path)
    np.testing.assert_array_equal(back.mu, s.mu)
    np.testing.assert_array_equal(back.sigma, s.sigma)
    assert (back.n, meta["features"], meta["data"]) == (7, "domain", "toy")
    with pytest.raises(DDLSError, match=r"not found; make them with `ddls stats --data fashion-mnist"):
        read_stats(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", mu=np.zeros(3))
    with pytest.raises(DDLSError, match="no 'mu' and 'sigma'"):
        read_stats(tmp_path / "bad.npz")


def test_stats_written_by_pytorch_gan_metrics_are_read_as_inception(tmp_path):
    np.savez_compressed(tmp_path / "cifar.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    stats, meta = read_stats(tmp_path / "cifar.npz")
    assert meta["features"] == "inception" and stats.dim == 2048
