"""Langevin kernels in latent space, as (init, step) pairs.

A step is a pure function of the state: it evaluates the energy once, caches
energy and gradient in the new state, and returns what it saw as info. MALA is
the Langevin proposal followed by a Metropolis-Hastings accept/reject.

    z' = z - eps/2 * grad E(z) + sqrt(eps) * noise_scale * n,   n ~ N(0, I)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from ..errors import DDLSError

Energy = Callable[[Tensor], Tensor]


class State(NamedTuple):
    position: Tensor  # (B, D)
    energy: Tensor  # (B,)
    grad: Tensor  # (B, D)


class Info(NamedTuple):
    accept_prob: Tensor  # (B,), 1 for unadjusted Langevin
    accepted: Tensor  # (B,) bool


def energy_and_grad(energy: Energy, position: Tensor) -> tuple[Tensor, Tensor]:
    """E(position) and dE/dposition. An energy with its own `value_and_grad` (ddls.fastpath) computes both."""
    own = getattr(energy, "value_and_grad", None)
    if own is not None:
        return own(position)
    return autograd_energy_and_grad(energy, position)


def autograd_energy_and_grad(energy: Energy, position: Tensor) -> tuple[Tensor, Tensor]:
    """E(position) and dE/dposition by autograd, building a graph only for this call.

    Only the latent requires a gradient (the driver freezes the networks' parameters), so
    the backward pass stops at the inputs and no parameter gradient is ever formed.
    """
    with torch.enable_grad():
        z = position.detach().requires_grad_(True)
        e = energy(z)
        (g,) = torch.autograd.grad(e.sum(), z)
    return e.detach(), g


def init(position: Tensor, energy: Energy) -> State:
    e, g = energy_and_grad(energy, position)
    return State(position.detach(), e, g)


def _check_step(eps: float, noise_scale: float) -> None:
    if not (eps > 0 and eps < float("inf")):
        raise DDLSError(f"eps must be a positive finite number, got {eps}")
    if not (noise_scale >= 0 and noise_scale < float("inf")):
        raise DDLSError(f"noise_scale must be a finite number >= 0, got {noise_scale}")


def _check_mala_noise(noise_scale: float) -> None:
    # without noise the proposal density is a point mass: no acceptance ratio exists
    if noise_scale == 0:
        raise DDLSError("MALA needs noise_scale > 0")


StepSize = float | Tensor  # one eps for every chain, or a (B,) tensor: one per chain


def _per_row(eps: StepSize) -> StepSize:
    """eps shaped to multiply (B, D) positions."""
    return eps[:, None] if isinstance(eps, Tensor) else eps


def _drift(state: State, eps: StepSize) -> Tensor:
    """The Langevin proposal's mean, z - eps/2 * grad E(z)."""
    return state.position - 0.5 * _per_row(eps) * state.grad


def propose(state: State, energy: Energy, *, eps: StepSize, noise_scale: float, noise: Tensor) -> State:
    """The Langevin proposal from `state` with the given standard normal `noise`, evaluated."""
    proposal = _drift(state, eps) + (_per_row(eps)**0.5 * noise_scale) * noise
    value, grad = energy_and_grad(energy, proposal)
    return State(proposal, value, grad)


def ula_step(state: State, energy: Energy, *, eps: StepSize, noise_scale: float = 1.0,
             generator: torch.Generator) -> tuple[State, Info]:
    """One unadjusted Langevin step (the DDLS update); MALA takes it as its proposal."""
    noise = torch.randn(state.position.shape, generator=generator, device=state.position.device,
                        dtype=state.position.dtype)
    new = propose(state, energy, eps=eps, noise_scale=noise_scale, noise=noise)
    ones = torch.ones_like(new.energy)
    return new, Info(ones, ones.bool())


def _log_q(to: Tensor, frm: State, eps: StepSize, noise_scale: float) -> Tensor:
    """log density (up to a constant) of proposing `to` from state `frm`."""
    return -(to - _drift(frm, eps)).pow(2).sum(1) / (2 * eps * noise_scale**2)


def metropolis(state: State, new: State, *, eps: StepSize, noise_scale: float, u: Tensor) -> tuple[State, Info]:
    """Accept the Langevin proposal `new` from `state` where log u < log alpha (u uniform, shape (B,))."""
    log_alpha = (state.energy - new.energy) + _log_q(state.position, new, eps, noise_scale) \
        - _log_q(new.position, state, eps, noise_scale)
    log_alpha = torch.nan_to_num(log_alpha, nan=-torch.inf)
    accept = u.log() < log_alpha
    keep = accept[:, None]
    out = State(torch.where(keep, new.position, state.position), torch.where(accept, new.energy, state.energy),
                torch.where(keep, new.grad, state.grad))
    return out, Info(log_alpha.clamp(max=0).exp(), accept)


def mala_step(state: State, energy: Energy, *, eps: StepSize, noise_scale: float = 1.0,
              generator: torch.Generator) -> tuple[State, Info]:
    """The Langevin step as a proposal, plus a Metropolis-Hastings correction targeting exp(-E)."""
    _check_mala_noise(noise_scale)
    new, _ = ula_step(state, energy, eps=eps, noise_scale=noise_scale, generator=generator)
    u = torch.rand(new.energy.shape, generator=generator, device=new.energy.device, dtype=new.energy.dtype)
    return metropolis(state, new, eps=eps, noise_scale=noise_scale, u=u)


def mixed_step(state: State, energy: Energy, *, eps: Tensor, adjusted: Tensor, noise_scale: float, noise: Tensor,
               u: Tensor) -> tuple[State, Info]:
    """ULA and MALA chains side by side: per-chain eps (B,), `adjusted` (B,) marks the MALA chains, and
    the noise and uniforms are given (ddls.sampling.batched draws them as each chain's own run would)."""
    new = propose(state, energy, eps=eps, noise_scale=noise_scale, noise=noise)
    corrected, info = metropolis(state, new, eps=eps, noise_scale=noise_scale, u=u)
    keep = adjusted[:, None]
    out = State(torch.where(keep, corrected.position, new.position),
                torch.where(adjusted, corrected.energy, new.energy), torch.where(keep, corrected.grad, new.grad))
    ones = torch.ones_like(new.energy)
    return out, Info(torch.where(adjusted, info.accept_prob, ones), torch.where(adjusted, info.accepted, ones.bool()))


@dataclass(frozen=True)
class Sampler:
    """A kernel with its step size bound: `init(position, energy)`, `step(state, energy, generator=)`.

    `step(..., eps=tensor)` overrides the bound step size with one per chain, shape (B,).
    """

    name: str
    eps: float
    noise_scale: float
    step: Callable[..., tuple[State, Info]]
    init: Callable[[Tensor, Energy], State] = init


KERNELS = {"ula": ula_step, "mala": mala_step}


def make_sampler(name: str, eps: float, noise_scale: float = 1.0) -> Sampler:
    """`name` is 'ula' (plain DDLS Langevin) or 'mala'."""
    if name not in KERNELS:
        raise DDLSError(f"unknown sampler {name!r}; choose one of {', '.join(KERNELS)}")
    _check_step(eps, noise_scale)
    if name == "mala":
        _check_mala_noise(noise_scale)  # now, not at the first step
    return Sampler(name, eps, noise_scale, partial(KERNELS[name], eps=eps, noise_scale=noise_scale))
