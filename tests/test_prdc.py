"""Precision, recall, density and coverage (ddls.metrics.prdc): against the `prdc` package, known
answers, the bootstrap's resamples computed by hand, and `ddls eval`/`compare` showing them."""
import contextlib
import io
import json

import numpy as np
import pytest

from conftest import invoke
from ddls.errors import DDLSError
from ddls.metrics.prdc import METRICS, knn_radii, prdc, prdc_bootstrap, prdc_columns

pytestmark = pytest.mark.usefixtures("one_thread")


def package_prdc(real, fake, k):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        return {name: float(v) for name, v in compute_prdc(real, fake, k).items()}


@pytest.mark.parametrize("m, n, dim, k", [(60, 50, 3, 3), (200, 150, 16, 5), (100, 130, 2, 1), (90, 90, 8, 10),
                                          (40, 300, 64, 5)])
@pytest.mark.parametrize("block", [97, 2 ** 23])  # a few rows per block, and everything at once
def test_matches_the_prdc_package(m, n, dim, k, block):
    pytest.importorskip("prdc")
    rng = np.random.default_rng(m * n + dim + k)
    real = rng.normal(size=(m, dim))
    fake = rng.normal(size=(n, dim)) * rng.uniform(0.5, 1.5) + rng.uniform(-0.5, 0.5)
    got, expected = prdc(real, fake, k, block=block), package_prdc(real, fake, k)
    assert got == pytest.approx(expected, abs=1e-6)
    assert 0 < expected["precision"] < 1 or 0 < expected["recall"] < 1  # not a degenerate case


def test_known_answers():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(80, 4))
    # the data itself: every point lies in its own ball; each ball holds itself and its k - 1 nearest
    assert prdc(real, real.copy(), 5) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    far = prdc(real, real + 100.0, 5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # samples collapsed onto one point near the data: all look real; their balls have radius 0, so no recall
    point = real[0] + 1e-3 * rng.normal(size=4)
    collapsed = prdc(real, np.repeat(point[None], 40, axis=0), 5)
    holding = np.linalg.norm(real - point, axis=1) < knn_radii(real, 5)  # the real balls the point lies in
    assert 1 <= holding.sum() < 40  # each of the 40 copies lies in holding.sum() balls: density sum / k
    assert collapsed == pytest.approx({"precision": 1.0, "recall": 0.0, "density": holding.sum() / 5,
                                       "coverage": holding.mean()}, abs=1e-12)


def test_knn_radii_by_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.testing.assert_allclose(knn_radii(x, 4, block=7), np.sort(d, axis=1)[:, 4], rtol=1e-10)


def test_bootstrap_resamples_are_the_metrics_on_resampled_rows_with_fixed_balls():
    """Each replicate by hand: the samples drawn with the resample's indices, radii from the full sets."""
    from ddls.metrics.intervals import _indices

    rng = np.random.default_rng(2)
    real, fake, k = rng.normal(size=(70, 3)), 0.8 * rng.normal(size=(60, 3)), 4
    boot = prdc_bootstrap(real, fake, k, resamples=6, seed=11, block=50)
    real_r, fake_r = knn_radii(real, k), knn_radii(fake, k)
    d = np.linalg.norm(real[:, None] - fake[None], axis=2)  # (real, fake)
    for b, idx in enumerate(_indices(11, len(fake), len(fake), 6)):
        inside = d[:, idx] < real_r[:, None]
        by_hand = {"precision": inside.any(0).mean(), "density": inside.sum(0).mean() / k,
                   "coverage": inside.any(1).mean(), "recall": (d[:, idx] < fake_r[idx][None]).any(1).mean()}
        for name in METRICS:
            assert boot[name].replicates[b] == pytest.approx(by_hand[name], abs=1e-12), name
    full = prdc(real, fake, k)
    for name in METRICS:
        score = boot[name].score
        assert score.value == full[name] and score.lo <= score.value <= score.hi and score.hi > score.lo
        assert boot[name].key == (name, 11, 60, 70, 6)


def test_columns_and_refusals():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    cols = prdc_columns(real, fake, resamples=20, seed=0)
    assert set(cols) == {*METRICS, *(f"{m}_{e}" for m in METRICS for e in ("lo", "hi"))}
    assert {m: cols[m] for m in METRICS} == prdc(real, fake)
    assert prdc_columns(real, fake[:5]) == {m: None for m in METRICS}  # k = 5 needs more than 5 samples
    with pytest.raises(DDLSError, match="one feature space"):
        prdc(real, rng.normal(size=(30, 3)))
    with pytest.raises(DDLSError, match="NaN or inf"):
        prdc(real, np.full((30, 2), np.nan))


def test_eval_shows_them_and_the_data_itself_scores_one(tmp_path):
    """Samples that are the very reference points `eval` compares 2-D samples to score 1 on all four."""
    from ddls.data.toy2d import get_dataset
    from ddls.io.outputs import write_npz
    from ddls.metrics.points2d import reference_samples

    x = reference_samples(get_dataset("gmm25"), 120)
    write_npz(tmp_path / "s.npz", {"x": x}, {"data": "gmm25"})
    got = json.loads(invoke("eval", "--samples", tmp_path / "s.npz", "--json", "--bootstrap", 10).stdout)
    assert {m: got[m] for m in METRICS} == {m: 1.0 for m in METRICS}
    write_npz(tmp_path / "t.npz", {"x": 0.3 * x}, {"data": "gmm25"})
    got = json.loads(invoke("eval", "--samples", tmp_path / "t.npz", "--json", "--bootstrap", 10).stdout)
    assert got["recall"] < 0.5 and got["precision_lo"] <= got["precision"] <= got["precision_hi"]
    text = invoke("eval", "--samples", tmp_path / "t.npz", "--bootstrap", 0).stdout
    assert f"recall: {got['recall']:.4g}" in text


def test_tune_report_shows_them_for_the_generator_and_the_recipe(tmp_path):
    from pathlib import Path

    from ddls.cli.tune import _report_prdc

    ckpt = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
    out = json.loads(invoke("tune", "--ckpt", ckpt, "--out", tmp_path / "t.pt", "--budget", "1e5evals", "--methods",
                            "drs", "--calibrations", "raw", "--temperatures", "1", "--steps", 5, "--n-start", 64,
                            "--n-max", 64, "--n-report", 64, "--bootstrap", 10, "--json").stdout)
    report = out["report"]
    for row in ("generator", "recipe"):
        cols = report["prdc"][row]
        assert all(0 <= cols[m] and cols[f"{m}_lo"] <= cols[m] <= cols[f"{m}_hi"] for m in METRICS)
    assert 0 < report["prdc"]["generator"]["recall"] <= 1
    text = _report_prdc(report["prdc"], "drs")
    assert f"generator: precision {report['prdc']['generator']['precision']:.3f}" in text
    assert f"drs: precision {report['prdc']['recipe']['precision']:.3f}" in text
