"""A whole `ddls train` run: data, trainer, resume file, sample grids, plots, checkpoint.

`out` ending in .pt is the checkpoint itself; any other `out` is a folder that receives
model.pt, config.json, history.csv, losses.png and sample grids.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from .._interrupt import deferred_interrupt
from .._torch import frozen, make_generator
from ..errors import DDLSError, Interrupted
from ..data.real import real_data
from .fastpath import check_switches
from .trainer import TrainConfig, Trained, save_trained, train

GRID_SEED = 12345  # fixed latents for the grids, drawn apart from the training's random stream
GRID_SIZE = 64


@dataclass
class TrainOutputs:
    checkpoint: Path
    folder: Path | None  # None when out is a .pt file

    @classmethod
    def at(cls, out: str | Path) -> "TrainOutputs":
        out = Path(out)
        if out.suffix == ".pt":
            return cls(out, None)
        if out.exists() and not out.is_dir():
            raise DDLSError(f"{out} exists and is not a folder; give a folder or a .pt file as the output")
        return cls(out / "model.pt", out)


def training_data(config: TrainConfig) -> tuple[Callable[[int, torch.Generator], Tensor], tuple[int, ...], object]:
    """(draw_real, sample_shape, dataset) for the config's data."""
    return real_data(config.data, config.image_size)


def grid_snapshot(folder: Path, z_dim: int, device: torch.device) -> Callable[[int, nn.Module], None]:
    """Writes folder/samples/step_NNNNNN.png from the same fixed latents at every call."""
    from ..viz.grids import save_grid

    z = torch.randn(GRID_SIZE, z_dim, generator=make_generator(GRID_SEED), device="cpu").to(device)

    def snap(step: int, generator: nn.Module) -> None:
        with torch.no_grad(), frozen(generator):
            images = generator(z)
        save_grid(folder / "samples" / f"step_{step:06d}.png", images, nrow=8)

    return snap


def run_training(config: TrainConfig, out: str | Path, *, device: torch.device, resume: bool,
                 checkpoint_every: int, sample_every: int, echo: Callable[[str], None]) -> tuple[Trained, dict]:
    """Train (or finish an interrupted run), write every output; returns the run and its summary."""
    from ..io.resume import progress_to_resume, resume_path
    from .resume import load_train_progress, save_train_progress

    outputs = TrainOutputs.at(out)
    draw_real, shape, dataset = training_data(config)
    check_switches(config, device, shape)  # before any output is made
    from ..io.schema import check_buildable

    for spec, which in zip(config.model_specs(shape), ("generator", "discriminator")):  # before any work
        check_buildable(spec, f"the {which}", "training", copies=4, hint="use a smaller width, depth or latent size")
    state_file = resume_path(outputs.checkpoint)
    identity = {"config": json.loads(config.to_json()), "device": str(device)}
    start = progress_to_resume(state_file, resume, lambda f: load_train_progress(f, identity))
    if start is not None:
        if start.step > config.steps:
            raise DDLSError(f"{state_file} is at step {start.step}, past the {config.steps} steps asked for; "
                            f"ask for {start.step} or more")
        echo(f"resuming from {state_file} at step {start.step}")
    if outputs.folder is not None:
        outputs.folder.mkdir(parents=True, exist_ok=True)
    snapshot = None
    if outputs.folder is not None and len(shape) == 3 and sample_every:
        snapshot = grid_snapshot(outputs.folder, config.z_dim, device)

    def save(p):
        save_train_progress(state_file, identity, p)

    t0 = time.perf_counter()
    try:
        with deferred_interrupt():  # Ctrl-C stops between steps and saves the progress
            trained = train(config, draw_real, shape, device=device, progress=True, start=start,
                            save=save if checkpoint_every else None, save_every=checkpoint_every,
                            snapshot=snapshot, snapshot_every=sample_every)
    except KeyboardInterrupt:
        raise Interrupted(state_file if state_file.exists() else None) from None
    wall = time.perf_counter() - t0
    summary: dict = {"train_seconds": round(wall, 1), "resumed_from_step": start.step if start is not None else None}
    if len(shape) == 1:
        summary["generator_metrics"] = _metrics_2d(trained, dataset)
    save_trained(outputs.checkpoint, trained, data=config.data, extra=summary)
    if outputs.folder is not None:
        _write_folder(outputs.folder, trained, device, image=len(shape) == 3)
    state_file.unlink(missing_ok=True)
    return trained, summary


def _metrics_2d(trained: Trained, dataset) -> dict:
    from ..sampling.driver import RunConfig, sample
    from ..sampling.energy import LatentEnergy
    from ..metrics.points2d import evaluate

    energy = LatentEnergy(trained.generator, trained.discriminator, (trained.config.z_dim,),
                          kind=trained.config.family.energy_kind)
    return evaluate(sample(energy, RunConfig(n=5000, steps=0, seed=0)).samples.numpy(), dataset)


def _write_folder(folder: Path, trained: Trained, device: torch.device, image: bool) -> None:
    from ..io.outputs import write_csv, write_json
    from ..viz.plots import loss_figure

    write_json(folder / "config.json", json.loads(trained.config.to_json()))
    h = trained.history
    keys = list(h)
    write_csv(folder / "history.csv", [dict(zip(keys, row)) for row in zip(*(h[k] for k in keys))])
    loss_figure(h, folder / "losses.png", title=f"{trained.config.loss} on {trained.config.data}")
    if image:
        grid_snapshot(folder, trained.config.z_dim, device)(trained.step, trained.generator)
