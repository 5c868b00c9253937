"""GAN losses as pure functions of discriminator outputs, one entry per family.

Each family also names the energy kind that turns its discriminator into a
DDLS energy (see ddls.energy.SCORES), so a trained checkpoint samples without flags.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import DDLSError


def ns_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Binary cross-entropy on logits: -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g_loss(fake: Tensor) -> Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-fake).mean()


def wgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss E[D(G(z))] - E[D(x)]."""
    return fake.mean() - real.mean()


def wgan_g_loss(fake: Tensor) -> Tensor:
    return -fake.mean()


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor,
                     generator: torch.Generator) -> Tensor:
    """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates; any sample shape."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    t = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    out = discriminator(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


@dataclass(frozen=True)
class LossFamily:
    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    energy_kind: str
    gp_weight: float = 0.0  # > 0 adds the gradient penalty
    n_critic: int = 1  # default discriminator steps per generator step


LOSSES: dict[str, LossFamily] = {
    "ns": LossFamily("ns", ns_d_loss, ns_g_loss, energy_kind="gan"),
    "wgan-gp": LossFamily("wgan-gp", wgan_d_loss, wgan_g_loss, energy_kind="wgan", gp_weight=10.0, n_critic=5),
}


def get_loss(name: str) -> LossFamily:
    if name not in LOSSES:
        raise DDLSError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
