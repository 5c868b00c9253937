"""GAN losses as pure functions of discriminator outputs, one entry per family.

Every family names the energy kind that turns its discriminator into a DDLS energy
(see ddls.energy.SCORES), so a trained checkpoint samples without flags. The
discriminator's raw output is a logit (GAN, NS, LSGAN), a critic value (WGAN, WGAN-GP,
SNGAN hinge), a reconstruction energy (EBGAN, BEGAN), or the variational function's
pre-activation v (f-GAN, Nowozin et al. 2016, T = g_f(v)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..divergences import DIVERGENCES, Divergence
from ..errors import DDLSError


# --- logistic GANs -------------------------------------------------------------------

def ns_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Binary cross-entropy on logits: -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g_loss(fake: Tensor) -> Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-fake).mean()


def minimax_g_loss(fake: Tensor) -> Tensor:
    """The original minimax generator loss: log(1 - D(G(z))) = -softplus(logit)."""
    return -F.softplus(fake).mean()


def lsgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Least squares with targets 0 (fake) and 1 (real): 1/2 (D(x)-1)^2 + 1/2 D(G(z))^2."""
    return 0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean()


def lsgan_g_loss(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1).pow(2).mean()


# --- critics ---------------------------------------------------------------------------

def wgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss E[D(G(z))] - E[D(x)]."""
    return fake.mean() - real.mean()


def wgan_g_loss(fake: Tensor) -> Tensor:
    return -fake.mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """SNGAN's hinge loss: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor,
                     generator: torch.Generator) -> Tensor:
    """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates; any sample shape."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    t = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    out = discriminator(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


# --- auto-encoder discriminators ------------------------------------------------------------

def ebgan_d_loss(real: Tensor, fake: Tensor, margin: float) -> Tensor:
    """EBGAN: D(x) + max(0, m - D(G(z))), D the reconstruction energy."""
    return real.mean() + F.relu(margin - fake).mean()


def ebgan_g_loss(fake: Tensor) -> Tensor:
    return fake.mean()


def pulling_away(codes: Tensor) -> Tensor:
    """EBGAN's pulling-away term: mean squared cosine similarity over distinct pairs of codes."""
    s = F.normalize(codes.flatten(1), dim=1)
    n = s.shape[0]
    cos2 = (s @ s.T).pow(2)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def began_d_loss(real: Tensor, fake: Tensor, k: float) -> Tensor:
    """BEGAN: L(x) - k_t L(G(z)), L the auto-encoder's L1 reconstruction loss."""
    return real.mean() - k * fake.mean()


def began_g_loss(fake: Tensor) -> Tensor:
    return fake.mean()


def began_k_update(k: float | Tensor, real_loss: float | Tensor, fake_loss: float | Tensor, gamma: float,
                   lambda_k: float) -> float | Tensor:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1); on tensors it stays on the device."""
    k = k + lambda_k * (gamma * real_loss - fake_loss)
    return k.clamp(0.0, 1.0) if isinstance(k, Tensor) else min(max(k, 0.0), 1.0)


def began_convergence(real_loss: float, fake_loss: float, gamma: float) -> float:
    """BEGAN's M_global = L(x) + |gamma L(x) - L(G(z))|."""
    return real_loss + abs(gamma * real_loss - fake_loss)


# --- f-GAN (Nowozin et al. 2016): its divergences live in ddls.divergences --------------------

def fgan_d_loss(real: Tensor, fake: Tensor, divergence: Divergence) -> Tensor:
    """Minus the variational bound E_P[T(x)] - E_Q[f*(T(G(z)))]."""
    return -(divergence.activation(real).mean() - divergence.conjugate_of_v(fake).mean())


def fgan_g_loss(fake: Tensor, divergence: Divergence) -> Tensor:
    """The f-GAN paper's practical generator loss: maximise E_Q[T(G(z))]."""
    return -divergence.activation(fake).mean()


# --- the registry -----------------------------------------------------------------------

@dataclass(frozen=True)
class LossParams:
    """What a family's loss functions read besides the discriminator outputs: the run's
    hyperparameters (a TrainConfig) and the family's running state (see RunningState)."""

    config: Any
    state: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class RunningState:
    """State a family carries from step to step (BEGAN's k_t), saved with the training progress.

    init(device) -> the starting state (a dict of tensors); update(state, real_out, fake_out, config)
    -> the state after a discriminator step, from its outputs on the real and generated batch;
    record(state, real_out, fake_out, config) -> the values it adds to the history (keys `history`).
    """

    init: Callable[[torch.device], dict[str, Tensor]] = lambda device: {}
    update: Callable[[dict, Tensor, Tensor, Any], dict] = lambda state, real, fake, config: state
    record: Callable[[dict, Tensor, Tensor, Any], dict[str, float]] = lambda state, real, fake, config: {}
    history: tuple[str, ...] = ()

    def resume(self, saved: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
        """The state saved by a run (missing entries start afresh; others are not this family's)."""
        start = self.init(device)
        return {k: saved[k].to(device) if k in saved else v for k, v in start.items()}


NO_STATE = RunningState()


def _began_update(state: dict, real: Tensor, fake: Tensor, config) -> dict:
    return {"k": began_k_update(state["k"], real.detach().mean(), fake.detach().mean(), config.gamma,
                                config.lambda_k)}


def _began_record(state: dict, real: Tensor, fake: Tensor, config) -> dict[str, float]:
    real_l, fake_l = float(real.detach().mean()), float(fake.detach().mean())
    return {"k": float(state["k"]), "m_global": began_convergence(real_l, fake_l, config.gamma)}


BEGAN_STATE = RunningState(init=lambda device: {"k": torch.zeros((), device=device)}, update=_began_update,
                           record=_began_record, history=("k", "m_global"))


def _ebgan_generator_loss(discriminator: nn.Module, fake: Tensor, p: LossParams) -> Tensor:
    """EBGAN's generator loss, plus the pulling-away term on D's codes when its weight is > 0."""
    if not p.config.pt_weight > 0:
        return ebgan_g_loss(discriminator(fake))
    out, code = discriminator.forward_with_code(fake)
    return ebgan_g_loss(out) + p.config.pt_weight * pulling_away(code)


@dataclass(frozen=True)
class LossFamily:
    """How one family trains and how its discriminator becomes a DDLS energy.

    d_loss(real_out, fake_out, params) and g_loss(fake_out, params) take the discriminator's raw
    outputs and a LossParams (the run's TrainConfig and the family's running state, e.g. BEGAN's
    k_t in params.state["k"]). A family whose generator loss needs more than D's output (EBGAN's
    pulling-away term on D's codes) sets `generator_loss(discriminator, fake, params)`.
    """

    name: str
    d_loss: Callable[[Tensor, Tensor, LossParams], Tensor]
    g_loss: Callable[[Tensor, LossParams], Tensor]
    energy_kind: str
    description: str
    discriminator: str = "classifier"  # or "autoencoder"
    spectral_norm: bool = False
    gp_weight: float = 0.0  # > 0 adds the gradient penalty
    n_critic: int = 1  # default discriminator steps per generator step
    clip: float = 0.0  # > 0 clips critic weights to [-clip, clip] after each step
    optimizer: str = "adam"  # "rmsprop" for weight-clipped WGAN, as its paper
    reconstruction: str = "mse"  # auto-encoder energy: "mse" (EBGAN) or "l1" (BEGAN)
    running: RunningState = NO_STATE
    g_objective: Callable[[nn.Module, Tensor, LossParams], Tensor] | None = None

    def generator_loss(self, discriminator: nn.Module, fake: Tensor, params: LossParams) -> Tensor:
        """The generator's loss on a generated batch `fake` (D's parameters frozen by the caller)."""
        if self.g_objective is not None:
            return self.g_objective(discriminator, fake, params)
        return self.g_loss(discriminator(fake), params)


def _pair(d_loss, g_loss):
    return (lambda real, fake, p: d_loss(real, fake)), (lambda fake, p: g_loss(fake))


def _fgan(name: str) -> LossFamily:
    div = DIVERGENCES[name]
    return LossFamily(f"fgan-{name}", lambda r, f, p: fgan_d_loss(r, f, div), lambda f, p: fgan_g_loss(f, div),
                      energy_kind=f"fgan-{name}", description=f"f-GAN, {name} divergence")


LOSSES: dict[str, LossFamily] = {
    "gan": LossFamily("gan", *_pair(ns_d_loss, minimax_g_loss), energy_kind="gan",
                      description="minimax GAN (saturating generator loss)"),
    "ns": LossFamily("ns", *_pair(ns_d_loss, ns_g_loss), energy_kind="gan", description="non-saturating GAN"),
    "lsgan": LossFamily("lsgan", *_pair(lsgan_d_loss, lsgan_g_loss), energy_kind="lsgan",
                        description="least squares GAN (targets 0/1)"),
    "wgan": LossFamily("wgan", *_pair(wgan_d_loss, wgan_g_loss), energy_kind="wgan", n_critic=5, clip=0.01,
                       optimizer="rmsprop", description="WGAN with weight clipping"),
    "wgan-gp": LossFamily("wgan-gp", *_pair(wgan_d_loss, wgan_g_loss), energy_kind="wgan", gp_weight=10.0,
                          n_critic=5, description="WGAN with gradient penalty"),
    "sngan": LossFamily("sngan", *_pair(hinge_d_loss, wgan_g_loss), energy_kind="wgan", spectral_norm=True,
                        description="spectral normalisation, hinge loss"),
    "ebgan": LossFamily("ebgan", lambda r, f, p: ebgan_d_loss(r, f, p.config.margin),
                        lambda f, p: ebgan_g_loss(f), energy_kind="ae", discriminator="autoencoder",
                        reconstruction="mse", g_objective=_ebgan_generator_loss,
                        description="energy-based GAN (margin loss, optional pulling-away term)"),
    "began": LossFamily("began", lambda r, f, p: began_d_loss(r, f, p.state["k"]), lambda f, p: began_g_loss(f),
                        energy_kind="ae", discriminator="autoencoder", reconstruction="l1", running=BEGAN_STATE,
                        description="boundary equilibrium GAN"),
    **{f"fgan-{name}": _fgan(name) for name in DIVERGENCES},
}


def get_loss(name: str) -> LossFamily:
    if name not in LOSSES:
        raise DDLSError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
