"""Is reduced precision safe for this model? Sample the same chains in float32 and in bf16
(or fp16) networks, score both, and pass when the scores agree within their noise.

Same config, same seed: both runs start from the same latents and draw the same noise, so
the only difference is the networks' precision. Each sample set is scored against a
reference (domain FID for images, EMD for 2-D points), with a 95% bootstrap interval from
resampling its samples; the check passes when the two intervals overlap. `--fast auto`
takes a reduced-precision path for a model only when its check passed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

from ..errors import DDLSError, NonFiniteEnergy
from .driver import RunConfig, sample
from .energy import LatentEnergy
from .fastpath import FastPath

BOOTSTRAP_ROUNDS = 50
CHECK_N = 500  # chains of the check auto runs before a reduced-precision path may be probed (EMD is cubic in it)
CHECK_STEPS = 100  # at most this many of the run's steps
REFERENCE_IMAGES = 10000  # training images behind the domain-FID reference of the check


@dataclass(frozen=True)
class Scorer:
    """metric(rows) with rows = features(samples): bootstrap resamples the rows."""

    metric: str
    features: Callable[[np.ndarray], np.ndarray]
    score: Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Score:
    value: float
    low: float  # 95% bootstrap interval
    high: float


def bootstrap(scorer: Scorer, rows: np.ndarray, *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> Score:
    rng = np.random.default_rng(seed)
    draws = [scorer.score(rows[rng.integers(0, len(rows), len(rows))]) for _ in range(rounds)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return Score(float(scorer.score(rows)), float(low), float(high))


@dataclass(frozen=True)
class PrecisionCheck:
    precision: str
    metric: str
    passed: bool
    fp32: Score | None
    reduced: Score | None
    n: int
    steps: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_precision(energy: LatentEnergy, precision: str, config: RunConfig, scorer: Scorer, *,
                    rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> PrecisionCheck:
    """Sample `config` in float32 and with `precision` ('bf16', 'fp16') networks; compare the scores."""
    plain = sample(energy, config).samples.numpy()
    fp32 = bootstrap(scorer, scorer.features(plain), rounds=rounds, seed=seed)
    try:
        low = sample(energy, config, fast=FastPath(autocast=precision)).samples.numpy()
    except NonFiniteEnergy as exc:
        return PrecisionCheck(precision, scorer.metric, False, fp32, None, config.n, config.steps,
                              f"chains went non-finite: {exc}")
    if not np.isfinite(low).all():
        return PrecisionCheck(precision, scorer.metric, False, fp32, None, config.n, config.steps,
                              "samples are not finite")
    reduced = bootstrap(scorer, scorer.features(low), rounds=rounds, seed=seed)
    overlap = reduced.low <= fp32.high and fp32.low <= reduced.high
    return PrecisionCheck(precision, scorer.metric, overlap, fp32, reduced, config.n, config.steps)


def emd_scorer(reference: np.ndarray) -> Scorer:
    """EMD of 2-D samples to `reference` (as many points as the samples, or more: the first ones are used)."""
    from ..metrics.points2d import emd

    ref = np.asarray(reference, np.float64)
    return Scorer("emd", lambda x: np.asarray(x, np.float64).reshape(len(x), -1),
                  lambda rows: emd(rows, ref[:len(rows)]))


def fid_scorer(extractor, reference) -> Scorer:
    """FID in `extractor`'s feature space against reference GaussianStats."""
    from ..metrics.fid import fid, gaussian_stats

    return Scorer(f"{extractor.name} fid", lambda x: extractor(x), lambda rows: fid(gaussian_stats(rows), reference))


def default_scorer(model, energy: LatentEnergy, n: int) -> Scorer | None:
    """Domain FID for Fashion-MNIST-size images, EMD for the 2-D data sets; None when there is no reference."""
    data = getattr(model, "data", None)
    if energy.sample_shape == (2,):
        from ..data.toy2d import DATASETS
        from ..metrics.points2d import reference_samples

        return emd_scorer(reference_samples(DATASETS[data], n)) if data in DATASETS else None
    if len(energy.sample_shape) != 3 or not data:
        return None
    from ..metrics.features import domain_features
    from ..metrics.fid_stats import dataset_images, image_stats

    try:
        extractor = domain_features(energy.device)
        extractor.check_shape(energy.sample_shape)
        reference = image_stats(dataset_images(data)[:REFERENCE_IMAGES], extractor)
    except (DDLSError, OSError):
        return None
    return fid_scorer(extractor, reference)


def precision_gate(model, energy: LatentEnergy, config: RunConfig):
    """(precision) -> (passed, verdict): the check `--fast auto` runs, on at most CHECK_N chains and CHECK_STEPS steps."""
    n = min(config.n, CHECK_N)
    check = replace(config, n=n, chunk_size=min(config.chunk_size, n), steps=min(config.steps, CHECK_STEPS),
                    record_every=0)
    scorer: list = []

    def gate(precision: str) -> tuple[bool, dict]:
        if not scorer:
            scorer.append(default_scorer(model, energy, n))
        if scorer[0] is None:
            return False, {"precision": precision, "passed": False, "note": "no reference to score this model against"}
        verdict = check_precision(energy, precision, check, scorer[0])
        return verdict.passed, verdict.to_dict()
    return gate
