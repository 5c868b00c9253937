"""One trainer for every loss family: n_critic discriminator steps, then one generator step."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from ._torch import derived_seed, make_generator
from .errors import DDLSError
from .losses import LossFamily, get_loss, gradient_penalty
from .models import build


MAX_LR = 1e3


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored in every checkpoint it writes."""

    data: str
    loss: str = "ns"
    steps: int = 10000
    batch_size: int = 256
    z_dim: int = 2
    hidden: int = 256
    depth: int = 3
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    n_critic: int | None = None  # None: the family's default
    gp_weight: float | None = None  # None: the family's default
    seed: int = 0
    log_every: int = 100

    def __post_init__(self):
        get_loss(self.loss)
        if self.steps < 1:
            raise DDLSError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 2:
            raise DDLSError(f"batch size must be >= 2, got {self.batch_size}")
        for name in ("lr_g", "lr_d"):
            lr = getattr(self, name)
            if not 0 < lr <= MAX_LR:  # Adam divides lr by its bias correction: huge values overflow
                raise DDLSError(f"learning rate must be in (0, {MAX_LR:g}], got {lr}")

    @property
    def family(self) -> LossFamily:
        return get_loss(self.loss)

    @property
    def critic_steps(self) -> int:
        return self.n_critic if self.n_critic is not None else self.family.n_critic

    @property
    def penalty(self) -> float:
        return self.gp_weight if self.gp_weight is not None else self.family.gp_weight

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def model_specs(self, sample_dim: int) -> tuple[dict, dict]:
        g = {"arch": "mlp_g", "z_dim": self.z_dim, "out_dim": sample_dim, "hidden": self.hidden, "depth": self.depth}
        d = {"arch": "mlp_d", "in_dim": sample_dim, "hidden": self.hidden, "depth": self.depth}
        return g, d


@dataclass
class Trained:
    config: TrainConfig
    generator: nn.Module
    discriminator: nn.Module
    g_spec: dict
    d_spec: dict
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: int
    history: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class TrainProgress:
    """A training run after `step` generator steps: enough to continue it exactly."""

    step: int
    generator: dict  # state dicts
    discriminator: dict
    opt_g: dict
    opt_d: dict
    history: dict[str, list[float]]
    generator_state: Tensor  # the data/noise torch.Generator's get_state()


def build_models(config: TrainConfig, sample_dim: int) -> tuple[nn.Module, nn.Module, dict, dict]:
    """Networks initialised from the config's seed without touching the global RNG."""
    g_spec, d_spec = config.model_specs(sample_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(config.seed, 1))
        g, d = build(g_spec), build(d_spec)
    return g, d, g_spec, d_spec


def train(config: TrainConfig, draw_real: Callable[[int, torch.Generator], Tensor], sample_dim: int,
          *, device: torch.device | str = "cpu", progress: bool = False, start: TrainProgress | None = None,
          save: Callable[[TrainProgress], None] | None = None, save_every: int = 0) -> Trained:
    """Train from scratch, or from `start`. `draw_real(n, generator)` returns a batch of real samples.

    `save(progress)` is called every `save_every` steps; `start=progress` continues such a
    run and ends, on the same device, with exactly the weights of an uninterrupted one.
    """
    device = torch.device(device)
    family = config.family
    g, d, g_spec, d_spec = build_models(config, sample_dim)
    g, d = g.to(device), d.to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
    gen = make_generator(derived_seed(config.seed, 2), device)
    history: dict[str, list[float]] = {"step": [], "d_loss": [], "g_loss": []}
    done = 0
    if start is not None:
        try:
            g.load_state_dict(start.generator)
            d.load_state_dict(start.discriminator)
            opt_g.load_state_dict(start.opt_g)
            opt_d.load_state_dict(start.opt_d)
            gen.set_state(start.generator_state)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise DDLSError(f"saved training progress does not fit this model ({type(exc).__name__})") from None
        history = {k: list(v) for k, v in start.history.items()}
        done = start.step
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=done, desc=f"train {config.loss}", unit="step", dynamic_ncols=True)
    bs = config.batch_size
    try:
        for step in range(done + 1, config.steps + 1):
            for _ in range(config.critic_steps):
                real = draw_real(bs, gen).to(device)
                with torch.no_grad():
                    fake = g(torch.randn(bs, config.z_dim, generator=gen, device=device))
                d_loss = family.d_loss(d(real), d(fake))
                if config.penalty > 0:
                    d_loss = d_loss + config.penalty * gradient_penalty(d, real, fake, gen)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
            for p in d.parameters():
                p.requires_grad_(False)
            g_loss = family.g_loss(d(g(torch.randn(bs, config.z_dim, generator=gen, device=device))))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            for p in d.parameters():
                p.requires_grad_(True)
            if step % config.log_every == 0 or step == config.steps:
                dl, gl = d_loss.item(), g_loss.item()
                if not (math.isfinite(dl) and math.isfinite(gl)):
                    raise DDLSError(f"training diverged by step {step}: d_loss={dl}, g_loss={gl}; "
                                    f"try a smaller --lr (got {config.lr_g:g})")
                history["step"].append(step)
                history["d_loss"].append(dl)
                history["g_loss"].append(gl)
                if bar is not None:
                    bar.set_postfix(d_loss=f"{dl:.3f}", g_loss=f"{gl:.3f}")
            if bar is not None:
                bar.update()
            if save is not None and save_every and step % save_every == 0 and step < config.steps:
                save(TrainProgress(step, g.state_dict(), d.state_dict(), opt_g.state_dict(), opt_d.state_dict(),
                                   history, gen.get_state()))
    finally:
        if bar is not None:
            bar.close()
    return Trained(config, g, d, g_spec, d_spec, opt_g, opt_d, config.steps, history)


def save_trained(path, trained: Trained, *, data: str | None, extra: dict | None = None):
    """Write a ddls checkpoint that `ddls sample` reads without further flags."""
    from .checkpoint import save_ddls

    return save_ddls(
        path, g=trained.generator, d=trained.discriminator, g_spec=trained.g_spec, d_spec=trained.d_spec,
        latent_shape=(trained.config.z_dim,), energy_kind=trained.config.family.energy_kind,
        config_json=trained.config.to_json(), step=trained.step, data=data,
        optim_g=trained.opt_g.state_dict(), optim_d=trained.opt_d.state_dict(),
        extra={"history": trained.history, **(extra or {})},
    )
