"""Network architectures. Each holds layers and `forward` only; `build` makes one from a JSON spec."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from ..errors import DDLSError
from .autoencoder import AutoEncoderDiscriminator
from .cnn32 import CNNDiscriminator32, CNNGenerator32
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPAutoEncoder, MLPDiscriminator, MLPGenerator
from .resnet32 import ResNetDiscriminator32, ResNetGenerator32

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp_g": MLPGenerator,
    "mlp_d": MLPDiscriminator,
    "mlp_ae": MLPAutoEncoder,
    "cnn32_g": CNNGenerator32,
    "cnn32_d": CNNDiscriminator32,
    "resnet32_g": ResNetGenerator32,
    "resnet32_d": ResNetDiscriminator32,
    "dcgan_g": DCGANGenerator,
    "dcgan_d": DCGANDiscriminator,
    "ae_d": AutoEncoderDiscriminator,
}


def build(spec: dict[str, Any]) -> nn.Module:
    """`spec` is {'arch': name, **kwargs}, as stored in a ddls checkpoint."""
    kwargs = dict(spec)
    arch = kwargs.pop("arch", None)
    if arch not in ARCHITECTURES:
        raise DDLSError(f"unknown architecture {arch!r} in checkpoint; known: {', '.join(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[arch](**kwargs)
    except TypeError as exc:
        raise DDLSError(f"architecture {arch!r} cannot be built from {kwargs}: {str(exc).splitlines()[0][:160]}") from None
