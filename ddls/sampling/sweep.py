"""Step-size sweeps: the generator alone, then DDLS at each eps, all from the same initial latents."""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import numpy as np

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
