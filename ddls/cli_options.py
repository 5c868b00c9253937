"""Command-line options shared by commands in more than one module (cli.py, cli_posthoc.py)."""
from __future__ import annotations

import click


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
