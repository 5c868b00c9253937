"""What several commands share: option groups, parameter types, and the stderr echo."""
from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Callable

import click

from ..errors import DDLSError

from ..sampling.run import EACH

# the ranges of numbers, shared with what files store for later runs (a tuned recipe)
from ..core.options import (HUGE, LR, MAX_INT, NONNEG, POSITIVE, SEED, STEPS, TINY, Bounded,  # noqa: F401
                            bounded, count)

CKPT_HELP = ("Checkpoint: from `ddls train`, pytorch-gan-collections, torch-mimicry (netG) or StudioGAN "
             "(model=G-...); see `ddls inspect`.")
DISC_HELP = "The discriminator file, for libraries that save it apart (torch-mimicry netD, StudioGAN model=D-...)."


def model_option(f):
    """--model: your own networks, built by a function; --ckpt then holds their weights. With --trust-factory."""
    f = trust_option(f)
    return click.option("--model", "factory", default=None, metavar="MODULE:FUNCTION",
                        help="Your own GAN: a function that builds (G, D), a ddls Model or ddls.wrap arguments, in "
                             "an importable module (pkg.mod:fn, also found in the current folder) or a .py file "
                             "(path/to/gan.py:fn); --ckpt holds their state dicts (or is a `ddls.save` file, "
                             "whose recorded factory then runs only with --trust-factory).")(f)


def trust_option(f):
    """--trust-factory: the factory a `ddls.save` file names may be imported for this command
    (ddls.models.factory.trusting); added once, whichever of model_option and trust_option comes first."""
    if any(p.name == "trust_factory" for p in getattr(f, "__click_params__", ())):
        return f

    def trust(ctx, param, value):
        if value is True:
            from ..models.factory import trusting

            ctx.with_resource(trusting(True))

    return click.option("--trust-factory", "trust_factory", is_flag=True, expose_value=False, callback=trust,
                        allow_from_autoenv=False,
                        help="Import and run the model factory a `ddls.save` checkpoint names (its module or "
                             ".py file runs): only for files you trust. DDLS_TRUST_FACTORY=1 does so for every "
                             "run, or lists the module prefixes and paths to trust (mygan,./gans/).")(f)


def echo_err(msg: str) -> None:
    click.echo(msg, err=True)


def energy_options(f):
    f = click.option("--temperature", type=POSITIVE, default=1.0, show_default=True,
                     help="E = -log p0 - d/T; T > 1 trusts the discriminator less.")(f)
    f = click.option("--sigma", type=NONNEG, default=0.0, show_default=True,
                     help="Extended latent G(z) + sigma*z' for generators that dropped modes (0: off).")(f)
    f = click.option("--energy", "energy_kind", default=None,
                     help="Override the checkpoint's energy kind (gan, wgan, ae).")(f)
    f = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")(f)
    return f


def chain_options(f):
    f = click.option("--noise-scale", type=NONNEG, default=1.0, show_default=True,
                     help="Multiplies the Langevin noise sqrt(eps)*n.")(f)
    f = click.option("--mala", is_flag=True, help="Metropolis-adjusted Langevin (reports acceptance).")(f)
    f = click.option("--n", "-n", "n", type=count(1, 10 ** 9), default=5000, show_default=True,
                     help="Number of chains (samples); -n under torchrun, which takes --n as its own.")(f)
    f = click.option("--seed", type=SEED, default=0, show_default=True)(f)
    f = click.option("--chunk-size", type=count(1, 10 ** 7), default=5000, show_default=True,
                     help="Chains run at once; bounds memory.")(f)
    return f


def image_metric_options(f):
    """--features, --stats, --data, --ref-n, --classifier: how image samples are scored by FID."""
    f = click.option("--classifier", type=click.Path(dir_okay=False), default=None,
                     help="Domain-feature classifier (default: pretrained/fmnist_classifier.pt).")(f)
    f = click.option("--ref-n", type=count(2, 10 ** 9), default=None,
                     help="Images: reference images used when no --stats is given (default: the whole train split).")(f)
    f = click.option("--data", "data", default=None,
                     help="2-D: a .npy of your own real points (N, d) or a data name (gmm25, ring8, swissroll) to "
                          "score against; images: data set whose train split is the reference when no --stats is "
                          "given (default: the one the checkpoint names).")(f)
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


def _resume_files(out: Path) -> list[Path]:
    """Progress a failed run leaves on purpose: `<out>.resume.pt`, or model.pt's in a training folder."""
    return [p for p in (Path(f"{out}.resume.pt"), out / "model.pt.resume.pt") if p.is_file()]


def guard_output(param: str, *, inputs: tuple[str, ...] = (), also: tuple[str, ...] = (),
                 folder: bool | Callable[[str], bool] = False, default: Callable[[dict], str] | None = None):
    """The output option `param` of a command: checked before the run (not empty, not too long, not one
    of the `inputs` options' files), locked for the run (one run per output), and on a failed write
    (full disk, no permission) one line, with a folder this run created removed unless it holds
    progress to resume. `also`: further output options checked the same way (not locked)."""

    def wrap(f):
        @functools.wraps(f)
        def command(**kwargs):
            from ..io.lock import output_lock
            from ..io.outputs import check_output_path, os_error_line

            out = kwargs.get(param)
            if out is None and default is not None:
                out = default(kwargs)
            if out is None:
                return f(**kwargs)
            sources = [kwargs.get(i) for i in inputs]
            path = check_output_path(out, sources)
            for other in also:
                if kwargs.get(other):
                    check_output_path(kwargs[other], [*sources, out], what=other.replace("_", " ") + " output")
            is_folder = folder(out) if callable(folder) else folder
            created = is_folder and not path.exists()
            with output_lock(path):
                try:
                    return f(**kwargs)
                except (OSError, DDLSError, KeyboardInterrupt, SystemExit) as exc:
                    kept = _resume_files(path)
                    if created and not kept:
                        shutil.rmtree(path, ignore_errors=True)
                    if not isinstance(exc, OSError):
                        raise
                    note = (f"; the progress so far is kept in {kept[0]}: free space or fix the permission, "
                            f"then rerun with --resume" if kept else "; nothing half-written was kept")
                    raise DDLSError(os_error_line(exc, path) + note) from None

        return command

    return wrap


def bound_options(group: click.Group) -> None:
    """Give every numeric option of `group` a finite range: an integer without an upper bound gets
    MAX_INT, a float range becomes `Bounded` (no NaN, no inf, nothing below TINY), a plain float or
    int a bounded one. Options declared with their own bounds keep them."""
    def walk(command):
        for param in command.params:
            if isinstance(param, click.Option) and param.expose_value:
                param.type = bounded(param.type)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(group)


def was_given(name: str, ctx: click.Context | None = None) -> bool:
    """Whether the user set option `name` (a parameter name), on the command line or through a DDLS_*
    variable. Asked of click's parameter source, never by comparing with `Option.default`: since click
    8.3 a flag's default is a sentinel, so a value compared with it always looks given."""
    from click.core import ParameterSource

    ctx = ctx or click.get_current_context()
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def was_changed(param: click.Parameter, ctx: click.Context) -> bool:
    """Whether the user gave option `param` a value other than its default: a flag typed at its default
    (`--on-nan stop`, `--autocast off`) changes nothing. The default is read with `get_default`, which
    gives the value on every click (an `Option.default` attribute is a sentinel for flags since 8.3)."""
    if not was_given(param.name, ctx):
        return False
    default = param.get_default(ctx)
    if default is not None:
        default = param.type_cast_value(ctx, default)
    return ctx.params.get(param.name) != default


def refuse_unused(names: tuple[str, ...], why: str) -> None:
    """One line when any of the options `names` (parameter names) was given a value other than its
    default: the command's current mode would ignore it."""
    ctx = click.get_current_context()
    given = [max(p.opts, key=len) for p in ctx.command.params if p.name in names and was_changed(p, ctx)]
    if given:
        raise DDLSError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} nothing with {why}; "
                        f"drop {'it' if len(given) == 1 else 'them'}")


def force_option(f):
    """--force: try a run that the size and time estimates (ddls.sampling.budget) would refuse."""
    @functools.wraps(f)
    def command(*args, force, **kwargs):
        from ..sampling.budget import allow_oversize

        with allow_oversize(force):
            return f(*args, **kwargs)

    return click.option("--force", is_flag=True,
                        help="Run even when it needs more memory, disk or time than the estimates allow.")(command)
