"""How `ddls tune` scores samples: one scorer for choosing (validation) and one for the report,
never the same data.

- 2-D: EMD against real points: fresh draws of the checkpoint's data set (validation and
  report draw with different seeds), or a user's own points split into two halves.
- Images: FID against the train split's statistics (validation) and the test split's (report).

A scorer's `stage(n, seed)` fixes the reference for one round, so every candidate of that round
is scored against the same points and resampled with the same indices (paired differences).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import DDLSError
from ..metrics.intervals import Bootstrapped, emd_bootstrap, fid_bootstrap

MIN_POINTS = 20  # fewest real points per half of a user's file
# FID's covariance needs more samples than features before it ranks candidates: on 128 domain
# features the best of 8-21 candidates survived a halving round 53-75% of the time on 32-96
# samples, 75-83% on 128 and 83-95% on 192-256 (docs/results.md, "How small a round FID can rank")
FID_RANK_PER_FEATURE = 1.5


@dataclass
class Scorer:
    metric: str  # "emd" or "fid"
    source: str  # what the reference is, for the record
    prepare: Callable[[int, int], Callable[[np.ndarray], Bootstrapped]]  # (n, seed) -> score function
    seconds: float = 0.0  # time spent scoring
    rank_n: int = 0  # fewest samples per candidate at which the metric ranks candidates well (0: no floor known)

    def stage(self, n: int, seed: int) -> Callable[[np.ndarray], Bootstrapped]:
        score = self.prepare(n, seed)

        def timed(x: np.ndarray) -> Bootstrapped:
            t0 = time.perf_counter()
            try:
                return score(x)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def points_scorer(draw: Callable[[int, int], np.ndarray], source: str, resamples: int) -> Scorer:
    """EMD against `draw(n, seed)` real points."""
    from .._torch import derived_seed

    def prepare(n: int, seed: int):
        reference = draw(n, derived_seed(seed, 1))  # a stream of its own, apart from the latents'

        return lambda x: emd_bootstrap(x, reference, resamples=resamples, seed=seed)

    return Scorer("emd", source, prepare)


def dataset_draw(dataset) -> Callable[[int, int], np.ndarray]:
    from .._torch import make_generator

    return lambda n, seed: dataset.sample(n, make_generator(seed)).numpy()


def split_points(points: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation half, report half) of a user's points, shuffled by `seed`."""
    order = np.random.default_rng(seed).permutation(len(points))
    half = len(points) // 2
    return points[order[:half]], points[order[half:]]


def half_draw(points: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """n points of one half (all of it when it has fewer), chosen by the seed."""
    def draw(n: int, seed: int) -> np.ndarray:
        if n >= len(points):
            return points
        return points[np.random.default_rng(seed).choice(len(points), n, replace=False)]

    return draw


def load_points(path: str, sample_shape: tuple[int, ...]) -> np.ndarray:
    """A user's real points from a .npy file: (N, d) finite numbers, d the samples' dimension."""
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DDLSError(f"{path} is not a readable .npy array ({type(exc).__name__}); save the points with "
                        f"numpy.save") from exc
    dim = int(np.prod(sample_shape))
    if points.ndim != 2 or points.shape[1] != dim or len(points) < 2 * MIN_POINTS:
        raise DDLSError(f"{path} holds an array of shape {points.shape}; the real points must be (N, {dim}) with "
                        f"N >= {2 * MIN_POINTS} (half to choose, half to report)")
    if not np.issubdtype(points.dtype, np.number) or not np.isfinite(points).all():
        raise DDLSError(f"{path} holds non-numbers or NaN/inf; the real points must be finite")
    return points.astype(np.float64)


def fid_scorer(extractor, reference, source: str, resamples: int) -> Scorer:
    """FID in the extractor's features against fixed reference statistics."""
    from ..metrics.fid_stats import finite_images

    def prepare(n: int, seed: int):
        return lambda x: fid_bootstrap(extractor(finite_images(x)), reference, resamples=resamples, seed=seed)

    return Scorer("fid", source, prepare, rank_n=math.ceil(FID_RANK_PER_FEATURE * extractor.dim))
