"""Auto-encoder discriminator of EBGAN and BEGAN: its output is a reconstruction energy.

forward(x) gives one energy per sample (mean squared error for EBGAN, mean absolute
error for BEGAN), low on data; `encode` gives the codes for EBGAN's pulling-away term.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import DDLSError
from .dcgan import _stages


class AutoEncoderDiscriminator(nn.Module):
    def __init__(self, channels: int = 1, size: int = 28, width: int = 32, code_dim: int = 64,
                 reconstruction: str = "mse"):
        super().__init__()
        if reconstruction not in ("mse", "l1"):
            raise DDLSError(f"reconstruction must be 'mse' or 'l1', got {reconstruction!r}")
        self.reconstruction = reconstruction
        stages = _stages(size)
        self.bottom = size >> stages
        enc: list[nn.Module] = []
        c_in, c = channels, width
        for _ in range(stages):
            enc += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in, c = c, c * 2
        self.top = c_in
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(c_in * self.bottom ** 2, code_dim))
        self.expand = nn.Linear(code_dim, c_in * self.bottom ** 2)
        dec: list[nn.Module] = []
        c = c_in
        for _ in range(stages - 1):
            dec += [nn.ReLU(), nn.ConvTranspose2d(c, c // 2, 4, 2, 1)]
            c //= 2
        dec += [nn.ReLU(), nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, code: Tensor) -> Tensor:
        return self.decoder(self.expand(code).view(code.shape[0], self.top, self.bottom, self.bottom))

    def energy(self, x: Tensor, reconstruction: Tensor) -> Tensor:
        diff = (reconstruction - x).flatten(1)
        return diff.pow(2).mean(1) if self.reconstruction == "mse" else diff.abs().mean(1)

    def forward_with_code(self, x: Tensor) -> tuple[Tensor, Tensor]:
        code = self.encode(x)
        return self.energy(x, self.decode(code)), code

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_code(x)[0]
