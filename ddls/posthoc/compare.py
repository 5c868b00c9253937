"""Post-hoc samplers side by side on one checkpoint: one table (quality, wall time, network
evaluations per kept sample) and one figure (the samples of each method).

Every method sees the same calibrated logit (fitted once, on held-out samples) and the
same seed; DDLS, DOT and DGflow also start from the same prior latents as the
generator row, so their rows differ only by what each method does with them.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..sampling.energy import LatentEnergy
from ..errors import DDLSError
from . import GENERATOR, default_config, make_target, run
from .registry import names

PRDC = ["precision", "recall", "density", "coverage"]  # ddls.metrics.prdc, in the space of EMD or FID
COLUMNS = ["method", "emd", "modes", "hq", "emd_lo", "emd_hi", *PRDC, "seconds", "evals_per_sample", "acceptance"]
IMAGE_COLUMNS = ["method", "fid", "fid_lo", "fid_hi", *PRDC, "seconds", "evals_per_sample", "acceptance"]
PRDC_INTERVALS = [f"{m}_{end}" for m in PRDC for end in ("lo", "hi")]  # in compare.csv, after the table's columns
# *_lo, *_hi: the metric's 95% bootstrap interval (ddls.metrics.intervals); None when not asked for


def parse_methods(text: str) -> list[str]:
    """Registered method names from a comma-separated list, each once, in the order given."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    known = names()
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise DDLSError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    return list(dict.fromkeys(methods))


def compare(energy: LatentEnergy, methods: list[str], options: dict, evaluate: Callable[[np.ndarray], dict], *,
            n: int, seed: int, calibration: str = "raw", calibration_n: int = 5000, finetune_steps: int = 2000,
            draw_real=None, data: str | None = None, progress: bool = False) -> tuple[list[dict], list[np.ndarray], dict]:
    """Rows (the generator alone first, then each method), the samples behind each row, and the calibration record.

    `options` are the flat per-method settings of `ddls.posthoc.default_config`; `data` names what draw_real
    draws (then the calibration's fit is kept in the user cache).
    """
    t0 = time.perf_counter()
    target = make_target(energy, calibration, draw_real, n=calibration_n, seed=seed, finetune_steps=finetune_steps,
                         data=data)
    record = dict(target.record)
    record["seconds"] = round(time.perf_counter() - t0, 3)
    rows, samples = [], []
    for method in [GENERATOR, *methods]:
        config = default_config(method, **options)
        t0 = time.perf_counter()
        result = run(method, target, n, config, seed=seed, draw_real=draw_real, progress=progress)
        seconds = time.perf_counter() - t0
        x = result.samples.numpy()
        if not np.isfinite(x).all():
            raise DDLSError(f"{method} produced NaN/inf samples; try a smaller step size for it")
        rows.append({"method": method, **evaluate(x), "seconds": round(seconds, 3),
                     "evals_per_sample": round(result.evaluations / n, 2),
                     "acceptance": result.info.get("acceptance"),
                     "settings": config.to_dict(), "info": result.info})
        samples.append(x)
    return rows, samples, record


def write_outputs(out: Path, rows: list[dict], samples: list[np.ndarray], reference: np.ndarray | None,
                  record: dict, title: str) -> None:
    """compare.csv (the table), compare.json (table, settings, calibration) and compare.png (samples).

    2-D samples are drawn as scatters over `reference` (data samples); images as a grid of the
    first 32 samples of each method, side by side (`reference` unused).
    """
    from ..io.outputs import write_csv, write_json
    from ..viz.plots import samples_figure_2d, samples_figure_images

    image = samples[0].ndim == 4
    columns = IMAGE_COLUMNS if image else COLUMNS
    write_csv(out / "compare.csv", [{c: r.get(c) for c in columns + PRDC_INTERVALS} for r in rows])
    write_json(out / "compare.json", {**record, "rows": rows})
    labels = [r["method"] for r in rows]
    if image:
        samples_figure_images(labels, [f"FID {r['fid']:.2f}" for r in rows], samples, out / "compare.png",
                              title=title, metrics=rows)
    else:
        samples_figure_2d(labels, rows, samples, reference, out / "compare.png", title=title)


def scoring_for(ckpt, model, energy, *, n: int, seed: int, resamples: int, features: str, stats: str | None,
                data: str | None, ref_n: int | None, classifier: str | None,
                note: Callable[[str], None] = lambda s: None):
    """(evaluate, reference points or None, scoring record, draw_real) for `compare` on this model:
    FID in `features` space for images (against `stats` or the data set's train split), EMD, modes and
    high-quality % for 2-D data (against `data`, a 2-D data name or a .npy of points, by default the model's);
    for both, precision, recall, density and coverage against n real points in the same space."""
    from ..data.real import real_source

    if len(energy.sample_shape) == 3:  # (C, H, W)
        from ..metrics.evaluate import image_columns, prdc_reference
        from ..metrics.fid_stats import scoring_reference
        from ..metrics.prdc import K

        extractor, ref, ref_meta = scoring_reference(features, energy.sample_shape, energy.device, stats=stats,
                                                     data=data or model.data, n=ref_n, classifier=classifier,
                                                     note=note)
        real = prdc_reference(extractor, n, ref_meta, data or model.data, ref_n=None if stats else ref_n, note=note)
        record = {"features": extractor.name, "feature_info": extractor.info, "reference": ref_meta,
                  "prdc": None if real is None else {"k": K, "reference_n": int(len(real))}}
        return ((lambda x: image_columns(x, ref, extractor, real, resamples=resamples, seed=seed)[0]), None, record,
                real_source(model, energy.sample_shape, data=data))
    from ..data.toy2d import dataset_for
    from ..metrics.evaluate import points_columns
    from ..metrics.points2d import reference_samples

    name = data or model.data
    dataset = dataset_for(data, model.data, energy.sample_shape, ckpt)
    return ((lambda x: points_columns(x, dataset, resamples=resamples, seed=seed)),
            reference_samples(dataset, min(n, 5000)),
            {}, real_source(model, energy.sample_shape, data=name))
