"""Scores of a samples file, as `ddls eval` prints them: EMD, modes and high-quality % for 2-D
samples; FID (and the Inception Score) for images."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import DDLSError


def evaluate_points(path: str, x: np.ndarray, data: str | None, *, resamples: int = 0) -> dict:
    from ..data.toy2d import get_dataset
    from .points2d import evaluate

    if data is None:
        raise DDLSError(f"{path} does not record its data; give it (gmm25, ring8 or swissroll)")
    dataset = get_dataset(data)
    if x.ndim != 2 or x.shape[1] != 2:
        raise DDLSError(f"{path}: samples have shape {x.shape}; 2-D metrics need (N, 2)")
    bad = int((~np.isfinite(x)).any(axis=1).sum())
    if bad:
        raise DDLSError(f"{path}: {bad} of {len(x)} samples are NaN or inf; sample again with a smaller eps")
    return {"data": data, "n": int(len(x)), **evaluate(x, dataset, resamples=resamples)}


def evaluate_images(path: str, x: np.ndarray, data: str | None, *, stats: str | None, features: str,
                    inception_score: bool, ref_n: int | None, classifier: str | None, device,
                    resamples: int = 0, note: Callable[[str], None] = lambda s: None) -> dict:
    from .features import inception_probs, inception_score as score_is, make_features
    from .fid_stats import fid_columns, reference_stats

    if not np.issubdtype(x.dtype, np.number):
        raise DDLSError(f"{path}: samples have dtype {x.dtype}, expected numbers")
    if inception_score:
        from .inception_weights import require_classifier

        require_classifier()  # before any FID work
    extractor = make_features(features, device, classifier=classifier)
    ref, ref_meta = reference_stats(extractor, stats=stats, data=data, n=ref_n, note=note, progress=True)
    metrics = {"samples": str(path), "n": int(len(x)), "features": extractor.name,
               "reference": ref_meta.get("stats") or ref_meta.get("data"), "reference_n": ref.n,
               **fid_columns(x, ref, extractor, resamples=resamples)}
    if inception_score:
        metrics["inception_score"], metrics["inception_score_std"] = score_is(inception_probs(x, device))
    return metrics
