"""Discriminator calibration: fine-tune D as a logistic classifier against a frozen generator.

At the end of GAN training the discriminator lags the generator it last saw, and a
WGAN critic is no logit at all. The DDLS paper fine-tunes D on top of the fixed G
before sampling; afterwards D's output estimates log p_data/p_g and the energy kind
is 'gan'.
"""
from __future__ import annotations

import math

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from ..training.losses import ns_d_loss


def calibrate(generator: nn.Module, discriminator: nn.Module, latent_shape: tuple[int, ...],
              draw_real: Callable[[int, torch.Generator], Tensor], *, steps: int, batch_size: int = 256,
              lr: float = 1e-4, seed: int = 0, progress: bool = False,
              score: Callable[[Tensor], Tensor] = lambda out: out) -> tuple[nn.Module, list[float]]:
    """A fine-tuned copy of `discriminator` and its loss every step; the inputs are left as they were.

    `score` turns D's raw output into the logit being fitted (minus the reconstruction error for an
    auto-encoder discriminator), so the energy keeps its kind and only its scale and offset move.
    """
    if steps < 1:
        raise DDLSError(f"calibration steps must be >= 1, got {steps}")
    device = next(discriminator.parameters()).device
    d = copy.deepcopy(discriminator).train()
    for p in d.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = make_generator(derived_seed(seed, 3), device)
    losses: list[Tensor] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="calibrate", unit="step", dynamic_ncols=True)
    try:
        with frozen(generator):
            for _ in range(steps):
                real = draw_real(batch_size, gen).to(device)
                with torch.no_grad():
                    fake = generator(torch.randn(batch_size, *latent_shape, generator=gen, device=device))
                loss = ns_d_loss(score(d(real)), score(d(fake)))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    history = torch.stack(losses).cpu().tolist()
    if not all(math.isfinite(v) for v in history):
        bad = next(i for i, v in enumerate(history) if not math.isfinite(v))
        raise DDLSError(f"calibration diverged: the loss became {history[bad]} at step {bad + 1}; "
                        f"try a smaller learning rate (got {lr:g})")
    return d.eval(), history


def calibrate_file(ckpt: str, out: str, *, steps: int, batch_size: int, lr: float, seed: int, device) -> dict:
    """Fine-tune the discriminator of ddls checkpoint `ckpt` as a logistic classifier and write `out`.

    Returns what was done: first and final loss, the energy kind before and after."""
    import json

    from ..data.real import real_source
    from ..io.checkpoint import load_model, save_ddls
    from ..sampling.energy import SCORES

    model = load_model(ckpt, device)
    draw_real = real_source(model, model.energy().sample_shape)
    if draw_real is None:
        raise DDLSError(f"{ckpt} does not say which data it was trained on; calibration needs its data")
    d, losses = calibrate(model.generator, model.discriminator, model.latent_shape, draw_real,
                          steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=True,
                          score=SCORES[model.energy_kind])
    kind = "gan" if model.energy_kind in ("gan", "wgan") else model.energy_kind  # the critic is now a logit
    spec = model.meta["model"]
    extra = dict(model.meta.get("extra") or {})
    extra["calibration"] = {"from": str(ckpt), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                            "energy_before": model.energy_kind, "final_loss": losses[-1]}
    save_ddls(out, g=model.generator, d=d, g_spec=spec["generator"], d_spec=spec["discriminator"],
              latent_shape=model.latent_shape, energy_kind=kind, config_json=json.dumps(model.meta["config"]),
              step=model.meta.get("step") or 0, data=model.data, extra=extra)
    return {"first_loss": losses[0], "final_loss": losses[-1], "energy_before": model.energy_kind, "energy": kind}
