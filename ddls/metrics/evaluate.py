"""Scores of samples, as `ddls eval`, `compare` and `sweep` show them: EMD, modes and high-quality %
for 2-D samples, FID (and the Inception Score) for images, and for both precision, recall, density
and coverage (ddls.metrics.prdc) against real points in the same space as the first metric."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import DDLSError


def evaluate_points(path: str, x: np.ndarray, data: str | None, *, resamples: int = 0) -> dict:
    from ..data.toy2d import get_dataset
    from .points2d import evaluate

    if data is None:
        raise DDLSError(f"{path} does not record its data; give it: --data gmm25, ring8, swissroll or a .npy of "
                        f"your own real points (N, 2)")
    dataset = get_dataset(data)
    if x.ndim != 2:
        raise DDLSError(f"{path}: samples have shape {x.shape}; point metrics need (N, d)")
    dataset.check_shape(x.shape[1:], what=str(path))
    bad = int((~np.isfinite(x)).any(axis=1).sum())
    if bad:
        raise DDLSError(f"{path}: {bad} of {len(x)} samples are NaN or inf; sample again with a smaller eps")
    return {"data": data, "n": int(len(x)), **points_columns(x, dataset, resamples=resamples)}


def evaluate_images(path: str, x: np.ndarray, data: str | None, *, stats: str | None, features: str,
                    inception_score: bool, ref_n: int | None, classifier: str | None, device,
                    resamples: int = 0, note: Callable[[str], None] = lambda s: None,
                    explain: int | None = None) -> dict:
    """explain: also split FID along that many leading data directions (ddls.metrics.explain), under
    the key 'explain'."""
    from .features import inception_probs, inception_score as score_is, make_features
    from .fid import gaussian_stats
    from .fid_stats import reference_stats

    if not np.issubdtype(x.dtype, np.number):
        raise DDLSError(f"{path}: samples have dtype {x.dtype}, expected numbers")
    if inception_score:
        from .inception_weights import require_classifier

        require_classifier()  # before any FID work
    extractor = make_features(features, device, classifier=classifier)
    ref, ref_meta = reference_stats(extractor, stats=stats, data=data, n=ref_n, note=note, progress=True)
    real = prdc_reference(extractor, len(x), ref_meta, data, ref_n=None if stats else ref_n, note=note)
    columns, feats = image_columns(x, ref, extractor, real, resamples=resamples)
    metrics = {"samples": str(path), "n": int(len(x)), "features": extractor.name,
               "reference": ref_meta.get("stats") or ref_meta.get("data"), "reference_n": ref.n, **columns}
    if real is not None:
        from .prdc import K

        metrics.update(prdc_k=K, prdc_reference_n=int(len(real)))
    if explain:
        from .explain import split_fid

        metrics["explain"] = split_fid(gaussian_stats(feats), ref, explain).to_dict()
    if inception_score:
        metrics["inception_score"], metrics["inception_score_std"] = score_is(inception_probs(x, device))
    return metrics


PRDC_SEED = 1234  # one fixed subset of real images, so every row of a table is compared to the same points


def points_columns(x: np.ndarray, dataset, *, resamples: int = 0, seed: int = 0) -> dict:
    """EMD, modes, high-quality % (ddls.metrics.points2d) and precision, recall, density, coverage of
    points against the same real points as the EMD, with intervals when resamples > 0."""
    from .points2d import evaluate, reference_samples
    from .prdc import prdc_columns

    x = np.asarray(x).reshape(len(x), -1)
    real = reference_samples(dataset, len(x)).reshape(len(x), -1)
    return {**evaluate(x, dataset, resamples=resamples, seed=seed),
            **prdc_columns(real, x, resamples=resamples, seed=seed)}


def real_features(extractor, data: str, n: int, *, split: str = "train", ref_n: int | None = None) -> np.ndarray:
    """Features of n real images of `data`'s `split` (of its first ref_n): one fixed random subset."""
    from .fid_stats import dataset_images

    images = dataset_images(data, split)[:ref_n]
    return extractor(images[fixed_subset(len(images), n)])


def fixed_subset(count: int, n: int) -> np.ndarray:
    """Sorted indices of min(n, count) of `count` items, the same for the same arguments."""
    return np.sort(np.random.default_rng(PRDC_SEED).choice(count, min(n, count), replace=False))


def prdc_reference(extractor, n: int, ref_meta: dict, data: str | None, *, ref_n: int | None = None,
                   note: Callable[[str], None] = lambda s: None) -> np.ndarray | None:
    """Real features for precision and recall of n samples: from the data set and split behind the FID
    reference (its statistics file's, else `data`'s train split); None, with a note, when no images are known."""
    source, split = ref_meta.get("data") or data, ref_meta.get("split", "train")
    if source is None:
        note("precision, recall, density and coverage need real images; give --data (e.g. fashion-mnist)")
        return None
    try:
        return real_features(extractor, source, n, split=split, ref_n=ref_n)
    except DDLSError as exc:
        note(f"no precision, recall, density or coverage: {exc}")
        return None


def image_columns(x, reference, extractor, real: np.ndarray | None, *, resamples: int = 0,
                  seed: int = 0) -> tuple[dict, np.ndarray]:
    """({fid, precision, recall, density, coverage}, with each one's _lo and _hi when resamples > 0; the
    samples' features): the features computed once for all five. `real`: real features for precision
    and recall (None: those four are None)."""
    from .fid import fid, gaussian_stats
    from .fid_stats import finite_images
    from .intervals import fid_bootstrap
    from .prdc import METRICS, prdc_columns

    feats = extractor(finite_images(x))
    if resamples:
        columns = fid_bootstrap(feats, reference, resamples=resamples, seed=seed).score.columns("fid")
    else:
        columns = {"fid": fid(gaussian_stats(feats), reference)}
    if real is None:
        return {**columns, **{name: None for name in METRICS}}, feats
    return {**columns, **prdc_columns(real, feats, resamples=resamples, seed=seed)}, feats
