"""Frechet distance between Gaussians fitted to features: the math of FID, no I/O, no networks.

FID(x, y) = |mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr((S_x S_y)^(1/2)).

tr((S_x S_y)^(1/2)) equals the sum of the square roots of the eigenvalues of the symmetric
matrix S_x^(1/2) S_y S_x^(1/2), which symmetric eigensolvers compute stably even when the
covariances are singular (fewer samples than feature dimensions), without complex round-off.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DDLSError


@dataclass(frozen=True)
class GaussianStats:
    """Mean (D,) and covariance (D, D) of features, in float64, and how many samples made them."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])


def gaussian_stats(features: np.ndarray) -> GaussianStats:
    """Mean and unbiased covariance of (N, D) features; N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise DDLSError(f"FID needs at least 2 feature vectors of shape (N, D), got {f.shape}")
    if not np.isfinite(f).all():
        raise DDLSError("features contain NaN or inf; are the images finite?")
    return GaussianStats(f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1]), int(f.shape[0]))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (round-off negatives clipped to 0)."""
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^(1/2)) for covariance matrices."""
    root1 = _psd_sqrt(sigma1)
    vals = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    return float(np.sqrt(np.clip(vals, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise DDLSError(f"statistics do not match: means {mu1.shape} vs {mu2.shape}, covariances "
                        f"{sigma1.shape} vs {sigma2.shape}; were they computed in the same feature space?")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2))
    return max(value, 0.0)  # a distance: tiny negatives are round-off


def fid(a: GaussianStats, b: GaussianStats) -> float:
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
