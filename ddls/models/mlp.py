"""Fully connected generator and discriminator for 2-D data."""
from __future__ import annotations

from torch import Tensor, nn

from .spectral_norm import apply_spectral_norm


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

    def __init__(self, in_dim: int = 2, hidden: int = 256, depth: int = 3, spectral_norm: bool = False):
        super().__init__()
        self.net = _mlp([in_dim] + [hidden] * depth + [1])
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class MLPAutoEncoder(nn.Module):
    """Auto-encoder discriminator for vectors: one reconstruction energy per sample (EBGAN/BEGAN)."""

    def __init__(self, in_dim: int = 2, hidden: int = 256, depth: int = 3, code_dim: int = 8,
                 reconstruction: str = "mse"):
        super().__init__()
        self.reconstruction = reconstruction
        self.encoder = _mlp([in_dim] + [hidden] * max(depth - 1, 1) + [code_dim])
        self.decoder = _mlp([code_dim] + [hidden] * max(depth - 1, 1) + [in_dim])

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def forward_with_code(self, x: Tensor) -> tuple[Tensor, Tensor]:
        code = self.encoder(x)
        diff = self.decoder(code) - x
        return (diff.pow(2).mean(1) if self.reconstruction == "mse" else diff.abs().mean(1)), code

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_code(x)[0]
