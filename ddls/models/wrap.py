"""Wrap any generator and discriminator (or critic, or auto-encoder energy) for DDLS.

    model = ddls.wrap(G, D, kind="gan")          # latent size read from G where it can be
    result = ddls.sample(model.energy(), ddls.RunConfig(n=64, steps=100, eps=1e-2))

The prior is the standard normal N(0, I) over the latent, as in the DDLS paper.
"""
from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from ..core.energy import SCORES, Label, as_label
from ..core.model import Model
from ..errors import DDLSError

# Attribute names that GAN code commonly uses for the latent size.
LATENT_ATTRIBUTES = ("z_dim", "nz", "latent_dim", "dim_z", "latent_size", "noise_dim")


def infer_latent_shape(generator: nn.Module) -> tuple[int, ...]:
    """The latent size from a `z_dim`-like attribute, else from G's first layer (Linear or 1x1-input conv)."""
    for name in LATENT_ATTRIBUTES:
        value = getattr(generator, name, None)
        if isinstance(value, int) and value > 0:
            return (value,)
    for module in generator.modules():
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        if isinstance(module, (nn.ConvTranspose2d, nn.Conv2d)):
            return (module.in_channels, 1, 1)
    raise DDLSError(f"cannot tell the latent size of {type(generator).__name__}; pass latent_shape=")


def wrap(generator: nn.Module, discriminator: nn.Module, latent_shape: int | tuple[int, ...] | None = None, *,
         kind: str = "gan", label: Label = None, num_classes: int = 0,
         select: str | int | Callable[[Any], Tensor] | None = None) -> Model:
    """A Model ready for `model.energy(...)`.

    kind: what D returns: 'gan' (a logit), 'wgan' (a critic value), 'ae' (a reconstruction error).
    label: for conditional models, G(z, y) and D(x, y): the class every chain keeps, or one class per
        chain (a list or 1-D tensor, as long as the number of chains); `model.energy(label=...)` overrides it.
    select: picks the logit out of a dict or tuple output (a key, an index or a function);
        a dict with 'adv_output' (StudioGAN) is handled without it.
    The modules are used as they are, not copied, and their train/eval mode is not changed: the
    energy evaluates them in eval mode and restores their mode after each call.
    """
    if not isinstance(generator, nn.Module) or not isinstance(discriminator, nn.Module):
        raise DDLSError("wrap needs two torch.nn.Module objects: a generator and a discriminator")
    if kind not in SCORES:
        raise DDLSError(f"unknown energy kind {kind!r}; choose one of {', '.join(sorted(SCORES))}")
    if latent_shape is None:
        latent_shape = infer_latent_shape(generator)
    shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
    meta = {"format": "wrapped", "architecture": f"{type(generator).__name__} / {type(discriminator).__name__}"}
    # the modules stay in the caller's mode: the energy evaluates them in eval mode and puts it back
    return Model(generator, discriminator, shape, kind, meta=meta, label=as_label(label), select=select,
                 num_classes=num_classes)
