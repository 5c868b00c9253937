"""The plain convolutional 32x32 pairs of pytorch-gan-collections' `cnn32`.

Layer order (and so state-dict keys) follows that library. CNNGenerator32/CNNDiscriminator32:
G is a Linear to a bottom x bottom x 512 map then `main`; D is `main` then a Linear. Its SNGAN,
WGAN-GP and early bias-free DCGAN variants differ only in spectral norm (folded at load time)
and conv biases. BatchNormGenerator32/BatchNormDiscriminator32 are the library's later DCGAN
(Radford et al.'s layout, with batch norm in D).
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


class BatchNormGenerator32(nn.Module):
    """pytorch-gan-collections' DCGAN generator: z as a 1x1 map, a transposed conv to bottom x bottom x 8w,
    then four 4/2/1 transposed convs (8w -> 4w -> 2w -> w -> 3), batch norm and ReLU between, no biases."""

    def __init__(self, z_dim: int, bottom: int = 2, width: int = 128, channels: int = 3):
        super().__init__()
        self.z_dim = z_dim
        widths = (8 * width, 4 * width, 2 * width, width)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, widths[0], bottom, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z.view(z.shape[0], self.z_dim, 1, 1))


class BatchNormDiscriminator32(nn.Module):
    """pytorch-gan-collections' DCGAN discriminator: four bias-free 5x5 stride-2 convs (w -> 8w), each
    followed by LeakyReLU 0.2 and, from the second on, batch norm (after the activation, as the library
    has it); then a Linear. Sampling runs it in eval mode: the batch norms use their running statistics."""

    def __init__(self, size: int = 32, width: int = 64, channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            layers += [nn.Conv2d(c_in, c_out, 5, 2, 2, bias=False), nn.LeakyReLU(0.2)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            c_in = c_out
        self.main = nn.Sequential(*layers)
        self.linear = nn.Linear((size // 16) ** 2 * 8 * width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(torch.flatten(self.main(x), 1))
