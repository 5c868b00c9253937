"""Step-size sweeps, as `ddls sweep` runs them: the generator alone, then DDLS at each eps, all from the
same initial latents, scored by EMD, modes and high-quality % (2-D) or FID (images), and written as
CSV, JSON and figures."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.outputs import write_csv, write_json
from .driver import RunConfig, sample
from .energy import LatentEnergy


def sweep(energy: LatentEnergy, base: RunConfig, eps_values: list[float],
          evaluate: Callable[[np.ndarray], dict], *, progress: bool = False) -> tuple[list[dict], list[np.ndarray]]:
    """Rows [{'eps': None|eps, 'steps', **metrics, 'acceptance', 'seconds'}] and the samples behind each row.

    The first row (eps None) is the generator alone on the latents every chain starts from.
    """
    from .budget import check_in_memory

    check_in_memory(base.n, energy.dim, energy.sample_shape, copies=len(eps_values) + 1)
    rows, samples = [], []
    for eps in [None, *eps_values]:
        config = replace(base, steps=0, eps=None) if eps is None else replace(base, eps=float(eps))
        t0 = time.perf_counter()
        result = sample(energy, config, progress=progress)
        seconds = time.perf_counter() - t0
        x = result.samples.numpy()
        row = {"eps": config.eps, "steps": config.steps, **evaluate(x)}
        row["acceptance"] = None if result.acceptance is None else float(result.acceptance.mean())
        row["seconds"] = round(seconds, 3)
        rows.append(row)
        samples.append(x)
    return rows, samples


def best_row(rows: list[dict], metric: str = "emd", lower_is_better: bool = True) -> dict:
    """The sampled row (eps not None) with the best finite metric."""
    cands = [r for r in rows if r["eps"] is not None and r.get(metric) is not None and np.isfinite(r[metric])]
    if not cands:
        return rows[0]
    return (min if lower_is_better else max)(cands, key=lambda r: r[metric])


def format_table(rows: list[dict], columns: list[str]) -> str:
    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    head = list(columns)
    body = [["generator" if (c == "eps" and r[c] is None) else cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def chains_to_show(energy: LatentEnergy, base: RunConfig, eps: float, n_chains: int, every: int):
    """A few chains at `eps`, recorded every `every` steps, for a picture of how samples move.

    Returns (trajectory (R, n_chains, *sample_shape) as numpy, record_steps).
    """
    config = replace(base, n=n_chains, chunk_size=n_chains, eps=float(eps), record_every=every)
    result = sample(energy, config)
    return result.trajectory.numpy(), result.record_steps


PRDC = ["precision", "recall", "density", "coverage"]  # ddls.metrics.prdc; their intervals are in sweep.csv
COLUMNS_2D = ["eps", "steps", "emd", "modes", "hq", "emd_lo", "emd_hi", *PRDC, "acceptance", "seconds"]
COLUMNS_IMAGES = ["eps", "steps", "fid", "n", "fid_lo", "fid_hi", *PRDC, "acceptance", "seconds"]
# *_lo, *_hi: a 95% bootstrap interval of the metric (ddls.metrics.intervals), from `resamples` resamples


def sweep_2d(ckpt: str, model, energy, base: RunConfig, eps_values: list[float], out: Path, record: dict, *,
             resamples: int = 100, data: str | None = None) -> tuple[list[dict], list[str], list[Path]]:
    """(rows, columns, files written) of a 2-D sweep against `data` (a 2-D data name or a .npy of points),
    by default the data the checkpoint names."""
    from ..data.toy2d import dataset_for
    from ..metrics.evaluate import points_columns
    from ..metrics.points2d import reference_samples
    from ..viz.plots import sweep_figure_2d

    name = data or model.data
    dataset = dataset_for(data, model.data, energy.sample_shape, ckpt)
    rows, samples = sweep(energy, base, list(eps_values), lambda x: points_columns(x, dataset, resamples=resamples, seed=base.seed), progress=True)
    write_csv(out / "sweep.csv", rows)
    write_json(out / "config.json", {**record, "data": name, "run": base.to_dict(), "resamples": resamples,
                                     "rows": rows})
    sweep_figure_2d(rows, samples, reference_samples(dataset, min(base.n, 5000)), out / "sweep.png",
                    title=f"{Path(ckpt).name}: {base.steps} {base.method} steps")
    return rows, COLUMNS_2D, [out / "sweep.csv", out / "sweep.png"]


def sweep_images(ckpt: str, model, energy, base: RunConfig, eps_values: list[float], out: Path, record: dict, *,
                 features: str, stats: str | None, data: str | None, ref_n: int | None, classifier: str | None,
                 grid_chains: int, grid_every: int, resamples: int = 100,
                 note: Callable[[str], None] = lambda s: None) -> tuple[list[dict], list[str], list[Path]]:
    """(rows, columns, files written) of an image sweep: FID in `features` space, and a picture of chains."""
    from ..viz.plots import chains_figure, sweep_figure_images
    from ..metrics.evaluate import image_columns, prdc_reference
    from ..metrics.fid_stats import scoring_reference

    extractor, ref, ref_meta = scoring_reference(features, energy.sample_shape, energy.device, stats=stats,
                                                 data=data or model.data, n=ref_n, classifier=classifier, note=note)
    real = prdc_reference(extractor, base.n, ref_meta, data or model.data, ref_n=None if stats else ref_n, note=note)

    def evaluate(x):
        columns = image_columns(x, ref, extractor, real, resamples=resamples, seed=base.seed)[0]
        return {"fid": columns.pop("fid"), "n": int(len(x)), **columns}

    rows, _ = sweep(energy, base, list(eps_values), evaluate, progress=True)
    best = best_row(rows, "fid")
    shown_eps = best["eps"] or eps_values[0]
    trajectory, record_steps = chains_to_show(energy, base, shown_eps, grid_chains, grid_every)
    write_csv(out / "sweep.csv", rows)
    write_json(out / "config.json", {**record, "data": model.data, "features": extractor.name,
                                     "feature_info": extractor.info, "reference": ref_meta,
                                     "run": base.to_dict(), "resamples": resamples, "rows": rows,
                                     "chains": {"eps": shown_eps, "n": grid_chains, "every": grid_every}})
    title = f"{Path(ckpt).name}: {base.steps} {base.method} steps, FID in {extractor.name} features"
    sweep_figure_images(rows, out / "sweep.png", "fid", title)
    chains_figure(trajectory, record_steps, out / "chains.png",
                  f"{Path(ckpt).name}: {grid_chains} chains at eps={shown_eps:g}")
    return rows, COLUMNS_IMAGES, [out / "sweep.csv", out / "sweep.png", out / "chains.png"]
