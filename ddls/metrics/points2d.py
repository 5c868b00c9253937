"""Quality of 2-D samples: exact EMD (W1), modes covered and high-quality share (DRS paper)."""
from __future__ import annotations

import numpy as np
import torch

from .._torch import make_generator
from ..data.toy2d import Toy2D

REFERENCE_SEED = 1234  # one fixed reference set, so every row of a sweep is compared to the same points


def emd(a: np.ndarray, b: np.ndarray) -> float:
    """Exact 1-Wasserstein distance between two equal-size point sets (Euclidean cost)."""
    import ot

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"EMD needs equal-size sets, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    cost = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2([], [], cost, numItermax=max(100000, 50 * len(a) ** 2)))


def mode_stats(samples: np.ndarray, means: np.ndarray, std: float) -> tuple[int, float]:
    """(modes covered, % high quality).

    A sample is high quality when it lies within 4 std of its nearest mode; a mode
    is covered when at least one high-quality sample is nearest to it.
    """
    samples = np.asarray(samples, np.float64)
    dist = np.linalg.norm(samples[:, None, :] - np.asarray(means)[None], axis=2)
    nearest = dist.argmin(1)
    hq = dist[np.arange(len(samples)), nearest] <= 4 * std
    return int(len(np.unique(nearest[hq]))), float(100.0 * hq.mean())


def reference_samples(dataset: Toy2D, n: int) -> np.ndarray:
    return dataset.sample(n, make_generator(REFERENCE_SEED)).numpy()


def evaluate(samples: np.ndarray, dataset: Toy2D) -> dict[str, float | int | None]:
    """EMD against fresh data of the same size, plus mode statistics for mixtures."""
    samples = np.asarray(samples).reshape(len(samples), -1)
    out: dict[str, float | int | None] = {"emd": emd(samples, reference_samples(dataset, len(samples)))}
    if dataset.means is not None:
        modes, hq = mode_stats(samples, dataset.means.numpy(), dataset.std)
        out.update(modes=modes, hq=hq)
    else:
        out.update(modes=None, hq=None)
    return out


def as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
