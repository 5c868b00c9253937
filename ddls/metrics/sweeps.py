"""Scored step-size sweeps, as `ddls sweep` runs them: the generator alone and DDLS at each eps,
scored by EMD, modes and high-quality % (2-D) or FID (images), written as CSV, JSON and figures."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import DDLSError
from ..io.outputs import write_csv, write_json
from ..sampling.driver import RunConfig
from ..sampling.sweep import best_row, chains_to_show, sweep as run_sweep

COLUMNS_2D = ["eps", "steps", "emd", "modes", "hq", "emd_lo", "emd_hi", "acceptance", "seconds"]
COLUMNS_IMAGES = ["eps", "steps", "fid", "n", "fid_lo", "fid_hi", "acceptance", "seconds"]
# *_lo, *_hi: a 95% bootstrap interval of the metric (ddls.metrics.intervals), from `resamples` resamples


def sweep_2d(ckpt: str, model, energy, base: RunConfig, eps_values: list[float], out: Path, record: dict, *,
             resamples: int = 100) -> tuple[list[dict], list[str], list[Path]]:
    """(rows, columns, files written) of a 2-D sweep against the data the checkpoint names."""
    from ..data.toy2d import get_dataset
    from ..metrics.points2d import evaluate, reference_samples
    from ..viz.plots import sweep_figure_2d

    if model.data is None:
        raise DDLSError(f"{ckpt} does not say which data it was trained on; sweep needs a 2-D or image ddls checkpoint")
    dataset = get_dataset(model.data)
    rows, samples = run_sweep(energy, base, list(eps_values), lambda x: evaluate(x, dataset, resamples=resamples, seed=base.seed), progress=True)
    write_csv(out / "sweep.csv", rows)
    write_json(out / "config.json", {**record, "data": model.data, "run": base.to_dict(), "resamples": resamples,
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
    from .fid_stats import fid_columns, scoring_reference

    extractor, ref, ref_meta = scoring_reference(features, energy.sample_shape, energy.device, stats=stats,
                                                 data=data or model.data, n=ref_n, classifier=classifier, note=note)

    def evaluate(x):
        columns = fid_columns(x, ref, extractor, resamples=resamples, seed=base.seed)
        return {"fid": columns.pop("fid"), "n": int(len(x)), **columns}

    rows, _ = run_sweep(energy, base, list(eps_values), evaluate, progress=True)
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
