"""The plain convolutional (DCGAN-style) 32x32 pair of pytorch-gan-collections' `cnn32`.

Layer order (and so state-dict keys) follows that library: G is a Linear to a
bottom x bottom x 512 map then `main`; D is `main` then a Linear. SNGAN, WGAN-GP and
DCGAN variants differ only in spectral norm (folded at load time) and conv biases.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class CNNGenerator32(nn.Module):
    def __init__(self, z_dim: int, bottom: int = 4, bias: bool = True):
        super().__init__()
        self.z_dim, self.bottom = z_dim, bottom
        self.linear = nn.Linear(z_dim, bottom * bottom * 512)
        layers: list[nn.Module] = [nn.BatchNorm2d(512), nn.ReLU()]
        for c_in, c_out in ((512, 256), (256, 128), (128, 64)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.Conv2d(64, 3, 3, 1, 1, bias=bias), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(self.linear(z).view(z.shape[0], 512, self.bottom, self.bottom))


class CNNDiscriminator32(nn.Module):
    # (in, out, kernel): 3x3 stride 1 and 4x4 stride 2 convolutions, alternating.
    CONVS = ((3, 64, 3), (64, 128, 4), (128, 128, 3), (128, 256, 4), (256, 256, 3), (256, 512, 4), (512, 512, 3))

    def __init__(self, size: int = 32, bias: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out, k in self.CONVS:
            layers += [nn.Conv2d(c_in, c_out, k, 1 if k == 3 else 2, 1, bias=bias), nn.LeakyReLU(0.1)]
        self.main = nn.Sequential(*layers)
        self.linear = nn.Linear((size // 8) ** 2 * 512, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(torch.flatten(self.main(x), 1))
