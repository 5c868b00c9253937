"""Two-dimensional targets: the 25-Gaussian grid, the 8-Gaussian ring and the Swiss roll, and the other
point sources a data name may give (a user's .npy of points, ddls.data.points)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..errors import DDLSError
from .points import is_points_file, load_points


@dataclass(frozen=True)
class Toy2D:
    name: str
    draw: Callable[[int, torch.Generator], Tensor]
    means: Tensor | None = None  # (K, 2) for mixtures
    std: float | None = None
    dim: int = 2  # each point's size

    def check_shape(self, sample_shape: tuple[int, ...], what: str = "the generator") -> None:
        """One line when samples of `sample_shape` cannot be compared with these points."""
        if tuple(sample_shape) != (self.dim,):
            raise DDLSError(f"{self.name} holds points of {self.dim} numbers, but the samples of {what} have shape "
                            f"{tuple(sample_shape)}; give real points of shape (N, {math.prod(sample_shape)})")

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.draw(n, generator)


def _mixture(means: Tensor, std: float) -> Callable[[int, torch.Generator], Tensor]:
    def draw(n: int, generator: torch.Generator) -> Tensor:
        idx = torch.randint(len(means), (n,), generator=generator, device=generator.device)
        noise = torch.randn(n, 2, generator=generator, device=generator.device)
        return means.to(generator.device)[idx] + std * noise

    return draw


def _swissroll(n: int, generator: torch.Generator) -> Tensor:
    # The 2-D Swiss roll of the WGAN-GP toy experiments: t in [1.5pi, 4.5pi], noise 0.25, scaled by 1/7.5.
    dev = generator.device
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator, device=dev))
    pts = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)
    return (pts + 0.25 * torch.randn(n, 2, generator=generator, device=dev)) / 7.5


GRID25 = torch.tensor([[x, y] for x in (-4.0, -2.0, 0.0, 2.0, 4.0) for y in (-4.0, -2.0, 0.0, 2.0, 4.0)])
RING8 = torch.tensor([[2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)] for k in range(8)])

DATASETS: dict[str, Toy2D] = {
    "gmm25": Toy2D("gmm25", _mixture(GRID25, 0.05), GRID25, 0.05),
    "ring8": Toy2D("ring8", _mixture(RING8, 0.02), RING8, 0.02),
    "swissroll": Toy2D("swissroll", _swissroll),
}

# Point sources beyond the named targets, each (recognises(name), load(name) -> Toy2D), tried in order
def points_dataset(path: str):
    """The points of `path` as a data source: `sample(n, generator)` picks n of them (without replacement while
    there are enough, so a reference set of N points is the file itself), chosen by the generator."""
    points = torch.from_numpy(load_points(path)).float()

    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        if n <= len(points):
            idx = torch.randperm(len(points), generator=generator, device=generator.device)[:n]
        else:
            idx = torch.randint(len(points), (n,), generator=generator, device=generator.device)
        return points.to(generator.device)[idx]

    return Toy2D(str(path), draw, dim=points.shape[1])


RESOLVERS: list[tuple[Callable[[str], bool], Callable[[str], Toy2D]]] = [(is_points_file, points_dataset)]


def _resolver(name: str) -> Callable[[str], Toy2D] | None:
    return next((load for recognises, load in RESOLVERS if recognises(name)), None)


def is_point_data(name: str | None) -> bool:
    """Whether `name` is a named 2-D target or a point source that a resolver recognises."""
    return name is not None and (name in DATASETS or _resolver(name) is not None)


def dataset_for(data: str | None, named: str | None, sample_shape, ckpt) -> Toy2D:
    """The 2-D data to score `ckpt`'s samples against: `data` if given, else the data the checkpoint names
    (`named`), checked against the samples' shape."""
    name = data or named
    if name is None:
        raise DDLSError(f"{ckpt} does not say which data it was trained on; pass --data points.npy (your own real "
                        f"points, one per row) or a 2-D data name")
    dataset = get_dataset(name)
    dataset.check_shape(sample_shape)
    return dataset


def get_dataset(name: str) -> Toy2D:
    if name in DATASETS:
        return DATASETS[name]
    load = _resolver(name)
    if load is None:
        raise DDLSError(f"unknown 2-D data {str(name)[:200]!r}; choose one of {', '.join(DATASETS)}, or give a .npy "
                        f"file of your own real points (N, 2)")
    return load(name)
