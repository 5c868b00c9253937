"""`ddls train`: parse the options, run `ddls.training.run.run_training`, print what it did."""
from __future__ import annotations

from pathlib import Path

import click

from .common import LR, NONNEG, POSITIVE, SEED, STEPS, Bounded, count, echo_err, guard_output


def _loss_names() -> list[str]:
    from ..training.losses import LOSSES

    return list(LOSSES)


@click.command()
@guard_output("out", folder=lambda out: Path(out).suffix != ".pt")
@click.option("--data", required=True,
              help="gmm25, ring8, swissroll (2-D), fashion-mnist, cifar10, or folder:PATH (a folder of images).")
@click.option("--loss", default="ns", show_default=True, help="GAN family: " + ", ".join(_loss_names()) + ".")
@click.option("--arch", type=click.Choice(["mlp", "dcgan", "resnet"]), default=None,
              help="Networks. Default: mlp for 2-D data, dcgan for images.")
@click.option("--steps", type=count(1, STEPS), default=10000, show_default=True,
              help="Generator steps.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--batch-size", type=count(2, 10 ** 6), default=None, help="Default: 256 (2-D), 64 (images).")
@click.option("--z-dim", type=count(1, 1 << 16), default=None, help="Default: 2 (2-D), 64 (images).")
@click.option("--hidden", type=count(1, 1 << 16), default=256, show_default=True, help="mlp width.")
@click.option("--depth", type=count(1, 256), default=3, show_default=True, help="mlp depth.")
@click.option("--width", type=count(1, 1 << 16), default=32, show_default=True,
              help="Base channel count of the image networks.")
@click.option("--image-size", type=count(4, 4096), default=None,
              help="Pad images to this side (28 -> 32 for the ResNet).")
@click.option("--lr", type=LR, default=None, help="Learning rate of G (and D). Default: 1e-4 (2-D), 2e-4 (images).")
@click.option("--lr-d", type=LR, default=None, help="Learning rate of D. Default: --lr.")
@click.option("--n-critic", type=count(1, 1000), default=None,
              help="Default: the loss's own (5 for wgan, wgan-gp); 5 for the resnet.")
@click.option("--beta1", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Adam beta1. Default: 0.5; 0 for the resnet.")
@click.option("--beta2", type=click.FloatRange(0, 1, max_open=True), default=None, help="Adam beta2. Default: 0.9.")
@click.option("--gp-weight", type=NONNEG, default=None, help="Default: the loss's own (10 for wgan-gp).")
@click.option("--clip", type=NONNEG, default=None, help="Weight clipping of wgan. Default: 0.01.")
@click.option("--margin", type=POSITIVE, default=0.5, show_default=True, help="EBGAN margin m.")
@click.option("--pt-weight", type=NONNEG, default=0.0, show_default=True,
              help="EBGAN pulling-away term weight (0.1 in its paper).")
@click.option("--gamma", type=Bounded(0, 1), default=0.5, show_default=True, help="BEGAN diversity ratio.")
@click.option("--lambda-k", type=NONNEG, default=0.001, show_default=True, help="BEGAN k_t rate.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--autocast", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True,
              help="G's and D's forward passes in reduced precision (fp16: CUDA only); losses, weights and "
                   "optimisers stay float32.")
@click.option("--channels-last", is_flag=True, help="Image networks and batches in channels_last layout.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile G's and D's forward passes.")
@click.option("--out", type=click.Path(), required=True,
              help="A .pt checkpoint, or a folder for model.pt, config.json, history.csv, losses.png and grids.")
@click.option("--checkpoint-every", type=count(0, STEPS), default=500, show_default=True,
              help="Save progress (weights, optimisers, RNG) to <checkpoint>.resume.pt every k steps and on "
                   "Ctrl-C (0: never).")
@click.option("--sample-every", type=count(0, STEPS), default=500, show_default=True,
              help="Write a grid of samples every k steps into <out>/samples (images; 0: only at the end).")
@click.option("--resume", is_flag=True, help="Finish the interrupted run saved in <checkpoint>.resume.pt.")
def train(data, loss, arch, steps, seed, batch_size, z_dim, hidden, depth, width, image_size, lr, lr_d, n_critic,
          beta1, beta2, gp_weight, clip, margin, pt_weight, gamma, lambda_k, device, autocast, channels_last, compile_,
          out, checkpoint_every, sample_every, resume):
    """Train a GAN of any family and write a DDLS-ready checkpoint."""
    from .._torch import resolve_device
    from ..training.recipes import make_config
    from ..training.run import run_training

    config = make_config(data, loss=loss, steps=steps, batch_size=batch_size, z_dim=z_dim, arch=arch, hidden=hidden,
                         depth=depth, width=width, image_size=image_size, lr=lr, lr_d=lr_d, n_critic=n_critic,
                         beta1=beta1, beta2=beta2, gp_weight=gp_weight, clip=clip, margin=margin,
                         pt_weight=pt_weight, gamma=gamma, lambda_k=lambda_k, seed=seed,
                         autocast=None if autocast == "off" else autocast, channels_last=channels_last,
                         compile=compile_)
    trained, summary = run_training(config, out, device=resolve_device(device), resume=resume,
                                    checkpoint_every=checkpoint_every, sample_every=sample_every, echo=echo_err)
    msg = f"wrote {out} after {steps} steps in {summary['train_seconds']:.0f}s"
    metrics = summary.get("generator_metrics")
    if metrics:
        msg += "; generator alone on 5000 samples: " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    echo_err(msg)

