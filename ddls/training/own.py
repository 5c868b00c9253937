"""`ddls.train(G, D, data, ...)`: your own networks through the one trainer, returned as a Model.

    G, D = make_gan(hidden=64)                    # a function marked @ddls.factory
    model = ddls.train(G, D, "gmm25", loss="wgan-gp", steps=2000, seed=0)
    ddls.save(model, "mine.pt")                   # `ddls sample --ckpt mine.pt` rebuilds it
"""
from __future__ import annotations

import json
import math
from dataclasses import fields

import torch
from torch import Tensor, nn

from .._torch import frozen
from ..errors import DDLSError
from ..io.checkpoint import Model
from ..models.wrap import infer_latent_shape
from .trainer import TrainConfig, train as run_trainer

ARCH_FIELDS = {"arch", "hidden", "depth", "width", "code_dim"}  # TrainConfig's settings of ddls's own networks
# ... and these are arguments of train() itself
NOT_OPTIONS = ARCH_FIELDS | {"data", "loss", "steps", "batch_size", "z_dim", "image_size", "lr_g", "lr_d", "seed"}
OPTIONS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_OPTIONS)


class _Unflatten(nn.Module):
    """G for the trainer, which draws flat (B, z_dim) latents: reshaped to G's own latent shape."""

    def __init__(self, generator: nn.Module, latent_shape: tuple[int, ...]):
        super().__init__()
        self.net, self.latent_shape = generator, latent_shape

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], *self.latent_shape))


def _tensor_draw(x: Tensor):
    on: dict = {}

    def draw(n: int, generator: torch.Generator) -> Tensor:
        data = on.setdefault(generator.device, x.to(generator.device))
        return data[torch.randint(len(data), (n,), generator=generator, device=generator.device)]

    return draw


def train(generator: nn.Module, discriminator: nn.Module, data: str | Tensor, *, loss: str = "ns",
          steps: int = 1000, seed: int = 0, batch_size: int = 256, lr: float = 1e-4, lr_d: float | None = None,
          latent_shape: int | tuple[int, ...] | None = None, image_size: int | None = None,
          device: str | torch.device = "cpu", progress: bool = False, **options) -> Model:
    """Train G and D (in place) with the loss family `loss` on `data`: a data name (gmm25, fashion-mnist, ...)
    or a tensor of real samples, one per row. Returns them as a Model with the family's energy kind.

    `options` are the trainer's other settings: n_critic, gp_weight, clip, margin, pt_weight, gamma,
    lambda_k, beta1, beta2, log_every, and the speed switches autocast ('bf16', 'fp16'), channels_last and
    compile (ddls/training/fastpath.py). Randomness: the data and noise come from `seed`; the initial
    weights are whatever G and D hold."""
    if not isinstance(generator, nn.Module) or not isinstance(discriminator, nn.Module):
        raise DDLSError("ddls.train needs two torch.nn.Module objects: a generator and a discriminator")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DDLSError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    if isinstance(data, Tensor):
        if data.dim() < 2 or len(data) < 1:
            raise DDLSError(f"data must hold one real sample per row, got a tensor of shape {tuple(data.shape)}")
        name, draw_real, shape = None, _tensor_draw(data.float()), tuple(data.shape[1:])
    else:
        from ..data.real import real_data

        name = str(data)
        draw_real, shape, _ = real_data(name, image_size)
    latent = infer_latent_shape(generator) if latent_shape is None else (
        (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape))
    _check_output(generator, latent, shape)
    config = TrainConfig(data=name or "tensor", loss=loss, steps=steps, batch_size=batch_size,
                         z_dim=math.prod(latent), lr_g=lr, lr_d=lr_d or lr, seed=seed, **options)
    g = generator if len(latent) == 1 else _Unflatten(generator, latent)
    trained = run_trainer(config, draw_real, shape, device=device, progress=progress, networks=(g, discriminator))
    meta = {"format": "own", "architecture": f"{type(generator).__name__} / {type(discriminator).__name__}",
            "config": _recorded(config), "step": trained.step, "history": trained.history}
    return Model(generator, discriminator, latent, config.family.energy_kind, data=name, meta=meta)


def _recorded(config: TrainConfig) -> dict:
    """The config as it applies to your networks: without the settings of ddls's own architectures."""
    return {k: v for k, v in json.loads(config.to_json()).items() if k not in ARCH_FIELDS}


def _check_output(generator: nn.Module, latent: tuple[int, ...], shape: tuple[int, ...]) -> None:
    """Refuse, before training, a generator whose samples do not have the data's shape."""
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    with torch.no_grad(), frozen(generator):
        out = generator(torch.zeros(2, *latent, device=device))
    if not isinstance(out, Tensor) or tuple(out.shape[1:]) != tuple(shape):
        got = tuple(out.shape[1:]) if isinstance(out, Tensor) else type(out).__name__
        raise DDLSError(f"the generator makes samples of shape {got}, the data has {tuple(shape)}")
