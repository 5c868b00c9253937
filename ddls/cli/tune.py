"""`ddls tune`: parse the options, run `ddls.tuning.tune`, print the table, write TUNED.pt."""
from __future__ import annotations

import json

import click

from ..errors import DDLSError
from ..tuning.grid import AUTO, DEFAULT_METHODS, IMAGE_ONLY
from .common import DISC_HELP, SEED, echo_err, guard_output, model_option, was_given

TABLE = ["candidate", "stage", "n", "score", "score_lo", "score_hi", "vs_generator", "vs_generator_lo",
         "vs_generator_hi", "seconds", "evaluations", "status"]


@click.command()
@guard_output("out", inputs=("ckpt", "disc", "data", "stats", "classifier"))
@click.option("--ckpt", required=True, help="Checkpoint to tune: any format `ddls sample` reads.")
@click.option("--disc", default=None, help=DISC_HELP)
@model_option
@click.option("--label", type=click.IntRange(min=0), default=None, help="Class of a conditional model.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="TUNED.pt: the checkpoint (or a file naming it) with the winning recipe, for `ddls sample`.")
@click.option("--budget", default="auto", show_default=True,
              help="Most it may spend: minutes (20m or 20), seconds (90s), hours (1h) or network evaluations "
                   "(5e6evals); auto: 20 min on a CPU, 2 on a GPU.")
@click.option("--methods", default=AUTO, show_default=True,
              help=f"Methods to search (comma-separated; sir only when named); auto: {','.join(DEFAULT_METHODS)} "
                   f"({', '.join(IMAGE_ONLY)} on images only). The generator alone is always the baseline.")
@click.option("--calibrations", default="auto", show_default=True,
              help="Calibrations to search, each fitted once with --seed and tried with every candidate "
                   "(raw, platt, head; comma-separated); a recipe's calibration is refitted by `ddls sample`. "
                   "auto: head for a critic that is no logit (WGAN, hinge; raw where its head cannot be refitted), "
                   "raw for the rest.")
@click.option("--temperatures", default="1,0.3,0.1", show_default=True, help="DDLS temperatures to try.")
@click.option("--eps", "eps_values", default="1e-2,1e-3,1e-4", show_default=True,
              help="DDLS step sizes to try (MALA tries the first two).")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True, help="DDLS/MALA steps.")
@click.option("--n-start", type=click.IntRange(min=32), default=256, show_default=True,
              help="Samples per candidate in the first round (fewer when the budget calls for it).")
@click.option("--n-max", type=click.IntRange(min=32), default=2000, show_default=True,
              help="Samples per candidate in the largest round.")
@click.option("--n-report", type=click.IntRange(min=32), default=2000, show_default=True,
              help="Samples of the final report (fewer when the budget has run short).")
@click.option("--data", default=None,
              help="2-D: a .npy of your own real points (N, 2), split into a validation and a report half "
                   "(default: fresh draws of the checkpoint's data). Images: the data set (default: the one "
                   "the checkpoint names), train split to choose, test split to report.")
@click.option("--stats", type=click.Path(dir_okay=False), default=None,
              help="Images: validation statistics from `ddls stats` on the train split (default: computed).")
@click.option("--features", type=click.Choice(["domain", "inception"]), default="domain", show_default=True,
              help="Images: FID feature space.")
@click.option("--ref-n", type=click.IntRange(min=2), default=None,
              help="Images: reference images per split (default: all).")
@click.option("--classifier", type=click.Path(dir_okay=False), default=None,
              help="Images: domain-feature classifier (default: pretrained/fmnist_classifier.pt).")
@click.option("--bootstrap", "resamples", type=click.IntRange(min=2), default=100, show_default=True,
              help="Bootstrap resamples behind each interval.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows, the recipe and the report as JSON.")
def tune(ckpt, disc, factory, label, out, budget, methods, calibrations, temperatures, eps_values, steps, n_start,
         n_max, n_report, data, stats, features, ref_n, classifier, resamples, seed, chunk_size, device, as_json):
    """Search post-hoc samplers x step size x temperature for the best samples within a budget.

    Successive halving: every candidate on few samples, the better half on twice as many, and
    so on. Scores (EMD for 2-D, FID for images) carry 95% bootstrap intervals; the choice uses
    validation data, the report data the choice never saw. The winner is kept only if it beats
    the generator alone beyond its error bar; otherwise the recipe is the generator alone.
    `ddls sample --ckpt TUNED.pt` then runs the recipe (options given override it).
    """
    from ..sampling.run import load_energy
    from ..sampling.sweep import format_table
    from ..tuning import TuneConfig, write_tuned
    from ..tuning.grid import parse_calibrations, parse_methods
    from ..tuning.search import search

    chosen = parse_methods(methods)
    parse_calibrations(calibrations)  # a typo is refused before the model loads
    temps, eps = _numbers(temperatures, "temperatures"), _numbers(eps_values, "step sizes")
    _budget(budget, "cpu")
    model, energy = load_energy(ckpt, device, disc=disc, label=label, factory=factory)
    config = TuneConfig(_budget(budget, energy.device.type), n_start=min(n_start, n_max), n_max=n_max,
                        n_report=n_report, seed=seed, chunk_size=chunk_size, resamples=resamples)
    result = search(model, energy, config, methods=chosen, calibrations=calibrations, temperatures=temps, eps=eps,
                    steps=steps, data=data, stats=stats, features=features, ref_n=ref_n, classifier=classifier,
                    echo=echo_err)
    source = result.data
    record = {"ckpt": str(ckpt), "disc": disc, **({"factory": factory} if factory else {}), "data": source,
              "metric": result.metric, "improved": result.improved,
              "budget": {"amount": config.budget.amount, "unit": config.budget.unit}, "spent": result.spent,
              "seed": seed, "rounds": result.rounds, "report": result.report, "calibrations": result.calibrations,
              "validation": next(r for r in result.rows if r["status"] in ("chosen",))}
    form = write_tuned(ckpt, out, result.recipe, record, disc=disc)
    if as_json:
        click.echo(json.dumps({"metric": result.metric, "rows": result.rows, "recipe": result.recipe.to_dict(),
                               "improved": result.improved, "report": result.report, "spent": result.spent,
                               "budget": record["budget"], "calibrations": result.calibrations}))
    else:
        click.echo(f"validation {result.metric} (score; vs_generator: score minus the generator's, paired), "
                   f"95% intervals:")
        click.echo(format_table(result.rows, TABLE))
        click.echo(_report_line(result))
    if not result.improved:
        echo_err("no candidate beat the generator alone beyond its error bar: the recipe is the generator alone")
    what = "a copy of the checkpoint" if form == "copy" else f"a file naming {ckpt} by path and sha256"
    command = _sample_command(out, factory, data, result.recipe)
    echo_err(f"wrote {out} ({what}) with recipe {result.recipe.label}; `{command}` runs it")


def _sample_command(out, factory, data, recipe) -> str:
    """The `ddls sample` line that runs the recipe: your own factory again, and your points when it needs real ones."""
    from ..posthoc.registry import get
    from ..tuning.recipe import GENERATOR

    needs_real = recipe.calibration != "raw" or (recipe.method != GENERATOR and get(recipe.method).needs_real)
    return (f"ddls sample --ckpt {out}" + (f" --model {factory}" if factory else "")
            + (f" --data {data}" if data and needs_real else ""))


def _numbers(text: str, what: str) -> tuple[float, ...]:
    """A comma-separated list of positive numbers (ddls.tuning.grid.parse_list), with no empty item: `1,,2`
    is a typo, not two numbers."""
    from ..tuning.grid import parse_list

    if any(not item.strip() for item in str(text).split(",")):
        raise DDLSError(f"{what} {text!r} has an empty item; write numbers separated by single commas, e.g. 1,0.3")
    return parse_list(text, what)


def _budget(text: str, device_type: str):
    """The budget (ddls.tuning.grid.parse_budget: positive, finite, at most HUGE)."""
    from ..tuning.grid import parse_budget

    return parse_budget(text, device_type)


def _report_line(result) -> str:
    rep = result.report

    def show(s):
        return "-" if not s else f"{s['value']:.4g} [{s['lo']:.4g}, {s['hi']:.4g}]"

    line = (f"report ({rep['n']} samples, {rep['reference']}): generator {result.metric} {show(rep['generator'])}")
    if result.improved:
        line += f"; {result.recipe.label} {show(rep['recipe'])}; difference {show(rep['difference'])}"
    return line + _report_prdc(rep.get("prdc") or {}, result.recipe.label if result.improved else None)


def _report_prdc(prdc: dict, recipe: str | None) -> str:
    """The report's precision, recall, density and coverage, one line per row (empty when not scored)."""
    lines = []
    for label, key in (("generator", "generator"), (recipe, "recipe")):
        cols = prdc.get(key) if label else None
        if not cols or cols.get("precision") is None:
            continue
        cells = [f"{m} {cols[m]:.3f}" + (f" [{cols[f'{m}_lo']:.3f}, {cols[f'{m}_hi']:.3f}]" if f"{m}_lo" in cols
                                         else "") for m in ("precision", "recall", "density", "coverage")]
        lines.append(f"\n  {label}: " + ", ".join(cells))
    return "".join(lines)


def tuned_settings(ckpt: str, ctx: click.Context) -> tuple[dict, object]:
    """(the recipe in TUNED.pt as `ddls sample` parameters, less those given on the command line or in the
    environment; the recipe), or ({}, None) for a checkpoint without one. A recipe is checked as the options
    it becomes and for its time before anything runs (ddls.tuning.runnable)."""
    from ..tuning.runnable import read_runnable

    recipe = read_runnable(ckpt)
    if recipe is None:
        return {}, None
    return {k: v for k, v in recipe.sample_options().items() if not was_given(k, ctx)}, recipe
