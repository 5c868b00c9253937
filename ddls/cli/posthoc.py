"""The post-hoc samplers on the command line: their options (shared by `sample` and `compare`)
and the `compare` command. The methods, their options and the help that lists them are read
from ddls.posthoc.registry each time a command parses or shows help."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

import click

from .common import POSITIVE, SEED, STEPS, bootstrap_option, count, echo_err, force_option, guard_output, image_metric_options, model_option, was_given
from ..errors import DDLSError


def _calibrations() -> list[str]:
    from ..core.score_map import ALIASES, KINDS

    return [*KINDS, *ALIASES]


CALIBRATIONS = _calibrations()


def calibration_params() -> list[click.Option]:
    return [
        click.Option(["--calibration"], type=click.Choice(CALIBRATIONS),
                     default="raw", show_default=True,
                     help="Map the discriminator's score to a calibrated logit, fitted on held-out real and "
                          "generated samples (post-hoc methods and compare); logistic = platt; head refits D's "
                          "last layer exactly; dcd fine-tunes D against DDLS's own samples. The same code as "
                          "`ddls calibrate --method`."),
        click.Option(["--calibration-n"], type=click.IntRange(min=2), default=5000, show_default=True,
                     help="Real and generated samples each, for platt/isotonic/head calibration."),
        click.Option(["--calibration-steps", "finetune_steps"], type=click.IntRange(min=1), default=2000,
                     show_default=True, help="Most fine-tuning steps for --calibration finetune or dcd (early-stopped on "
                                             "held-out data, as in `ddls calibrate`)."),
    ]


def posthoc_params() -> list[click.Option]:
    """The settings of the post-hoc samplers as options: the calibration's, then each registered method's."""
    from ..posthoc.registry import methods
    from .common import bounded

    def kind(s, default):  # every number in a finite range, as bound_options gives the fixed options
        declared = s.type if s.type is not None else click.types.convert_type(None, default)
        return bounded(declared)

    calibration = calibration_params()
    for option in calibration:
        option.type = bounded(option.type)
    return calibration + [
        click.Option([s.flag, s.name], type=kind(s, m.default(s)), default=m.default(s), show_default=True,
                     help=s.help)
        for m in methods() for s in m.settings]


class PosthocCommand(click.Command):
    """A command that takes the post-hoc options of every method registered when it parses or shows help."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        help_option = self.get_help_option(ctx)
        own = [p for p in params if p is not help_option]
        taken = {p.name for p in own}
        extra = [p for p in posthoc_params() if p.name not in taken]
        from .environment import option_envvar

        for option in extra:  # DDLS_<COMMAND>_<OPTION>, as the fixed options are named
            option.envvar, option.allow_from_autoenv = option_envvar([self.name], option), False
        return own + extra + ([help_option] if help_option is not None else [])

    def registry_options(self) -> list[click.Option]:
        """The post-hoc options as they are now (for the list of known environment variables)."""
        taken = {p.name for p in self.params}
        return [p for p in posthoc_params() if p.name not in taken]


def refuse_other_methods(chosen, calibration: str) -> None:
    """One line when an option of a method (or calibration) that this run does not use was given:
    `--dot-steps 50 --method drs` would otherwise be ignored without a word."""
    from ..calibration.methods import canonical
    from ..posthoc.registry import methods

    fitted, tuned = "--calibration platt/isotonic/head", "--calibration finetune/dcd"
    owner = {s.name: (s.flag, m.name) for m in methods() for s in m.settings}
    owner.update({"calibration_n": ("--calibration-n", fitted), "finetune_steps": ("--calibration-steps", tuned)})
    used = set(chosen)
    kind = canonical(calibration)  # logistic is platt
    if kind in ("platt", "isotonic", "head"):
        used.add(fitted)
    if kind in ("finetune", "dcd"):
        used.add(tuned)
    stray = [(flag, who) for name, (flag, who) in owner.items() if who not in used and was_given(name)]
    if stray:
        flag, who = stray[0]
        raise DDLSError(f"{flag} is an option of {who}, which this run does not use (--method "
                        f"{','.join(chosen)}, --calibration {calibration}); drop it or use that method")


def warn_logit(methods, energy_kind: str, calibration: str) -> None:
    from ..posthoc import logit_warning

    for method in methods:
        line = logit_warning(method, energy_kind, calibration)
        if line:
            echo_err(line)


def posthoc_options(f):
    """Hands the command the post-hoc options as one dict `posthoc`; use with `cls=PosthocCommand`."""

    @functools.wraps(f)
    def command(*args, **kwargs):
        keys = [p.name for p in posthoc_params()]
        return f(*args, posthoc={k: kwargs.pop(k) for k in keys if k in kwargs}, **kwargs)

    return command


class MethodName(click.ParamType):
    """A registered post-hoc method, looked up when the value is parsed."""

    name = "method"

    def get_metavar(self, param, ctx=None) -> str:
        from ..posthoc.registry import names

        return "[" + "|".join(names()) + "]"

    def convert(self, value, param, ctx):
        from ..posthoc.registry import names

        if value in names():
            return value
        self.fail(f"{value!r} is not one of {', '.join(names())}", param, ctx)


class RegistryHelpOption(click.Option):
    """An option whose help is written when shown, from `help_from()`."""

    def __init__(self, *args, help_from: Callable[[], str], **kwargs):
        super().__init__(*args, **kwargs)
        self.help_from = help_from

    def get_help_record(self, ctx):
        self.help = self.help_from()
        return super().get_help_record(ctx)


def methods_help() -> str:
    """Each method with its summary and its own options."""
    from ..posthoc.registry import methods

    return "; ".join(f"{m.name}: {m.summary}" + (f" ({', '.join(s.flag for s in m.settings)})" if m.settings else "")
                     for m in methods() if m.listed)


def langevin_methods() -> list[str]:
    """The methods that run as chains of the sampling driver (a RunConfig), with its file output and resume."""
    from ..posthoc.registry import methods
    from ..sampling.driver import RunConfig

    return [m.name for m in methods() if m.listed and m.config is RunConfig]


def method_option(f):
    """--method: Langevin (ddls, mala) or another registered post-hoc sampler."""
    return click.option("--method", type=MethodName(), default="ddls", show_default=True, cls=RegistryHelpOption,
                        help_from=lambda: f"How to sample; ddls and mala take --steps and --eps. {methods_help()}."
                        )(f)


@click.command(cls=PosthocCommand)
@guard_output("out_dir", inputs=("ckpt", "stats", "classifier"), folder=True,
              default=lambda kw: f"compare-{Path(kw['ckpt']).stem}")
@force_option
@click.option("--ckpt", required=True, help="Checkpoint: 2-D or image, written by `ddls train` (or `ddls calibrate`).")
@model_option
@click.option("--methods", default="ddls,drs,mhgan,dot,dgflow,sir", show_default=True, cls=RegistryHelpOption,
              help_from=lambda: f"Comma-separated, the generator alone always being the first row. {methods_help()}.")
@click.option("--steps", type=count(1, STEPS), default=1000, show_default=True, help="ddls/mala: Langevin steps.")
@click.option("--eps", type=POSITIVE, default=1e-4, show_default=True, help="ddls/mala: Langevin step size.")
@click.option("--n", "n", type=count(1, 10 ** 9), default=5000, show_default=True, help="Samples per method.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--chunk-size", type=count(1, 10 ** 7), default=5000, show_default=True,
              help="Chains (or proposals) at once; bounds memory.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for compare.csv, compare.json and compare.png (default: compare-<ckpt name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
@bootstrap_option
@image_metric_options
@posthoc_options
def compare(ckpt, factory, methods, steps, eps, n, seed, chunk_size, device, out_dir, as_json, resamples, features,
            stats, data, ref_n, classifier, posthoc):
    """Compare post-hoc samplers on one checkpoint: quality, time, network evaluations per kept sample.

    2-D data: EMD, modes, high-quality % against the checkpoint's data or --data (a .npy of your own
    points). Images: FID in --features space against --stats (or the statistics of the checkpoint's
    data set, computed on the fly).
    """
    from ..posthoc import CALIBRATION_KEYS
    from ..posthoc.registry import get
    from ..sampling.run import load_energy
    from ..posthoc.compare import (COLUMNS, IMAGE_COLUMNS, compare as run_compare, parse_methods, scoring_for,
                                   write_outputs)
    from ..sampling.sweep import format_table

    chosen = parse_methods(methods)
    refuse_other_methods(chosen, posthoc["calibration"])
    model, energy = load_energy(ckpt, device, factory=factory)
    image = len(energy.sample_shape) == 3  # (C, H, W)
    warn_logit(chosen, energy.kind, posthoc["calibration"])
    evaluate, reference, scoring, draw_real = scoring_for(
        ckpt, model, energy, n=n, seed=seed, resamples=resamples, features=features, stats=stats, data=data,
        ref_n=ref_n, classifier=classifier, note=echo_err)
    needs_real = [m for m in chosen if get(m).needs_real] + ([f"--calibration {posthoc['calibration']}"]
                                                            if posthoc["calibration"] != "raw" else [])
    if draw_real is None and needs_real:
        raise DDLSError(f"{' and '.join(needs_real)} need real samples, and {ckpt} names no data set; "
                        f"pass --data (points.npy, your own real points; or a data set, e.g. fashion-mnist) or leave "
                        f"them out")
    settings = {k: v for k, v in posthoc.items() if k not in CALIBRATION_KEYS}
    rows, samples, record = run_compare(
        energy, chosen, dict(settings, steps=steps, eps=eps, chunk_size=chunk_size), evaluate,
        n=n, seed=seed, calibration=posthoc["calibration"], calibration_n=posthoc["calibration_n"],
        finetune_steps=posthoc["finetune_steps"], draw_real=draw_real, data=data or model.data, progress=True)
    out = Path(out_dir or f"compare-{Path(ckpt).stem}")
    record = {"ckpt": str(ckpt), **({"factory": factory} if factory else {}), "data": data or model.data, "n": n,
              "seed": seed, "resamples": resamples, **scoring, "calibration": record}
    scored = f", FID in {features} features" if image else ""
    write_outputs(out, rows, samples, reference, record,
                  title=f"{Path(ckpt).name}, {posthoc['calibration']} calibration, n={n}{scored}")
    columns = IMAGE_COLUMNS if image else COLUMNS
    table = [{c: r.get(c) for c in columns} for r in rows]
    click.echo(json.dumps(table) if as_json else format_table(table, columns))
    echo_err(f"wrote {out / 'compare.csv'}, {out / 'compare.json'} and {out / 'compare.png'}")
