"""A small normalizing flow over R^D: RealNVP affine couplings on a standard normal base (Dinh et al., ICLR 2017).

z = f(u), u ~ N(0, I), with f a stack of affine coupling layers and a last elementwise affine map. A coupling
layer keeps the coordinates its mask selects and moves the others,

    z = u * exp(s(u * mask)) + t(u * mask)    on the coordinates outside the mask,

with s and t one small MLP whose log-scale is bounded by a tanh, so no layer stretches by more than
exp(scale_bound). Masks cycle through odd/even coordinates, their complements, and the first/second
half, so every coordinate is moved and every coordinate conditions the others. The density is exact:

    log q(z) = log N(f^-1(z); 0, I) + log |det d f^-1 / dz|.

Every output layer starts at zero, so a new flow is the identity map and q is N(0, I), the latent prior.
Its weights are drawn from a torch.Generator, never from the global random state. It is an
Ex2MCMC `Proposal` (`sample(n, generator)`, `log_prob(z)`); how it is trained is its user's business.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..sampling.energy import standard_normal_logpdf


def masks(dim: int, layers: int) -> Tensor:
    """(layers, dim) 0/1 masks: odd coordinates, even ones, the first half, the second half, again."""
    i = torch.arange(dim)
    cycle = [i % 2 == 1, i % 2 == 0, i < dim // 2, i >= dim // 2]
    return torch.stack([cycle[k % 4] for k in range(layers)]).float()


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator, dtype: torch.dtype) -> nn.Parameter:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default for a linear layer, from `generator`."""
    bound = 1.0 / math.sqrt(fan_in)
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
    return nn.Parameter((2 * u - 1) * bound)


class Coupling(nn.Module):
    """One affine coupling layer: the coordinates where mask is 1 condition the affine map of the others."""

    def __init__(self, mask: Tensor, hidden: int, *, generator: torch.Generator, scale_bound: float,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        dim = len(mask)
        self.register_buffer("mask", mask.to(device=generator.device, dtype=dtype))
        self.scale_bound = scale_bound
        self.w1, self.b1 = _uniform((hidden, dim), dim, generator, dtype), _uniform((hidden,), dim, generator, dtype)
        self.w2, self.b2 = (_uniform((hidden, hidden), hidden, generator, dtype),
                            _uniform((hidden,), hidden, generator, dtype))
        # the output layer starts at zero: s = t = 0, the identity map
        self.w3 = nn.Parameter(torch.zeros(2 * dim, hidden, device=generator.device, dtype=dtype))
        self.b3 = nn.Parameter(torch.zeros(2 * dim, device=generator.device, dtype=dtype))

    def shift_and_log_scale(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        """t and s (both (B, D), zero on the kept coordinates) from the kept coordinates."""
        h = F.silu(F.linear(kept, self.w1, self.b1))
        h = F.silu(F.linear(h, self.w2, self.b2))
        raw_s, t = F.linear(h, self.w3, self.b3).chunk(2, dim=1)
        moved = 1 - self.mask
        return t * moved, self.scale_bound * torch.tanh(raw_s / self.scale_bound) * moved

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """u -> z and log |det dz/du|, (B,)."""
        t, s = self.shift_and_log_scale(u * self.mask)
        return u * torch.exp(s) + t, s.sum(1)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z -> u and log |det du/dz|, (B,)."""
        t, s = self.shift_and_log_scale(z * self.mask)
        return (z - t) * torch.exp(-s), -s.sum(1)


class RealNVP(nn.Module):
    """q(z): a standard normal in `dim` dimensions pushed through `layers` couplings and an elementwise affine map."""

    def __init__(self, dim: int, layers: int = 4, hidden: int = 64, *, generator: torch.Generator,
                 scale_bound: float = 2.0, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.dim = dim
        self.couplings = nn.ModuleList(Coupling(m, hidden, generator=generator, scale_bound=scale_bound, dtype=dtype)
                                       for m in masks(dim, layers))
        self.loc = nn.Parameter(torch.zeros(dim, device=generator.device, dtype=dtype))
        self.log_scale = nn.Parameter(torch.zeros(dim, device=generator.device, dtype=dtype))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Base draws u, (B, D) -> latents z and log |det dz/du|, (B,)."""
        log_det = torch.zeros(len(u), device=u.device, dtype=u.dtype)
        for layer in self.couplings:
            u, ld = layer(u)
            log_det = log_det + ld
        return self.loc + u * torch.exp(self.log_scale), log_det + self.log_scale.sum()

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latents z, (B, D) -> base points u and log |det du/dz|, (B,)."""
        u = (z - self.loc) * torch.exp(-self.log_scale)
        log_det = (-self.log_scale.sum()).expand(len(z))
        for layer in reversed(self.couplings):
            u, ld = layer.inverse(u)
            log_det = log_det + ld
        return u, log_det

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n draws of q, (n, D), from n standard normal draws of `generator`."""
        u = torch.randn(n, self.dim, generator=generator, device=generator.device, dtype=self.loc.dtype)
        return self.forward(u)[0]

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z), (B,): the change of variables through the inverse map."""
        u, log_det = self.inverse(z)
        return standard_normal_logpdf(u) + log_det
