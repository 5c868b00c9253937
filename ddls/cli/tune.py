"""`ddls tune`: parse the options, run `ddls.tuning.tune`, print the table, write TUNED.pt."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import DDLSError
from .common import DISC_HELP, echo_err, guard_output, was_given

TABLE = ["candidate", "stage", "n", "score", "score_lo", "score_hi", "vs_generator", "vs_generator_lo",
         "vs_generator_hi", "seconds", "evaluations", "status"]


@click.command()
@guard_output("out", inputs=("ckpt", "disc", "data", "stats", "classifier"))
@click.option("--ckpt", required=True, help="Checkpoint to tune: any format `ddls sample` reads.")
@click.option("--disc", default=None, help=DISC_HELP)
@click.option("--label", type=click.IntRange(min=0), default=None, help="Class of a conditional model.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="TUNED.pt: the checkpoint (or a file naming it) with the winning recipe, for `ddls sample`.")
@click.option("--budget", default="auto", show_default=True,
              help="Most it may spend: minutes (20m or 20), seconds (90s), hours (1h) or network evaluations "
                   "(5e6evals); auto: 20 min on a CPU, 2 on a GPU.")
@click.option("--methods", default="ddls,mala,dgflow,dot,drs,mhgan", show_default=True,
              help="Methods to search (comma-separated; sir only when named); the generator alone is always the "
                   "baseline.")
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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows, the recipe and the report as JSON.")
def tune(ckpt, disc, label, out, budget, methods, calibrations, temperatures, eps_values, steps, n_start, n_max,
         n_report, data, stats, features, ref_n, classifier, resamples, seed, chunk_size, device, as_json):
    """Search post-hoc samplers x step size x temperature for the best samples within a budget.

    Successive halving: every candidate on few samples, the better half on twice as many, and
    so on. Scores (EMD for 2-D, FID for images) carry 95% bootstrap intervals; the choice uses
    validation data, the report data the choice never saw. The winner is kept only if it beats
    the generator alone beyond its error bar; otherwise the recipe is the generator alone.
    `ddls sample --ckpt TUNED.pt` then runs the recipe (options given override it).
    """
    from ..sampling.run import load_energy
    from ..sampling.sweep import format_table
    from ..tuning import TuneConfig, default_grid, parse_budget, tune as run_tune, write_tuned
    from ..tuning.grid import is_auto, parse_calibrations, parse_list, parse_methods

    chosen = parse_methods(methods)
    parse_calibrations(calibrations)  # a typo is refused before the model loads
    temps, eps = parse_list(temperatures, "temperatures"), parse_list(eps_values, "step sizes")
    model, energy = load_energy(ckpt, device, disc=disc, label=label)
    config = TuneConfig(parse_budget(budget, energy.device.type), n_start=min(n_start, n_max), n_max=n_max,
                        n_report=n_report, seed=seed, chunk_size=chunk_size, resamples=resamples)
    validation, report, draw_real, source = _scorers(model, energy, data, stats, features, ref_n, classifier,
                                                     resamples, seed)
    if draw_real is None and "mhgan" in chosen:
        chosen = tuple(m for m in chosen if m != "mhgan")
        echo_err("leaving out mhgan: it starts its chains at real samples, and there are none to draw")
    calibrated = parse_calibrations(calibrations, energy.kind, draw_real is not None and energy.label is None)
    if draw_real is None and calibrated != ("raw",):
        raise DDLSError("calibrations other than raw are fitted on real samples, and there are none to draw; pass "
                        "--data or tune with --calibrations raw")
    if energy.kind == "wgan" and calibrated == ("raw",) and draw_real is not None:
        echo_err("note: this critic is no logit; --calibrations raw,head also tries it with its last layer refitted "
                 "as one (docs/results.md: on a WGAN-GP that made the recipe)")
    candidates = default_grid(chosen, temperatures=temps, eps=eps, steps=steps, calibrations=calibrated)
    echo_err(f"tuning {len(candidates)} candidates + the generator alone within {config.budget.describe()}")
    result = run_tune(model, candidates, validation, report, config, draw_real=draw_real, echo=echo_err,
                      optional=tuple(c for c in calibrated if c != "raw") if is_auto(calibrations) else ())
    record = {"ckpt": str(ckpt), "disc": disc, "data": source, "metric": result.metric, "improved": result.improved,
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
    echo_err(f"wrote {out} ({what}) with recipe {result.recipe.label}; `ddls sample --ckpt {out}` runs it")


def _report_line(result) -> str:
    rep = result.report

    def show(s):
        return "-" if not s else f"{s['value']:.4g} [{s['lo']:.4g}, {s['hi']:.4g}]"

    line = (f"report ({rep['n']} samples, {rep['reference']}): generator {result.metric} {show(rep['generator'])}")
    if result.improved:
        line += f"; {result.recipe.label} {show(rep['recipe'])}; difference {show(rep['difference'])}"
    return line


def _scorers(model, energy, data, stats, features, ref_n, classifier, resamples, seed):
    """(validation scorer, report scorer, draw_real, what the data is) for a 2-D or an image checkpoint."""
    from .._torch import derived_seed
    from ..data.real import real_source
    from ..tuning import scoring

    if len(energy.sample_shape) == 3:  # (C, H, W)
        from ..metrics.fid_stats import dataset_images, image_stats, scoring_reference

        name = data or model.data
        if name is None:
            raise DDLSError("the report needs the data set's test split, and the checkpoint names no data set; "
                            "pass --data (e.g. fashion-mnist)")
        extractor, train, _ = scoring_reference(features, energy.sample_shape, energy.device, stats=stats, data=name,
                                                n=ref_n, classifier=classifier, note=echo_err, progress=False)
        echo_err(f"computing {extractor.name} statistics of the {name} test split (the report's reference)")
        test = image_stats(dataset_images(name, "test")[:ref_n], extractor)
        return (scoring.fid_scorer(extractor, train, f"{name} train split", resamples),
                scoring.fid_scorer(extractor, test, f"{name} test split", resamples),
                real_source(model, energy.sample_shape, data=name), name)
    if data is not None:
        points = scoring.load_points(data, energy.sample_shape)
        val, rep = scoring.split_points(points, derived_seed(seed, 7_000_103))
        draw_half = scoring.half_draw(val)

        def draw_real(n, gen):
            import torch

            idx = torch.randint(len(val), (n,), generator=gen)
            return torch.as_tensor(val, dtype=torch.float32)[idx]

        return (scoring.points_scorer(draw_half, f"{data}: validation half ({len(val)})", resamples),
                scoring.points_scorer(scoring.half_draw(rep), f"{data}: report half ({len(rep)})", resamples),
                draw_real, str(data))
    if model.data is None:
        raise DDLSError("the checkpoint names no data to score against; pass --data points.npy (your real points)")
    from ..data.toy2d import get_dataset

    dataset = get_dataset(model.data)
    draw = scoring.dataset_draw(dataset)
    return (scoring.points_scorer(draw, f"fresh {model.data} draws (validation seeds)", resamples),
            scoring.points_scorer(draw, f"fresh {model.data} draws (report seed)", resamples),
            real_source(model), model.data)


def tuned_settings(ckpt: str, ctx: click.Context) -> tuple[dict, object]:
    """(the recipe in TUNED.pt as `ddls sample` parameters, less those given on the command line or in the
    environment; the recipe), or ({}, None) for a checkpoint without one."""
    from ..tuning.recipe import read_recipe

    recipe = read_recipe(ckpt)
    if recipe is None:
        return {}, None
    return {k: v for k, v in recipe.sample_options().items() if not was_given(k, ctx)}, recipe
