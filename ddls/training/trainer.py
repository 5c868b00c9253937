"""One trainer for every loss family: n_critic discriminator steps, then one generator step."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from .._interrupt import stop_requested
from .._torch import derived_seed, make_generator
from ..errors import DDLSError
from .fastpath import SWITCHES, check_autocast, check_switches, forward_of, grad_scaler, memory_format
from .losses import LossFamily, LossParams, get_loss, gradient_penalty
from ..models import build


MAX_LR = 1e3


ARCHS = ("mlp", "dcgan", "resnet")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored in every checkpoint it writes."""

    data: str
    loss: str = "ns"
    steps: int = 10000
    batch_size: int = 256
    z_dim: int = 2
    arch: str = "mlp"  # mlp for vectors; dcgan or resnet for images
    hidden: int = 256  # mlp width
    depth: int = 3  # mlp depth
    width: int = 32  # base channel count of the image networks
    image_size: int | None = None  # pad images to this side (28 -> 32 for the ResNet); None: as stored
    code_dim: int = 64  # auto-encoder discriminator's code size (EBGAN, BEGAN)
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    n_critic: int | None = None  # None: the family's default
    gp_weight: float | None = None  # None: the family's default
    clip: float | None = None  # weight clipping (wgan); None: the family's default
    margin: float = 0.5  # EBGAN margin m, in units of the per-pixel squared reconstruction error
    pt_weight: float = 0.0  # EBGAN pulling-away term weight (0.1 in its paper; 0: off)
    gamma: float = 0.5  # BEGAN diversity ratio
    lambda_k: float = 0.001  # BEGAN learning rate of k_t
    seed: int = 0
    log_every: int = 100
    # speed switches (ddls/training/fastpath.py), off by default
    autocast: str | None = None  # 'bf16', or 'fp16' (CUDA only): the networks' forward passes
    channels_last: bool = False  # image networks and batches in channels_last layout
    compile: bool = False  # torch.compile of G's and D's forward

    def __post_init__(self):
        get_loss(self.loss)
        check_autocast(self.autocast)
        if self.arch not in ARCHS:
            raise DDLSError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.steps < 1:
            raise DDLSError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 2:
            raise DDLSError(f"batch size must be >= 2, got {self.batch_size}")
        for name in ("lr_g", "lr_d"):
            lr = getattr(self, name)
            if not 0 < lr <= MAX_LR:  # Adam divides lr by its bias correction: huge values overflow
                raise DDLSError(f"learning rate must be in (0, {MAX_LR:g}], got {lr}")
        if not 0 <= self.gamma <= 1:
            raise DDLSError(f"BEGAN gamma must be in [0, 1], got {self.gamma}")

    @property
    def family(self) -> LossFamily:
        return get_loss(self.loss)

    @property
    def critic_steps(self) -> int:
        return self.n_critic if self.n_critic is not None else self.family.n_critic

    @property
    def penalty(self) -> float:
        return self.gp_weight if self.gp_weight is not None else self.family.gp_weight

    @property
    def clip_value(self) -> float:
        return self.clip if self.clip is not None else self.family.clip

    def to_json(self) -> str:
        # A switch is written only when on: a plain run's config reads as it did before the switches
        # existed, so resume files and checkpoints written then still match it.
        return json.dumps({k: v for k, v in asdict(self).items() if k not in SWITCHES or v}, sort_keys=True)

    def model_specs(self, sample_shape: int | tuple[int, ...]) -> tuple[dict, dict]:
        """Architecture specs for samples of this shape: (dim,) vectors or (C, H, W) images."""
        shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        family = self.family
        ae = family.discriminator == "autoencoder"
        if len(shape) == 1:
            if self.arch != "mlp":
                raise DDLSError(f"{self.data} holds vectors; use the mlp architecture, not {self.arch}")
            g = {"arch": "mlp_g", "z_dim": self.z_dim, "out_dim": shape[0], "hidden": self.hidden, "depth": self.depth}
            if ae:
                d = {"arch": "mlp_ae", "in_dim": shape[0], "hidden": self.hidden, "depth": self.depth,
                     "code_dim": min(self.code_dim, 8), "reconstruction": family.reconstruction}
            else:
                d = {"arch": "mlp_d", "in_dim": shape[0], "hidden": self.hidden, "depth": self.depth}
                if family.spectral_norm:
                    d["spectral_norm"] = True
            return g, d
        if len(shape) != 3 or shape[1] != shape[2]:
            raise DDLSError(f"images must be square (C, H, H), got {shape}")
        channels, size = shape[0], shape[1]
        if self.arch == "mlp":
            raise DDLSError(f"{self.data} holds images; use the dcgan or resnet architecture")
        if self.arch == "dcgan":
            g = {"arch": "dcgan_g", "z_dim": self.z_dim, "channels": channels, "size": size, "width": self.width}
            d = {"arch": "dcgan_d", "channels": channels, "size": size, "width": self.width,
                 "spectral_norm": family.spectral_norm}
        else:
            if size != 32:
                raise DDLSError(f"the ResNet is for 32x32 images, these are {size}x{size}; set the image size to 32 (padded)")
            g = {"arch": "resnet32_g", "z_dim": self.z_dim, "channels": 2 * self.width, "image_channels": channels}
            d = {"arch": "resnet32_d", "channels": self.width, "image_channels": channels,
                 "spectral_norm": family.spectral_norm}
        if ae:
            d = {"arch": "ae_d", "channels": channels, "size": size, "width": self.width, "code_dim": self.code_dim,
                 "reconstruction": family.reconstruction}
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
    loss_state: dict[str, Tensor] = field(default_factory=dict)  # the family's running state (BEGAN's k_t)
    scalers: dict[str, dict] = field(default_factory=dict)  # fp16's GradScaler states, by "g" and "d"


def build_models(config: TrainConfig, sample_shape: int | tuple[int, ...]) -> tuple[nn.Module, nn.Module, dict, dict]:
    """Networks initialised from the config's seed without touching the global RNG."""
    g_spec, d_spec = config.model_specs(sample_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(config.seed, 1))
        g, d = build(g_spec), build(d_spec)
    return g, d, g_spec, d_spec


def _optimizer(kind: str, params, lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2))


def _history_keys(family: LossFamily) -> list[str]:
    return ["step", "d_loss", "g_loss", *family.running.history]


def _descend(loss: Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """One optimiser step on `loss` (scaled first under fp16 autocast; otherwise the scaler passes it through)."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def train(config: TrainConfig, draw_real: Callable[[int, torch.Generator], Tensor],
          sample_shape: int | tuple[int, ...], *, device: torch.device | str = "cpu", progress: bool = False,
          start: TrainProgress | None = None, save: Callable[[TrainProgress], None] | None = None,
          save_every: int = 0, snapshot: Callable[[int, nn.Module], None] | None = None,
          snapshot_every: int = 0, networks: tuple[nn.Module, nn.Module] | None = None) -> Trained:
    """Train from scratch, or from `start`. `draw_real(n, generator)` returns a batch of real samples.

    `save(progress)` is called every `save_every` steps; `start=progress` continues such a
    run and ends, on the same device, with exactly the weights of an uninterrupted one.
    `snapshot(step, generator)` (sample grids) is called every `snapshot_every` steps and
    must not use the training's random stream. `networks=(G, D)` trains those (taking (B, z_dim)
    latents) instead of the config's architectures. The config's speed switches (autocast,
    channels_last, compile: ddls/training/fastpath.py) change how G and D run; their results, only by rounding.
    """
    device = torch.device(device)
    check_switches(config, device, sample_shape)
    family = config.family
    g, d, g_spec, d_spec = build_models(config, sample_shape) if networks is None else (*networks, {}, {})
    layout = memory_format(config)
    g, d = g.to(device, memory_format=layout), d.to(device, memory_format=layout)
    run_g, run_d = forward_of(g, config, device), forward_of(d, config, device)  # under the speed switches
    scalers = {"g": grad_scaler(config, device), "d": grad_scaler(config, device)}
    opt_g = _optimizer(family.optimizer, g.parameters(), config.lr_g, config)
    opt_d = _optimizer(family.optimizer, d.parameters(), config.lr_d, config)
    gen = make_generator(derived_seed(config.seed, 2), device)
    history: dict[str, list[float]] = {k: [] for k in _history_keys(family)}
    state = family.running.init(device)  # e.g. BEGAN's equilibrium variable k_t
    done = 0
    if start is not None:
        try:
            g.load_state_dict(start.generator)
            d.load_state_dict(start.discriminator)
            opt_g.load_state_dict(start.opt_g)
            opt_d.load_state_dict(start.opt_d)
            gen.set_state(start.generator_state)
            state = family.running.resume(start.loss_state, device)
            for key, saved in start.scalers.items():
                if saved:  # a disabled scaler saves {}
                    scalers[key].load_state_dict(saved)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise DDLSError(f"saved training progress does not fit this model ({type(exc).__name__})") from None
        history = {key: list(v) for key, v in start.history.items()}
        done = start.step
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=done, desc=f"train {config.loss}", unit="step", dynamic_ncols=True)
    bs = config.batch_size
    clip = config.clip_value

    def noise() -> Tensor:
        return torch.randn(bs, config.z_dim, generator=gen, device=device)

    def progress_at(step: int) -> TrainProgress:
        return TrainProgress(step, g.state_dict(), d.state_dict(), opt_g.state_dict(), opt_d.state_dict(),
                             history, gen.get_state(), {key: v.detach().cpu() for key, v in state.items()},
                             {key: s.state_dict() for key, s in scalers.items()})

    try:
        for step in range(done + 1, config.steps + 1):
            if stop_requested():  # Ctrl-C: the previous step is whole; save it for a resume
                if save is not None:
                    save(progress_at(step - 1))
                raise KeyboardInterrupt
            for _ in range(config.critic_steps):
                real = draw_real(bs, gen).to(device, memory_format=layout)
                with torch.no_grad():
                    fake = run_g(noise())
                real_out, fake_out = run_d(real), run_d(fake)
                d_loss = family.d_loss(real_out, fake_out, LossParams(config, state))
                if config.penalty > 0:  # on D itself, float32 and uncompiled (see training/fastpath.py)
                    d_loss = d_loss + config.penalty * gradient_penalty(d, real, fake, gen)
                _descend(d_loss, opt_d, scalers["d"])
                if clip > 0:
                    with torch.no_grad():
                        for p in d.parameters():
                            p.clamp_(-clip, clip)
                state = family.running.update(state, real_out, fake_out, config)
            for p in d.parameters():
                p.requires_grad_(False)
            g_loss = family.generator_loss(run_d, run_g(noise()), LossParams(config, state))
            _descend(g_loss, opt_g, scalers["g"])
            for p in d.parameters():
                p.requires_grad_(True)
            if step % config.log_every == 0 or step == config.steps:
                dl, gl = d_loss.item(), g_loss.item()
                if not (math.isfinite(dl) and math.isfinite(gl)):
                    raise DDLSError(f"training diverged by step {step}: d_loss={dl}, g_loss={gl}; "
                                    f"try a smaller learning rate (got {config.lr_g:g})")
                history["step"].append(step)
                history["d_loss"].append(dl)
                history["g_loss"].append(gl)
                for key, value in family.running.record(state, real_out, fake_out, config).items():
                    history[key].append(value)
                if bar is not None:
                    bar.set_postfix(d_loss=f"{dl:.3f}", g_loss=f"{gl:.3f}")
            if bar is not None:
                bar.update()
            if snapshot is not None and snapshot_every and (step % snapshot_every == 0 or step == config.steps):
                snapshot(step, g)
            if save is not None and save_every and step % save_every == 0 and step < config.steps:
                save(progress_at(step))
    finally:
        if bar is not None:
            bar.close()
    if config.channels_last:  # hand the networks back in the default layout
        g, d = g.to(memory_format=torch.contiguous_format), d.to(memory_format=torch.contiguous_format)
    return Trained(config, g, d, g_spec, d_spec, opt_g, opt_d, config.steps, history)


def save_trained(path, trained: Trained, *, data: str | None, extra: dict | None = None):
    """Write a ddls checkpoint that `ddls sample` reads without further flags."""
    from ..io.checkpoint import save_ddls

    return save_ddls(
        path, g=trained.generator, d=trained.discriminator, g_spec=trained.g_spec, d_spec=trained.d_spec,
        latent_shape=(trained.config.z_dim,), energy_kind=trained.config.family.energy_kind,
        config_json=trained.config.to_json(), step=trained.step, data=data,
        optim_g=trained.opt_g.state_dict(), optim_d=trained.opt_d.state_dict(),
        extra={"history": trained.history, **(extra or {})},
    )
