"""A post-hoc method's samples into a file, as `ddls sample --method drs|mhgan|dot|dgflow|...` writes
them: calibrate the logit, draw, and write the .npz with a meta of everything that made it.
(The Langevin methods' runs, resumable and streamed, are ddls.sampling.run.run_sampling.)"""
from __future__ import annotations

import time
from typing import Callable

from ..sampling.run import SampleSummary


def run_posthoc_sampling(model, energy, method: str, out: str, *, n: int, seed: int, chunk_size: int, steps: int,
                         eps: float, noise_scale: float, posthoc: dict, meta: dict, data: str | None = None,
                         echo: Callable[[str], None] = lambda s: None) -> SampleSummary:
    """`method` (drs, mhgan, dot, dgflow, or ddls/mala through a calibrated logit) into `out` as .npz.

    `posthoc` holds the flat options of every method and the calibration (`calibration`,
    `calibration_n`, `finetune_steps`). data: real samples' source (a data name or a .npy of points) when
    the checkpoint names none or the user chose other."""
    from ..data.real import real_source
    from ..io.outputs import write_npz
    from ..sampling.budget import check_disk, check_in_memory
    from . import CALIBRATION_KEYS, default_config, make_target, run

    check_in_memory(n, energy.dim, energy.sample_shape)
    check_disk(out, n, energy.dim, energy.sample_shape)
    draw_real = real_source(model, energy.sample_shape, data=data)
    settings = {k: v for k, v in posthoc.items() if k not in CALIBRATION_KEYS}
    config = default_config(method, chunk_size=chunk_size, steps=steps, eps=eps, noise_scale=noise_scale, **settings)
    t0 = time.perf_counter()
    target = make_target(energy, posthoc["calibration"], draw_real, n=posthoc["calibration_n"], seed=seed,
                         finetune_steps=posthoc["finetune_steps"], data=data or model.data)
    record = target.record
    result = run(method, target, n, config, seed=seed, draw_real=draw_real, progress=True)
    wall = time.perf_counter() - t0
    meta.update(method=method, data=data or model.data, energy=energy.kind, format=(model.meta or {}).get("format"),
                settings=config.to_dict(), n=n, seed=seed, calibration=record, info=result.info,
                evaluations=result.evaluations, seconds=round(wall, 3))
    write_npz(out, result.arrays(), meta)
    extra = f", acceptance {result.info['acceptance']:.3f}" if "acceptance" in result.info else ""
    echo(f"wrote {out}: {n} samples by {method} in {wall:.1f}s, "
         f"{result.evaluations / n:.4g} network evaluations per sample{extra}")
    return SampleSummary(out, n, steps, wall, acceptance=result.info.get("acceptance"))
