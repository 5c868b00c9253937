"""Error bars for sample-quality metrics (FID, 2-D EMD): bootstrap intervals, and paired differences.

Both metrics are distances, so lower is better throughout.

- FID: resample the rows of the generated features (with replacement), refit mean and
  covariance, and take the FID against the fixed reference statistics.
- EMD: resample the samples and the reference points (with replacement) and recompute the
  exact EMD. Above `EMD_SUBSET` points, each resample draws that many of each (an m-out-of-n
  bootstrap) and its spread is scaled by sqrt(m / n): EMD costs grow fast with n.

Resampled metrics are biased upward (duplicated rows shrink the covariance's rank and
fatten the transport cost), so the interval is the percentile interval of the replicates
shifted by their mean bias: the estimate keeps its place inside. On 2-D EMD this interval
is conservative (about 1.5-2x wider than the spread over fresh draws); the paired
difference below is not (its spread matched fresh draws in our checks).

Two rules decide whether a is better than b:
- `beats(a, b)`: a's interval lies entirely below b's. Conservative; needs no pairing.
- `better(a, b)`: the paired bootstrap interval of a - b lies below 0. Both sets are
  resampled with the same indices (same seed, same sizes), so noise the two share (the
  same latents, the same reference) cancels. This is the rule `ddls tune` uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DDLSError
from .emd import emd
from .fid import GaussianStats, _psd_sqrt, fid, gaussian_stats

LEVEL = 0.95
EMD_SUBSET = 1000  # largest resample for EMD; see the module docstring


@dataclass(frozen=True)
class Score:
    """A metric value with its interval (lo, hi) at level LEVEL, from n samples."""

    value: float
    lo: float
    hi: float
    n: int

    def columns(self, name: str) -> dict:
        """{name: value, name_lo: lo, name_hi: hi}, as tables and JSON show them."""
        return {name: self.value, f"{name}_lo": self.lo, f"{name}_hi": self.hi}

    def to_dict(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}


def no_interval(value: float, n: int) -> Score:
    return Score(float(value), float("nan"), float("nan"), int(n))


def beats(a: Score, b: Score) -> bool:
    """a's interval lies entirely below (better than) b's."""
    return bool(a.hi < b.lo)


@dataclass(frozen=True)
class Bootstrapped:
    """A score and the metric on each resample; sets resampled alike (same seed and sizes) pair up."""

    score: Score
    replicates: np.ndarray  # (B,)
    key: tuple  # (metric, seed, n, reference size, resamples): equal keys mean equal resample indices
    scale: float = 1.0  # spread scale of an m-out-of-n bootstrap, sqrt(m / n)


def interval(value: float, replicates: np.ndarray, level: float = LEVEL, scale: float = 1.0) -> tuple[float, float]:
    """The percentile interval of `replicates`, re-centred on `value` and its width scaled by `scale`."""
    reps = np.asarray(replicates, np.float64)
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2 or not np.isfinite(value):
        return float("nan"), float("nan")
    centre = reps.mean()
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(value + (lo - centre) * scale), float(value + (hi - centre) * scale)


def _indices(seed: int, n: int, m: int, resamples: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, m))


def fid_bootstrap(features: np.ndarray, reference: GaussianStats, *, resamples: int = 100, seed: int = 0,
                  level: float = LEVEL) -> Bootstrapped:
    """FID of (N, D) features against `reference`, with a bootstrap over the feature rows."""
    f = np.asarray(features, np.float64)
    stats = gaussian_stats(f)
    root = _psd_sqrt(reference.sigma)
    tr_ref = float(np.trace(reference.sigma))

    def fid_of(mu: np.ndarray, sigma: np.ndarray) -> float:
        # the Frechet distance with the reference's square root computed once (fid.py computes the
        # sample side's; the two agree to round-off)
        diff = mu - reference.mu
        vals = np.linalg.eigvalsh(root @ sigma @ root)
        return max(float(diff @ diff + np.trace(sigma) + tr_ref - 2 * np.sqrt(np.clip(vals, 0, None)).sum()), 0.0)

    value = fid(stats, reference)  # the estimate exactly as every other FID in ddls
    n = len(f)
    reps = np.empty(resamples)
    for b, idx in enumerate(_indices(seed, n, n, resamples)):
        g = f[idx]
        reps[b] = fid_of(g.mean(0), np.cov(g, rowvar=False).reshape(f.shape[1], f.shape[1]))
    lo, hi = interval(value, reps, level)
    return Bootstrapped(Score(value, lo, hi, n), reps, ("fid", seed, n, reference.n, resamples))


def emd_bootstrap(samples: np.ndarray, reference: np.ndarray, *, resamples: int = 100, seed: int = 0,
                  level: float = LEVEL) -> Bootstrapped:
    """Exact EMD between `samples` (N, d) and `reference` (M, d) points, with a bootstrap over both."""
    x, r = np.asarray(samples, np.float64), np.asarray(reference, np.float64)
    x, r = x.reshape(len(x), -1), r.reshape(len(r), -1)
    value = emd(x, r)
    n, m = len(x), len(r)
    mx, mr = min(n, EMD_SUBSET), min(m, EMD_SUBSET)
    ix = _indices(seed, n, mx, resamples)
    ir = _indices(seed + 1, m, mr, resamples)
    reps = np.array([emd(x[i], r[j]) for i, j in zip(ix, ir)])
    scale = float(np.sqrt(mx / n))
    lo, hi = interval(value, reps, level, scale)
    return Bootstrapped(Score(value, lo, hi, n), reps, ("emd", seed, n, m, resamples), scale)


def difference(a: Bootstrapped, b: Bootstrapped, level: float = LEVEL) -> Score:
    """a - b with its paired bootstrap interval (a, b resampled with the same indices)."""
    if a.key != b.key:
        raise DDLSError(f"a paired difference needs both scores resampled alike (same seed and sizes), "
                        f"got {a.key} and {b.key}")
    value = a.score.value - b.score.value
    lo, hi = interval(value, a.replicates - b.replicates, level, a.scale)
    return Score(value, lo, hi, a.score.n)


def better(a: Bootstrapped, b: Bootstrapped, level: float = LEVEL) -> bool:
    """a is lower than b beyond noise: the paired interval of a - b lies below 0."""
    return bool(difference(a, b, level).hi < 0)
