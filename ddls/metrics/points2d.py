"""Quality of 2-D samples: exact EMD (W1), modes covered and high-quality share (DRS paper)."""
from __future__ import annotations

import numpy as np
import torch

from .._torch import make_generator
from ..data.toy2d import Toy2D
from .emd import emd

REFERENCE_SEED = 1234  # one fixed reference set, so every row of a sweep is compared to the same points


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


def evaluate(samples: np.ndarray, dataset: Toy2D, *, resamples: int = 0, seed: int = 0
             ) -> dict[str, float | int | None]:
    """EMD against fresh data of the same size, plus mode statistics for mixtures.

    resamples > 0 adds emd_lo, emd_hi: a bootstrap interval (ddls.metrics.intervals), seeded by `seed`.
    """
    samples = np.asarray(samples).reshape(len(samples), -1)
    reference = reference_samples(dataset, len(samples))
    if resamples:
        from .intervals import emd_bootstrap

        score = emd_bootstrap(samples, reference, resamples=resamples, seed=seed).score
    else:
        score = None
    out: dict[str, float | int | None] = {"emd": score.value if score else emd(samples, reference)}
    if dataset.means is not None:
        modes, hq = mode_stats(samples, dataset.means.numpy(), dataset.std)
        out.update(modes=modes, hq=hq)
    else:
        out.update(modes=None, hq=None)
    if score:
        out.update(emd_lo=score.lo, emd_hi=score.hi)
    return out


def as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
