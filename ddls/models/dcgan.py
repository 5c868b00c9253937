"""DCGAN-style convolutional pair for small images (28x28 grayscale, 32x32 colour, ...).

Widths are configurable so the same code gives a tiny test model and a shipped one.
A side that is a multiple of 8 is reached with three upsamplings (4 -> 8 -> 16 -> 32),
otherwise with two (7 -> 14 -> 28).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import DDLSError
from .spectral_norm import apply_spectral_norm


def _stages(size: int) -> int:
    stages = 3 if size % 8 == 0 else 2
    if size % (1 << stages) or size < 4:
        raise DDLSError(f"image size {size} is not supported by the DCGAN models; use a multiple of 4 (28, 32, 64)")
    return stages


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 64, channels: int = 1, size: int = 28, width: int = 32):
        super().__init__()
        self.z_dim, self.size = z_dim, size
        stages = _stages(size)
        self.bottom = size >> stages
        self.top = width * (1 << (stages - 1))
        self.linear = nn.Sequential(nn.Linear(z_dim, self.bottom * self.bottom * self.top),
                                    nn.BatchNorm1d(self.bottom * self.bottom * self.top), nn.ReLU())
        layers: list[nn.Module] = []
        c = self.top
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(self.linear(z).view(z.shape[0], self.top, self.bottom, self.bottom))


class DCGANDiscriminator(nn.Module):
    """Strided convolutions with LeakyReLU 0.2 and no batch norm (a gradient penalty needs per-sample
    outputs), then a Linear to one raw output per sample."""

    def __init__(self, channels: int = 1, size: int = 28, width: int = 32, spectral_norm: bool = False):
        super().__init__()
        stages = _stages(size)
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for _ in range(stages):
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in, c = c, c * 2
        self.main = nn.Sequential(*layers)
        self.linear = nn.Linear(c_in * (size >> stages) ** 2, 1)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(torch.flatten(self.main(x), 1))[:, 0]
