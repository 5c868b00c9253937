"""The post-hoc samplers on the command line: their options (shared by `sample` and `compare`)
and the `compare` command."""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import click

from .common import POSITIVE, SEED, STEPS, count, echo_err, force_option, guard_output, image_metric_options
from ..errors import DDLSError



class _PercentOrNone(click.ParamType):
    name = "PERCENT|none"

    def convert(self, value, param, ctx):
        if value is None or str(value).lower() == "none":
            return None
        try:
            v = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number in [0, 100] or 'none'", param, ctx)
        if not 0 <= v <= 100:
            self.fail(f"{v:g} is not in [0, 100]", param, ctx)
        return v


POSTHOC_OPTIONS = [  # settings of the post-hoc samplers; each command gets them as one dict `posthoc`
    click.option("--calibration", type=click.Choice(["raw", "logistic", "isotonic", "finetune"]), default="raw",
                 show_default=True, help="Map the discriminator's score to a calibrated logit, fitted on held-out "
                                         "real and generated samples (post-hoc methods and compare)."),
    click.option("--calibration-n", type=click.IntRange(min=2), default=5000, show_default=True,
                 help="Held-out real and generated samples each, for logistic/isotonic calibration."),
    click.option("--calibration-steps", "finetune_steps", type=click.IntRange(min=1), default=2000,
                 show_default=True, help="Fine-tuning steps for --calibration finetune."),
    click.option("--drs-pilot", type=click.IntRange(min=1), default=10000, show_default=True,
                 help="DRS: generated samples whose largest logit first estimates the maximum."),
    click.option("--drs-gamma-percentile", type=_PercentOrNone(), default="95", show_default=True,
                 help="DRS: shift F by this percentile of each batch ('none': exact rejection sampling)."),
    click.option("--mh-chain-length", type=click.IntRange(min=1), default=640, show_default=True,
                 help="MH-GAN: generator proposals per output sample."),
    click.option("--dot-steps", type=click.IntRange(min=0), default=100, show_default=True, help="DOT: steps."),
    click.option("--dot-lr", type=POSITIVE, default=0.05, show_default=True, help="DOT: step size."),
    click.option("--dot-optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True),
    click.option("--dot-pairs", type=click.IntRange(min=1), default=100, show_default=True,
                 help="DOT: random latent pairs for the Lipschitz estimate k_eff."),
    click.option("--dgflow-steps", type=click.IntRange(min=0), default=25, show_default=True, help="DGflow: steps."),
    click.option("--dgflow-eta", type=POSITIVE, default=0.1, show_default=True, help="DGflow: step size."),
    click.option("--dgflow-gamma", type=click.FloatRange(min=0), default=0.01, show_default=True,
                 help="DGflow: entropy regularisation (noise sqrt(2 eta gamma))."),
    click.option("--dgflow-f", type=click.Choice(["KL", "JS", "logD"]), default="KL", show_default=True,
                 help="DGflow: f-divergence."),
]


def posthoc_options(f):
    keys = [o(lambda: None).__click_params__[0].name for o in POSTHOC_OPTIONS]  # the options' names

    @functools.wraps(f)
    def command(*args, **kwargs):
        return f(*args, posthoc={k: kwargs.pop(k) for k in keys}, **kwargs)

    for option in reversed(POSTHOC_OPTIONS):
        command = option(command)
    return command


def method_option(f):
    """--method: Langevin (ddls, mala) or a post-hoc sampler."""
    from ..posthoc import METHODS

    return click.option("--method", type=click.Choice(list(METHODS)), default="ddls", show_default=True,
                        help="ddls/mala: Langevin (--steps, --eps); drs, mhgan, dot, dgflow: the post-hoc "
                             "samplers, set by their --drs-/--mh-/--dot-/--dgflow- options.")(f)


@click.command()
@guard_output("out_dir", inputs=("ckpt", "stats", "classifier"), folder=True,
              default=lambda kw: f"compare-{Path(kw['ckpt']).stem}")
@force_option
@click.option("--ckpt", required=True, help="Checkpoint: 2-D or image, written by `ddls train` (or `ddls calibrate`).")
@click.option("--methods", default="ddls,drs,mhgan,dot,dgflow", show_default=True,
              help="Comma-separated: ddls, mala, drs, mhgan, dot, dgflow (the generator alone is always the first row).")
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
@image_metric_options
@posthoc_options
def compare(ckpt, methods, steps, eps, n, seed, chunk_size, device, out_dir, as_json, features, stats, data, ref_n,
            classifier, posthoc):
    """Compare post-hoc samplers on one checkpoint: quality, time, network evaluations per kept sample.

    2-D data: EMD, modes, high-quality %. Images: FID in --features space against --stats (or the
    statistics of the checkpoint's data set, computed on the fly).
    """
    from ..data.real import real_source
    from ..posthoc import CALIBRATION_KEYS
    from ..sampling.run import load_energy
    from ..posthoc.compare import COLUMNS, IMAGE_COLUMNS, compare as run_compare, parse_methods, write_outputs
    from ..sampling.sweep import format_table

    chosen = parse_methods(methods)
    model, energy = load_energy(ckpt, device)
    image = len(energy.sample_shape) == 3  # (C, H, W)
    if image:
        evaluate, reference, scoring = _fid_scorer(model, energy, features, stats, data, ref_n, classifier)
        draw_real = real_source(model, energy.sample_shape, data=data)
    else:
        from ..data.toy2d import get_dataset
        from ..metrics.points2d import evaluate as evaluate_2d, reference_samples

        if model.data is None:
            raise DDLSError(f"{ckpt} does not say which data it was trained on; compare scores 2-D ddls "
                            f"checkpoints and image checkpoints")
        dataset = get_dataset(model.data)
        evaluate, scoring = (lambda x: evaluate_2d(x, dataset)), {}
        reference = reference_samples(dataset, min(n, 5000))
        draw_real = real_source(model)
    needs_real = [m for m in chosen if m == "mhgan"] + ([f"--calibration {posthoc['calibration']}"]
                                                        if posthoc["calibration"] != "raw" else [])
    if draw_real is None and needs_real:
        raise DDLSError(f"{' and '.join(needs_real)} need real samples, and {ckpt} names no data set; "
                        f"pass --data (e.g. fashion-mnist) or leave them out")
    settings = {k: v for k, v in posthoc.items() if k not in CALIBRATION_KEYS}
    rows, samples, record = run_compare(
        energy, chosen, dict(settings, steps=steps, eps=eps, chunk_size=chunk_size), evaluate,
        n=n, seed=seed, calibration=posthoc["calibration"], calibration_n=posthoc["calibration_n"],
        finetune_steps=posthoc["finetune_steps"], draw_real=draw_real, progress=True)
    out = Path(out_dir or f"compare-{Path(ckpt).stem}")
    record = {"ckpt": str(ckpt), "data": model.data or data, "n": n, "seed": seed, **scoring, "calibration": record}
    scored = f", FID in {features} features" if image else ""
    write_outputs(out, rows, samples, reference, record,
                  title=f"{Path(ckpt).name}, {posthoc['calibration']} calibration, n={n}{scored}")
    columns = IMAGE_COLUMNS if image else COLUMNS
    table = [{c: r.get(c) for c in columns} for r in rows]
    click.echo(json.dumps(table) if as_json else format_table(table, columns))
    echo_err(f"wrote {out / 'compare.csv'}, {out / 'compare.json'} and {out / 'compare.png'}")


def _fid_scorer(model, energy, features, stats, data, ref_n, classifier):
    """(evaluate: images -> {'fid'}, None, record) scoring against --stats or the data set's train split."""
    from ..metrics.features import make_features
    from ..metrics.fid_stats import fid_to, reference_stats

    extractor = make_features(features, energy.device, classifier=classifier)
    extractor.check_shape(energy.sample_shape)  # before any sampling
    ref, ref_meta = reference_stats(extractor, stats=stats, data=data or model.data, n=ref_n, note=echo_err,
                                     progress=True)
    record = {"features": extractor.name, "feature_info": extractor.info, "reference": ref_meta}
    return (lambda x: {"fid": fid_to(x, ref, extractor)}), None, record
