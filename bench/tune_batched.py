"""Samples scored per second of budget by `ddls tune`: candidates that share the networks batched (as the
command runs them) against every candidate alone, side by side in one run.

    OMP_NUM_THREADS=2 python bench/tune_batched.py                      # the shipped SNGAN, 3 min per mode
    python bench/tune_batched.py --ckpt G.pt --budget 5m --json

On one checkpoint, with the grid, calibration and seed `ddls tune` uses at its defaults, it runs the
search twice within the same short budget, batched first and then one by one, and prints for each:
round 0's samples per candidate, every round's n and candidates, the candidates run, the samples
scored, the seconds spent and samples scored per second of it. Then, from the same cost probes the
search runs before round 0, the samples per candidate round 0 would get at the default budget (20 min
on a CPU, 2 on a GPU), for each mode.

The reference features (train and test split), the calibration fit and the prior fit are computed once
before the timed runs (they sit in the user cache afterwards), so both modes spend their budget on
candidates.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def counting(scorer, seen: list):
    """The scorer, counting every sample it scores."""
    def prepare(n, seed):
        score = scorer.prepare(n, seed)

        def counted(x):
            seen.append(len(x))
            return score(x)

        return counted

    return replace(scorer, prepare=prepare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=str(ROOT / "pretrained" / "fmnist_sngan64.pt"))
    parser.add_argument("--budget", default="3m", help="each mode's budget (as `ddls tune --budget`)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from ddls.sampling.run import load_energy
    from ddls.tuning import TuneConfig, parse_budget
    from ddls.tuning.grid import DEFAULT_METHODS, FITTED_FIRST, default_grid, parse_calibrations
    from ddls.tuning.run import Entry, _first_round_size, _Meter, _Runner, cached_target, tune
    from ddls.tuning.scoring import scorers_for

    t0 = time.perf_counter()
    model, energy = load_energy(args.ckpt, args.device)
    validation, report, draw_real, source = scorers_for(model, energy, resamples=100, seed=args.seed, note=print)
    calibrations = parse_calibrations("auto", energy.kind, draw_real is not None and energy.label is None)
    for c in calibrations:  # fitted once, then read from the cache by both modes
        cached_target(model.energy(), c, draw_real, seed=args.seed, data=source)
    grid = default_grid(DEFAULT_METHODS if draw_real is not None else tuple(m for m in DEFAULT_METHODS
                                                                         if m not in ("mhgan", "prior-fit")),
                        calibrations=calibrations)
    fitter = _Runner(model, 1000, draw_real, _Meter(parse_budget("auto", energy.device.type)), args.seed, source)
    t_fit = time.perf_counter()
    for recipe in grid:  # fitted once here, like the calibration: both modes read the fit
        if recipe.method in FITTED_FIRST:
            fitter.sample(recipe, 1, args.seed)
    fit_seconds = time.perf_counter() - t_fit  # what a search at the default budget pays before round 0
    setup = time.perf_counter() - t0
    budget = parse_budget(args.budget, energy.device.type)
    default = parse_budget("auto", energy.device.type)
    rows = {}
    for mode, batched in (("batched", True), ("one by one", False)):
        seen: list = []
        config = TuneConfig(budget, seed=args.seed, batched=batched)
        result = tune(model, grid, counting(validation, seen), report, config, draw_real=draw_real, data=source)
        in_rounds = sum(r["n"] * (r["candidates"] + 1) for r in result.rounds)  # + 1: the generator's baseline
        search_seconds = result.rounds[-1]["spent"] if result.rounds else result.spent
        runner = _Runner(model, config.chunk_size, draw_real, _Meter(default), args.seed, source, batched)
        for c in calibrations:
            runner.calibrated(c)
        forecast = _first_round_size(runner, validation, [Entry(r) for r in grid], replace(config, budget=default),
                                     default.amount * (1 - config.report_share) - fit_seconds)
        ran = sum(1 for r in result.rows[1:] if r["stage"] is not None)
        rows[mode] = {"round0_n": result.rounds[0]["n"] if result.rounds else None,
                      "rounds": [(r["n"], r["candidates"]) for r in result.rounds],
                      "candidates_run": ran, "candidates": len(grid),
                      "samples_scored_in_rounds": in_rounds, "search_seconds": round(search_seconds, 1),
                      "samples_per_second": round(in_rounds / search_seconds, 3),
                      "recipe": result.recipe.label, "round0_n_at_default_budget": forecast}
    ratio = rows["batched"]["samples_per_second"] / rows["one by one"]["samples_per_second"]
    at_default = rows["batched"]["round0_n_at_default_budget"] / rows["one by one"]["round0_n_at_default_budget"]
    out = {"ckpt": args.ckpt, "budget": budget.describe(), "default_budget": default.describe(),
           "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "candidates": len(grid), "calibrations": list(calibrations), "setup_seconds": round(setup, 1),
           "prior_fit_seconds": round(fit_seconds, 1),
           "modes": rows, "samples_per_second_ratio": round(ratio, 2),
           "round0_n_ratio_at_default_budget": round(at_default, 2)}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.ckpt}: {len(grid)} candidates ({', '.join(calibrations)}), {budget.describe()} per mode, "
          f"{torch.get_num_threads()} threads (setup {setup:.0f}s: reference features, calibration, prior fit "
          f"{fit_seconds:.0f}s)")
    keys = ["round0_n", "rounds", "candidates_run", "samples_scored_in_rounds", "search_seconds",
            "samples_per_second", "round0_n_at_default_budget", "recipe"]
    width = max(map(len, keys))
    print(f"{'':{width}}  {'batched':>26}  {'one by one':>26}")
    for k in keys:
        print(f"{k:{width}}  {str(rows['batched'][k]):>26}  {str(rows['one by one'][k]):>26}")
    print(f"samples scored per second of budget: batched / one by one = {ratio:.2f}x; round 0's samples per "
          f"candidate at the default {default.describe()} budget: {at_default:.2f}x")


if __name__ == "__main__":
    main()
