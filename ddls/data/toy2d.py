"""Two-dimensional targets: the 25-Gaussian grid, the 8-Gaussian ring and the Swiss roll."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..errors import DDLSError


@dataclass(frozen=True)
class Toy2D:
    name: str
    draw: Callable[[int, torch.Generator], Tensor]
    means: Tensor | None = None  # (K, 2) for mixtures
    std: float | None = None

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


def get_dataset(name: str) -> Toy2D:
    if name not in DATASETS:
        raise DDLSError(f"unknown 2-D data {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]
