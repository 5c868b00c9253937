"""The SNGAN ResNet pair for 32x32 images (Miyato et al. 2018), in the variants the libraries ship.

pytorch-gan-collections `res32`, torch-mimicry SNGAN-32 / WGAN-GP-32 and StudioGAN's
`resnet` CIFAR-10 models share this math and differ in names (mapped at load time by
ddls.formats), in the upsampling mode, the final pooling, the batch-norm epsilon, and in
class conditioning (conditional batch norm in G, a projection term in D).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spectral_norm import apply_spectral_norm


class ConditionalNorm(nn.Module):
    """Batch norm whose scale and shift come from the class: bn(x) * (1 + gain[y]) + shift[y]."""

    def __init__(self, channels: int, num_classes: int, eps: float):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * (1 + self.gain(y))[:, :, None, None] + self.shift(y)[:, :, None, None]


class GeneratorBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, upsample: str, eps: float, num_classes: int):
        super().__init__()
        self.upsample = upsample
        self.norm1 = ConditionalNorm(c_in, num_classes, eps) if num_classes else nn.BatchNorm2d(c_in, eps=eps)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = ConditionalNorm(c_out, num_classes, eps) if num_classes else nn.BatchNorm2d(c_out, eps=eps)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, 1, 0)

    def _up(self, x: Tensor) -> Tensor:
        if self.upsample == "bilinear":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def _norm(self, norm: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
        return norm(x, y) if isinstance(norm, ConditionalNorm) else norm(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.conv1(self._up(F.relu(self._norm(self.norm1, x, y))))
        h = self.conv2(F.relu(self._norm(self.norm2, h, y)))
        return h + self.skip(self._up(x))


class ResNetGenerator32(nn.Module):
    def __init__(self, z_dim: int = 128, channels: int = 256, n_blocks: int = 3, upsample: str = "nearest",
                 eps: float = 1e-5, num_classes: int = 0, bottom: int = 4, image_channels: int = 3):
        super().__init__()
        self.z_dim, self.channels, self.bottom, self.num_classes = z_dim, channels, bottom, num_classes
        self.fc = nn.Linear(z_dim, bottom * bottom * channels)
        self.blocks = nn.ModuleList(GeneratorBlock(channels, channels, upsample, eps, num_classes)
                                    for _ in range(n_blocks))
        self.norm_out = nn.BatchNorm2d(channels, eps=eps)
        self.conv_out = nn.Conv2d(channels, image_channels, 3, 1, 1)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.fc(z).view(z.shape[0], self.channels, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.conv_out(F.relu(self.norm_out(h))))


class DiscriminatorBlock(nn.Module):
    """first: conv-relu-conv-pool with a pool-then-conv skip; else relu-conv-relu-conv(-pool)."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1, 1, 0) if first or down or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        if self.first:
            h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
            return h + self.skip(F.avg_pool2d(x, 2))
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        skip = x if self.skip is None else self.skip(x)
        if self.down:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + skip


class ResNetDiscriminator32(nn.Module):
    """Blocks (down, down, same, same), ReLU, sum or mean over pixels, then a Linear logit.

    num_classes > 0 adds the projection term <embed[y], h> (Miyato & Koyama 2018).
    """

    def __init__(self, channels: int = 128, pooling: str = "sum", bias: bool = True, num_classes: int = 0,
                 downs: tuple[bool, ...] = (True, True, False, False), image_channels: int = 3,
                 spectral_norm: bool = False):
        super().__init__()
        self.pooling = pooling
        self.blocks = nn.ModuleList(DiscriminatorBlock(image_channels if i == 0 else channels, channels, down, i == 0)
                                    for i, down in enumerate(downs))
        self.fc = nn.Linear(channels, 1, bias=bias)
        self.embed = nn.Embedding(num_classes, channels) if num_classes else None
        if spectral_norm:  # training with SN; checkpoints from other libraries are folded at load instead
            apply_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
        h = F.relu(h)
        h = h.sum((2, 3)) if self.pooling == "sum" else h.mean((2, 3))
        out = self.fc(h)[:, 0]
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out
