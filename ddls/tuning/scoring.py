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
from ..io.schema import SAMPLE_KINDS
from ..metrics.intervals import Bootstrapped, Score, emd_bootstrap, fid_bootstrap

MIN_POINTS = 20  # fewest real points per half of a user's file
# FID's covariance needs more samples than features before it ranks candidates: on 128 domain
# features the best of 8-21 candidates survived a halving round 53-75% of the time on 32-96
# samples, 75-83% on 128 and 83-95% on 192-256 (docs/results.md, "How small a round FID can rank")
FID_RANK_PER_FEATURE = 1.5


# what a search's best finalist is, by the paired interval of its score minus the generator's (lower is better)
CHOSEN = "chosen"
WITHIN_NOISE = "best, within noise of the generator"
WORSE = "best, worse than the generator"


def finalist_status(vs_generator: Score | None) -> str:
    """chosen when the whole interval lies below 0, worse when it lies above, else within noise."""
    if vs_generator is not None and vs_generator.hi < 0:
        return CHOSEN
    if vs_generator is not None and vs_generator.lo > 0:
        return WORSE
    return WITHIN_NOISE


@dataclass
class Scorer:
    metric: str  # "emd" or "fid"
    source: str  # what the reference is, for the record
    prepare: Callable[[int, int], Callable[[np.ndarray], Bootstrapped]]  # (n, seed) -> score function
    seconds: float = 0.0  # time spent scoring
    rank_n: int = 0  # fewest samples per candidate at which the metric ranks candidates well (0: no floor known)
    # (samples, seed) -> precision, recall, density, coverage with intervals, for the report; None: not shown
    prdc: Callable[[np.ndarray, int], dict] | None = None

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

    def prdc(x: np.ndarray, seed: int) -> dict:  # against the points the EMD of that stage used
        from ..metrics.prdc import prdc_columns

        x = np.asarray(x).reshape(len(x), -1)
        return prdc_columns(draw(len(x), derived_seed(seed, 1)).reshape(len(x), -1), x, resamples=resamples, seed=seed)

    return Scorer("emd", source, prepare, prdc=prdc)


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
    if points.dtype.kind not in SAMPLE_KINDS:  # complex would lose its imaginary part, bool and text mean nothing
        raise DDLSError(f"{path} holds {points.dtype} values; the real points must be real numbers (float or int)")
    if not np.isfinite(points).all():
        raise DDLSError(f"{path} holds non-numbers or NaN/inf; the real points must be finite")
    return points.astype(np.float64)


def fid_scorer(extractor, reference, source: str, resamples: int, real: np.ndarray | None = None) -> Scorer:
    """FID in the extractor's features against fixed reference statistics; with `real` (features of real
    images), precision, recall, density and coverage for the report too."""
    from ..metrics.fid_stats import finite_images

    last: dict = {}

    def features(x: np.ndarray) -> np.ndarray:  # the report scores one set twice (FID, then precision): once
        if last.get("x") is not x:
            last.clear()
            last.update(x=x, features=extractor(finite_images(x)))
        return last["features"]

    def prepare(n: int, seed: int):
        return lambda x: fid_bootstrap(features(x), reference, resamples=resamples, seed=seed)

    def prdc(x: np.ndarray, seed: int) -> dict:
        from ..metrics.evaluate import fixed_subset
        from ..metrics.prdc import prdc_columns

        return prdc_columns(real[fixed_subset(len(real), len(x))], features(x), resamples=resamples, seed=seed)

    return Scorer("fid", source, prepare, rank_n=math.ceil(FID_RANK_PER_FEATURE * extractor.dim),
                  prdc=None if real is None else prdc)


def scorers_for(model, energy, *, data: str | None = None, stats: str | None = None, features: str = "domain",
                ref_n: int | None = None, classifier: str | None = None, resamples: int = 100, seed: int = 0,
                note: Callable[[str], None] = lambda s: None):
    """(validation scorer, report scorer, draw_real, what the data is) for a 2-D or an image checkpoint.

    Images: FID on the train split (validation) and the test split (report) of `data` (default: the data
    set the checkpoint names), their features and statistics read from the user cache after the first
    time. 2-D: EMD against halves of a .npy of the user's points (`data`), else fresh draws of the
    checkpoint's data set."""
    from .._torch import derived_seed
    from ..data.real import real_source

    if len(energy.sample_shape) == 3:  # (C, H, W)
        from ..metrics.fid import gaussian_stats
        from ..metrics.fid_stats import dataset_features, scoring_reference

        name = data or model.data
        if name is None:
            raise DDLSError("the report needs the data set's test split, and the checkpoint names no data set; "
                            "pass --data (e.g. fashion-mnist)")
        extractor, train, _ = scoring_reference(features, energy.sample_shape, energy.device, stats=stats, data=name,
                                                n=ref_n, classifier=classifier, note=note, progress=False)
        note(f"{extractor.name} features of the {name} test split (the report's reference; kept in the user cache)")
        test_features = dataset_features(name, "test", extractor, ref_n)  # kept: the report's precision and recall
        test = gaussian_stats(test_features)
        return (fid_scorer(extractor, train, f"{name} train split", resamples),
                fid_scorer(extractor, test, f"{name} test split", resamples, real=test_features),
                real_source(model, energy.sample_shape, data=name), name)
    if data is not None:
        points = load_points(data, energy.sample_shape)
        val, rep = split_points(points, derived_seed(seed, 7_000_103))

        def draw_real(n, gen):
            import torch

            idx = torch.randint(len(val), (n,), generator=gen)
            return torch.as_tensor(val, dtype=torch.float32)[idx]

        return (points_scorer(half_draw(val), f"{data}: validation half ({len(val)})", resamples),
                points_scorer(half_draw(rep), f"{data}: report half ({len(rep)})", resamples),
                draw_real, str(data))
    if model.data is None:
        raise DDLSError("the checkpoint names no data to score against; pass --data points.npy (your real points)")
    from ..data.toy2d import get_dataset

    draw = dataset_draw(get_dataset(model.data))
    return (points_scorer(draw, f"fresh {model.data} draws (validation seeds)", resamples),
            points_scorer(draw, f"fresh {model.data} draws (report seed)", resamples),
            real_source(model), model.data)
