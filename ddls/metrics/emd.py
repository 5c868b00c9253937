"""Exact EMD (1-Wasserstein distance) between two point sets: the distance 2-D metrics and their
intervals (ddls.metrics.points2d, ddls.metrics.intervals) are built on."""
from __future__ import annotations

import numpy as np


def emd(a: np.ndarray, b: np.ndarray) -> float:
    """Exact 1-Wasserstein distance between two point sets of one dimension (Euclidean cost),
    each point weighing 1/size of its set."""
    import ot

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"EMD needs two (N, d) sets of one d, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    cost = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2([], [], cost, numItermax=max(100000, 50 * len(a) ** 2)))
