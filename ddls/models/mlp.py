"""Fully connected generator and discriminator for 2-D data."""
from __future__ import annotations

from torch import Tensor, nn


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int = 2, out_dim: int = 2, hidden: int = 256, depth: int = 3):
        super().__init__()
        self.net = _mlp([z_dim] + [hidden] * depth + [out_dim])

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """Returns one raw output per sample, shape (B,): a logit or a critic value."""

    def __init__(self, in_dim: int = 2, hidden: int = 256, depth: int = 3):
        super().__init__()
        self.net = _mlp([in_dim] + [hidden] * depth + [1])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
