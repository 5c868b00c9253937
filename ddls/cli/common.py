"""What several commands share: option groups, parameter types, and the stderr echo."""
from __future__ import annotations

import click

from ..sampling.run import EACH

POSITIVE = click.FloatRange(min=0, min_open=True)
CKPT_HELP = ("Checkpoint: from `ddls train`, pytorch-gan-collections, torch-mimicry (netG) or StudioGAN "
             "(model=G-...); see `ddls inspect`.")
DISC_HELP = "The discriminator file, for libraries that save it apart (torch-mimicry netD, StudioGAN model=D-...)."


def model_option(f):
    """--model: your own networks, built by a function; --ckpt then holds their weights."""
    return click.option("--model", "factory", default=None, metavar="MODULE:FUNCTION",
                        help="Your own GAN: a function that builds (G, D), a ddls Model or ddls.wrap arguments, in "
                             "an importable module (pkg.mod:fn) or a .py file (path/to/gan.py:fn); --ckpt holds "
                             "their state dicts (or is a `ddls.save` file). Not needed for `ddls.save` files "
                             "whose factory is marked @ddls.factory.")(f)


def echo_err(msg: str) -> None:
    click.echo(msg, err=True)


def energy_options(f):
    f = click.option("--temperature", type=POSITIVE, default=1.0, show_default=True,
                     help="E = -log p0 - d/T; T > 1 trusts the discriminator less.")(f)
    f = click.option("--sigma", type=click.FloatRange(min=0), default=0.0, show_default=True,
                     help="Extended latent G(z) + sigma*z' for generators that dropped modes (0: off).")(f)
    f = click.option("--energy", "energy_kind", default=None,
                     help="Override the checkpoint's energy kind (gan, wgan, ae).")(f)
    f = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")(f)
    return f


def chain_options(f):
    f = click.option("--noise-scale", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="Multiplies the Langevin noise sqrt(eps)*n.")(f)
    f = click.option("--mala", is_flag=True, help="Metropolis-adjusted Langevin (reports acceptance).")(f)
    f = click.option("--n", "-n", "n", type=click.IntRange(min=1), default=5000, show_default=True,
                     help="Number of chains (samples); -n under torchrun, which takes --n as its own.")(f)
    f = click.option("--seed", type=int, default=0, show_default=True)(f)
    f = click.option("--chunk-size", type=click.IntRange(min=1), default=5000, show_default=True,
                     help="Chains run at once; bounds memory.")(f)
    return f


def image_metric_options(f):
    """--features, --stats, --data, --ref-n, --classifier: how image samples are scored by FID."""
    f = click.option("--classifier", type=click.Path(dir_okay=False), default=None,
                     help="Domain-feature classifier (default: pretrained/fmnist_classifier.pt).")(f)
    f = click.option("--ref-n", type=click.IntRange(min=2), default=None,
                     help="Images: reference images used when no --stats is given (default: the whole train split).")(f)
    f = click.option("--data", "data", default=None,
                     help="Images: data set whose train split is the reference when no --stats is given "
                          "(default: the one the checkpoint or sample file names).")(f)
    f = click.option("--stats", type=click.Path(dir_okay=False), default=None,
                     help="Images: reference statistics from `ddls stats` (.npz with mu, sigma).")(f)
    f = click.option("--features", type=click.Choice(["domain", "inception"]), default="domain", show_default=True,
                     help="Images: FID feature space; domain = the Fashion-MNIST classifier, inception = FID's "
                          "InceptionV3 (`ddls inception install` first when offline).")(f)
    return f


def bootstrap_option(f):
    """--bootstrap K: resamples behind each metric's 95% interval (the *_lo, *_hi columns)."""
    return click.option("--bootstrap", "resamples", type=click.IntRange(min=0), default=100, show_default=True,
                        help="Bootstrap resamples behind each metric's 95% interval (columns *_lo, *_hi; "
                             "0: no interval).")(f)


class LabelType(click.ParamType):
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


def print_metrics(metrics: dict, as_json: bool) -> None:
    import json

    if as_json:
        click.echo(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            click.echo(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
