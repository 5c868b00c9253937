"""Reference statistics files (.npz with mu, sigma: the layout pytorch-gan-metrics reads) and FID against them."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import DDLSError
from .features import FeatureExtractor
from .fid import GaussianStats, fid, gaussian_stats
from ..io.outputs import write_npz

IMAGE_DATA = {"fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist"}


def dataset_images(name: str, split: str = "train") -> torch.Tensor:
    """Images of a known image data set as float (N, C, H, W) in [-1, 1]."""
    canonical = IMAGE_DATA.get(str(name).lower())
    if canonical is None:
        raise DDLSError(f"no reference images for data {name!r}; known: fashion-mnist (or give reference "
                        f"statistics made by `ddls stats`)")
    from ..data.images import get_image_data, to_float

    return to_float(get_image_data(canonical, split=split).images)


def stats_meta(extractor: FeatureExtractor, **extra) -> dict:
    return {"features": extractor.name, "dim": extractor.dim, **extractor.info, **extra}


def write_stats(path: str | os.PathLike, stats: GaussianStats, meta: dict) -> Path:
    return write_npz(path, {"mu": stats.mu, "sigma": stats.sigma}, {**meta, "n": stats.n})


def how_to_make(features: str = "domain", data: str = "fashion-mnist") -> str:
    return f"`ddls stats --data {data} --features {features} --out FILE`"


def read_stats(path: str | os.PathLike) -> tuple[GaussianStats, dict]:
    """(stats, meta) from a file written by `ddls stats` (or by pytorch-gan-metrics: mu, sigma only)."""
    path = Path(path)
    if not path.is_file():
        raise DDLSError(f"reference statistics {path} not found; make them with {how_to_make()} "
                        f"(or score with inception features)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "mu" not in npz.files or "sigma" not in npz.files:
                raise DDLSError(f"{path} has no 'mu' and 'sigma'; make reference statistics with {how_to_make()}")
            mu, sigma = npz["mu"].astype(np.float64), npz["sigma"].astype(np.float64)
            meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    except DDLSError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as exc:
        raise DDLSError(f"{path} is not a readable statistics .npz ({type(exc).__name__}); make it again "
                        f"with {how_to_make()}") from exc
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DDLSError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not describe one Gaussian")
    if "features" not in meta:  # a file from pytorch-gan-metrics: 2048-d means Inception pool features
        meta["features"] = "inception" if mu.shape[0] == 2048 else "unknown"
    return GaussianStats(mu, sigma, int(meta.get("n", 0))), meta


def check_same_space(meta: dict, extractor: FeatureExtractor, path: str | os.PathLike) -> None:
    """FID is only meaningful between statistics of one feature network."""
    if meta.get("features") != extractor.name or int(meta.get("dim", extractor.dim)) != extractor.dim:
        raise DDLSError(f"{path} holds {meta.get('features')} statistics ({meta.get('dim')}-d), but the samples "
                        f"are scored with {extractor.name} features; score with {meta.get('features')} features "
                        f"or make matching statistics with {how_to_make(extractor.name)}")
    sha = meta.get("classifier_sha256")
    if sha and extractor.info.get("classifier_sha256") and sha != extractor.info["classifier_sha256"]:
        raise DDLSError(f"{path} was made with another classifier ({meta.get('classifier')}); make the "
                        f"statistics again with {how_to_make()} or give the classifier that made them")


def image_stats(images: torch.Tensor | np.ndarray, extractor: FeatureExtractor, *,
                progress: bool = False) -> GaussianStats:
    return gaussian_stats(extractor(images, progress=progress))


def fid_to(images: torch.Tensor | np.ndarray, reference: GaussianStats, extractor: FeatureExtractor, *,
           progress: bool = False) -> float:
    """FID of `images` (in [-1, 1]) against reference statistics in the extractor's feature space."""
    return fid(image_stats(finite_images(images), extractor, progress=progress), reference)


def finite_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    images = torch.as_tensor(images)
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images.flatten(1))).any(1).sum())
        raise DDLSError(f"{bad} of {len(images)} images are NaN or inf; sample again with a smaller eps")
    return images


def fid_columns(images: torch.Tensor | np.ndarray, reference: GaussianStats, extractor: FeatureExtractor, *,
                resamples: int = 0, seed: int = 0) -> dict:
    """{'fid': ...} of `images`, plus fid_lo and fid_hi (a bootstrap interval, ddls.metrics.intervals)
    when resamples > 0."""
    if not resamples:
        return {"fid": fid_to(images, reference, extractor)}
    from .intervals import fid_bootstrap

    feats = extractor(finite_images(images))
    return fid_bootstrap(feats, reference, resamples=resamples, seed=seed).score.columns("fid")


def reference_stats(extractor: FeatureExtractor, *, stats: str | os.PathLike | None = None, data: str | None = None,
                    n: int | None = None, note: Callable[[str], None] | None = None,
                    progress: bool = False) -> tuple[GaussianStats, dict]:
    """(reference, meta): read from `stats` (checked to be in the extractor's space), or, without it,
    computed from the first `n` training images of `data` (which takes a while)."""
    if stats is not None:
        ref, meta = read_stats(stats)
        check_same_space(meta, extractor, stats)
        return ref, {"stats": str(stats), **meta}
    if data is None:
        raise DDLSError(f"no reference for FID: give reference statistics (make them with "
                        f"{how_to_make(extractor.name)}) or a data set (fashion-mnist)")
    reference = dataset_stats(data, "train", extractor, n, progress=progress, note=note)
    return reference, {"data": data, "split": "train", "n": reference.n}


# a split's features up to this size are kept in the user cache (domain features); larger ones (Inception's
# 2048-d) keep only their statistics
FEATURE_CACHE_BYTES = 256 * 2**20


def _split(data: str, split: str, extractor: FeatureExtractor, n: int | None) -> tuple[torch.Tensor, dict]:
    """The first n images of a split and what keys their cache entries: the images' digest and the network."""
    from ..io.cache import digest_tensors

    images = dataset_images(data, split)[:n]
    return images, {"data": IMAGE_DATA.get(str(data).lower(), data), "split": split, "n": len(images),
                    "images_sha256": digest_tensors(images), "features": extractor.name, "dim": extractor.dim,
                    "network": extractor.info}


def _features(images: torch.Tensor, parts: dict, extractor: FeatureExtractor, progress: bool) -> np.ndarray:
    from ..io.cache import cached

    if len(images) * extractor.dim * 8 > FEATURE_CACHE_BYTES:
        return extractor(images, progress=progress)
    return cached("features", parts, lambda: ({"features": extractor(images, progress=progress)}, {}))[0]["features"]


def dataset_features(data: str, split: str, extractor: FeatureExtractor, n: int | None = None, *,
                     progress: bool = False) -> np.ndarray:
    """Features of the first n images of a data set's split, from the user cache (ddls.io.cache) when the
    same images went through the same network before (domain features; Inception's are recomputed)."""
    images, parts = _split(data, split, extractor, n)
    return _features(images, parts, extractor, progress)


def dataset_stats(data: str, split: str, extractor: FeatureExtractor, n: int | None = None, *,
                  progress: bool = False, note: Callable[[str], None] | None = None) -> GaussianStats:
    """Statistics of the first n images of a data set's split in the extractor's features, computed once
    and then read from the user cache (ddls.io.cache) for the same images and network."""
    from ..io.cache import cached

    images, parts = _split(data, split, extractor, n)

    def compute():
        if note is not None:
            note(f"computing {extractor.name} statistics of {data} ({split} split, {len(images)} images; kept in "
                 f"the user cache for next time)")
        stats = gaussian_stats(_features(images, parts, extractor, progress))
        return {"mu": stats.mu, "sigma": stats.sigma, "n": np.array(stats.n)}, {}

    arrays, _ = cached("stats", parts, compute)
    return GaussianStats(arrays["mu"], arrays["sigma"], int(arrays["n"]))


def scoring_reference(features: str, sample_shape: tuple[int, ...], device, *, stats: str | os.PathLike | None,
                      data: str | None, n: int | None, classifier: str | os.PathLike | None = None,
                      note: Callable[[str], None] | None = None, progress: bool = True
                      ) -> tuple[FeatureExtractor, GaussianStats, dict]:
    """(extractor, reference, its meta) to score samples of `sample_shape` by FID: the feature network,
    refused before any sampling when it cannot take them, and the reference from `stats` or `data`."""
    from .features import make_features

    extractor = make_features(features, device, classifier=classifier)
    extractor.check_shape(sample_shape)
    reference, meta = reference_stats(extractor, stats=stats, data=data, n=n, note=note, progress=progress)
    return extractor, reference, meta
