"""Precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020) of
samples against real data, in any feature space: the math only, no I/O, no networks.

Each point's ball reaches its k-th nearest neighbour in its own set; the balls stand in for the
manifolds.
- precision: share of samples inside at least one real ball (how many samples look real);
- recall: share of real points inside at least one sample ball (how much of the data is reached);
- density: real balls holding each sample, over k, averaged (about 1 when samples sit like the
  data; above 1 when they crowd where the data is dense, below where they stray);
- coverage: share of real points whose own ball holds at least one sample.
Comparisons are strict (<), as in the papers' code (the `prdc` package); higher is better for all
four. Distances are computed in float64, a block of rows at a time, so 10,000 x 10,000 points take
some hundred MB, not the 800 MB of the whole matrix.

Intervals resample the rows of the samples, as FID's do (ddls.metrics.intervals: the same indices
for the same seed and size, so the two pair up), the real points fixed and every ball's radius kept
at its value on the full sets: a drawn-twice sample would otherwise be its own neighbour at distance
0 and shrink its ball. Given which balls hold which points, each metric on a resample is a weighted
count, so all resamples cost one matrix product per block.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import DDLSError
from .intervals import LEVEL, Bootstrapped, Score, _indices, interval

K = 5  # nearest neighbours behind each ball, as in both papers
METRICS = ("precision", "recall", "density", "coverage")
BLOCK = 2 ** 23  # distances held at once (64 MiB of float64); a block of rows is BLOCK // columns long


def _points(x, name: str) -> torch.Tensor:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise DDLSError(f"precision and recall need (N, D) {name} features, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DDLSError(f"{name} features contain NaN or inf; are the samples finite?")
    return torch.from_numpy(np.ascontiguousarray(a))


def _blocks(rows: int, cols: int, block: int):
    step = max(1, block // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def _distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (len(a), len(b)) as |a|^2 + |b|^2 - 2 a.b, clipped at 0 (the package's formula)."""
    d = (a * a).sum(1, keepdim=True) + b_sq[None, :] - 2 * a @ b.T
    return d.clamp_min_(0).sqrt_()


def knn_radii(x, k: int = K, *, block: int = BLOCK) -> np.ndarray:
    """Distance from each row of (N, D) `x` to its k-th nearest other row (N > k)."""
    t = _points(x, "the")
    if len(t) <= k:
        raise DDLSError(f"k-nearest-neighbour balls need more than k = {k} points, got {len(t)}")
    sq = (t * t).sum(1)
    out = torch.empty(len(t), dtype=torch.float64)
    for rows in _blocks(len(t), len(t), block):
        # the (k+1)-th smallest: the row itself is the first, at distance 0
        out[rows] = _distances(t[rows], t, sq).topk(k + 1, dim=1, largest=False).values[:, -1]
    return out.numpy()


def _weighted(real: torch.Tensor, fake: torch.Tensor, k: int, weights: np.ndarray, block: int) -> np.ndarray:
    """(4, W) precision, recall, density, coverage with the samples counted by each column of `weights`
    (N_fake, W); a column of ones gives the metrics themselves."""
    real_radii = torch.from_numpy(knn_radii(real.numpy(), k, block=block))
    fake_radii = torch.from_numpy(knn_radii(fake.numpy(), k, block=block))
    w = torch.from_numpy(np.asarray(weights, np.float32))  # counts: exact in float32 below 2^24
    fake_sq = (fake * fake).sum(1)
    balls_holding = torch.zeros(len(fake), dtype=torch.float64)  # per sample: real balls it lies in
    covered = torch.zeros(w.shape[1], dtype=torch.float64)  # per weight column: real points covered
    recalled = torch.zeros(w.shape[1], dtype=torch.float64)
    for rows in _blocks(len(real), len(fake), block):
        d = _distances(real[rows], fake, fake_sq)  # (rows, N_fake)
        in_real = (d < real_radii[rows, None]).float()  # sample j in real ball i
        in_fake = (d < fake_radii[None, :]).float()  # real point i in sample ball j
        del d
        balls_holding += in_real.sum(0, dtype=torch.float64)
        covered += ((in_real @ w) > 0).sum(0, dtype=torch.float64)
        recalled += ((in_fake @ w) > 0).sum(0, dtype=torch.float64)
    w = w.double()
    n = w.sum(0)  # samples counted in each column
    precision = ((balls_holding > 0).double() @ w) / n
    density = (balls_holding @ w) / (k * n)
    return torch.stack([precision, recalled / len(real), density, covered / len(real)]).numpy()


def _check(real: torch.Tensor, fake: torch.Tensor, k: int) -> None:
    if real.shape[1] != fake.shape[1]:
        raise DDLSError(f"real features are {real.shape[1]}-d and sample features {fake.shape[1]}-d; "
                        f"compute both in one feature space")
    if k < 1 or min(len(real), len(fake)) <= k:
        raise DDLSError(f"precision and recall with k = {k} need more than {k} real points and samples, got "
                        f"{len(real)} and {len(fake)}; give more samples")


def prdc(real, fake, k: int = K, *, block: int = BLOCK) -> dict[str, float]:
    """{precision, recall, density, coverage} of (N, D) `fake` features against (M, D) `real` ones."""
    r, f = _points(real, "real"), _points(fake, "sample")
    _check(r, f, k)
    values = _weighted(r, f, k, np.ones((len(f), 1)), block)[:, 0]
    return {name: float(v) for name, v in zip(METRICS, values)}


def prdc_bootstrap(real, fake, k: int = K, *, resamples: int = 100, seed: int = 0, level: float = LEVEL,
                   block: int = BLOCK) -> dict[str, Bootstrapped]:
    """Each metric with its bootstrap interval over the samples' rows (see the module docstring)."""
    r, f = _points(real, "real"), _points(fake, "sample")
    _check(r, f, k)
    n = len(f)
    weights = np.ones((n, resamples + 1))
    for b, idx in enumerate(_indices(seed, n, n, resamples)):
        weights[:, b + 1] = np.bincount(idx, minlength=n)
    table = _weighted(r, f, k, weights, block)
    out = {}
    for name, row in zip(METRICS, table):
        lo, hi = interval(row[0], row[1:], level)
        out[name] = Bootstrapped(Score(float(row[0]), lo, hi, n), row[1:].copy(), (name, seed, n, len(r), resamples))
    return out


def prdc_columns(real, fake, k: int = K, *, resamples: int = 0, seed: int = 0) -> dict:
    """{precision, recall, density, coverage} and, when resamples > 0, each one's _lo and _hi, as tables
    and JSON show them; every value None when either side has k points or fewer."""
    if min(len(real), len(fake)) <= k:
        return {name: None for name in METRICS}
    if not resamples:
        return prdc(real, fake, k)
    scores = prdc_bootstrap(real, fake, k, resamples=resamples, seed=seed)
    return {name: scores[name].score.value for name in METRICS} | {
        f"{name}_{end}": getattr(scores[name].score, end) for name in METRICS for end in ("lo", "hi")}
