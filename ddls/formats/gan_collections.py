"""pytorch-gan-collections (w86763777): one file {'net_G', 'net_D', 'optim_G', 'optim_D', 'sched_G', 'sched_D'}.

Architectures `cnn32` (Generator32 / Discriminator32) and `res32` (ResGenerator32 /
ResDiscriminator32), as SNGAN (torch spectral_norm: weight_orig, weight_u, weight_v),
WGAN-GP (plain weights) or DCGAN. The library's DCGAN `cnn32` is Radford et al.'s layout
(G starts with a transposed conv of z, no Linear; D has batch norm: main.4/7/10.running_mean);
its early DCGAN was the Linear + `main` pair without biases. Sizes are read from the shapes.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..io.checkpoint import Model
from ..errors import DDLSError
from ..models.cnn32 import BatchNormDiscriminator32, BatchNormGenerator32, CNNDiscriminator32, CNNGenerator32
from ..models.resnet32 import ResNetDiscriminator32, ResNetGenerator32
from ..models.spectral_norm import has_spectral_norm
from ._common import fill, rename, shape, tensor_state

NAME = "pytorch-gan-collections"
DESCRIPTION = "pytorch-gan-collections (one .pt with net_G, net_D, optim_*, sched_*; cnn32 or res32)"
ONE_FILE = True

RES32_G_RULES = [
    (r"linear\.", "fc."),
    (r"blocks\.(\d+)\.residual\.0\.", r"blocks.\1.norm1."),
    (r"blocks\.(\d+)\.residual\.3\.", r"blocks.\1.conv1."),
    (r"blocks\.(\d+)\.residual\.4\.", r"blocks.\1.norm2."),
    (r"blocks\.(\d+)\.residual\.6\.", r"blocks.\1.conv2."),
    (r"blocks\.(\d+)\.shortcut\.1\.", r"blocks.\1.skip."),
    (r"output\.0\.", "norm_out."),
    (r"output\.2\.", "conv_out."),
]
RES32_D_RULES = [
    (r"model\.0\.residual\.0\.", "blocks.0.conv1."),
    (r"model\.0\.residual\.2\.", "blocks.0.conv2."),
    (r"model\.0\.shortcut\.1\.", "blocks.0.skip."),
    (r"model\.(\d+)\.residual\.1\.", r"blocks.\1.conv1."),
    (r"model\.(\d+)\.residual\.3\.", r"blocks.\1.conv2."),
    (r"model\.(\d+)\.shortcut\.0\.", r"blocks.\1.skip."),
    (r"linear\.", "fc."),
]


def detect(payload: Any, path: Path) -> bool:
    return isinstance(payload, dict) and "net_G" in payload and "net_D" in payload


def _architecture(g: dict) -> str:
    if "main.0.weight" in g and ("linear.weight" in g or g["main.0.weight"].dim() == 4):
        return "cnn32"
    if "blocks.0.residual.0.weight" in g:
        return "res32"
    return "unknown"


def _load_cnn32(g_state: dict, d_state: dict, sn: bool, path: Path):
    """(G, D, z_dim, variant) of a cnn32 pair, each side's layout told by its keys."""
    if "linear.weight" in g_state:
        z_dim = shape(g_state, "linear.weight", path, "cnn32's Linear(z_dim, 4*4*512)")[1]
        bottom = math.isqrt(shape(g_state, "linear.weight", path, "")[0] // 512)
        g = CNNGenerator32(z_dim, bottom=bottom, bias="main.2.bias" in g_state)
    else:  # the DCGAN generator: z_dim -> 8w channels at bottom x bottom, ..., w -> 3
        z_dim, top, bottom, _ = shape(g_state, "main.0.weight", path, "DCGAN's ConvTranspose2d(z_dim, 8w, M)")
        g = BatchNormGenerator32(z_dim, bottom=bottom, width=top // 8)
    g = fill(g, g_state, "net_G (cnn32 Generator32)", path)
    if "main.4.running_mean" in d_state:  # batch norm after the second conv: the DCGAN discriminator
        width = shape(d_state, "main.0.weight", path, "DCGAN's Conv2d(3, w, 5)")[0]
        size = 16 * math.isqrt(shape(d_state, "linear.weight", path, "a Linear(2*2*8w, 1)")[1] // (8 * width))
        d, variant = BatchNormDiscriminator32(size=size, width=width), "DCGAN"
    else:
        d_bias = "main.0.bias" in d_state
        d = CNNDiscriminator32(bias=d_bias)
        variant = "SNGAN" if sn else ("WGAN-GP" if d_bias else "DCGAN")
    return g, fill(d, d_state, "net_D (cnn32 Discriminator32)", path), z_dim, variant


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None) -> Model:
    g_state = tensor_state(payload["net_G"], "net_G", path)
    d_state = tensor_state(payload["net_D"], "net_D", path)
    arch = _architecture(g_state)
    sn = has_spectral_norm(d_state)
    if arch == "cnn32":
        g, d, z_dim, variant = _load_cnn32(g_state, d_state, sn, path)
    elif arch == "res32":
        z_dim, width = shape(g_state, "linear.weight", path, "res32's Linear(z_dim, 4*4*256)")[::-1]
        channels = width // 16
        d_channels = shape(d_state, "model.0.residual.0.weight", path, "res32's ResDiscriminator32")[0]
        g = fill(ResNetGenerator32(z_dim, channels, upsample="nearest"), rename(g_state, RES32_G_RULES),
                 "net_G (res32 ResGenerator32)", path)
        d = fill(ResNetDiscriminator32(d_channels, pooling="sum", bias="linear.bias" in d_state),
                 rename(d_state, RES32_D_RULES), "net_D (res32 ResDiscriminator32)", path)
        variant = "SNGAN" if sn else "WGAN-GP"
    else:
        raise DDLSError(f"{path}: a pytorch-gan-collections checkpoint whose net_G is neither cnn32 "
                        f"(linear + main.*, or DCGAN's main.* alone) nor res32 (linear, blocks.*.residual.*); "
                        f"ddls reads those two")
    kind = "wgan" if variant == "WGAN-GP" else "gan"
    meta = {"format": NAME, "architecture": arch, "variant": variant, "spectral_norm": sn}
    return Model(g, d, (z_dim,), kind, meta=meta)
