"""`ddls tune`'s work: successive halving over candidate recipes within a budget, then a report on
data the choice never saw.

Round r runs every surviving candidate on n_r samples from the same latents (seed of round r),
scores each against the round's validation reference with a bootstrap interval, and keeps the
better half by score; n doubles each round (up to n_max) while the next round's forecast cost
fits the search share of the budget. When the whole half does not fit, as many of its best as
fit go on (at least the best one, against the generator, at a larger n). The generator alone
runs in every round as the baseline: each candidate's `vs_generator` is the paired bootstrap
interval of its score minus the generator's (ddls.metrics.intervals.difference). The best
finalist becomes the recipe only if that interval lies below 0; otherwise the recipe is the
generator alone. The report then scores the recipe and the generator on fresh latents against
the report reference.

Candidates that share the networks run as one batch (ddls.sampling.batched: every DDLS/MALA setting
of a calibration in one set of chains; ddls.posthoc.dgflow / dot: the settings of one flow), each
with the samples it would give alone; a batch runs as many of its candidates as the budget's forecast
holds. Calibration fits are kept in the user cache (`cached_target`, ddls.io.cache).

The budget counts wall time (sampling and scoring, after the references are loaded) or
network evaluations (passes through G and D, as ddls.posthoc counts them). Calibrations other
than raw are fitted once, before round 0, and their cost comes out of the search's share.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from .._torch import derived_seed
from ..errors import DDLSError
from ..metrics.intervals import Bootstrapped, Score, difference
from .grid import BATCHED_KERNELS, FITTED_FIRST, Budget, evaluations_per_sample
from .recipe import GENERATOR, Recipe
from .scoring import Scorer, finalist_status

VALIDATION_STREAM = 7_000_101  # keys of the rounds' and the report's random streams (see derived_seed)
REPORT_STREAM = 7_000_102
PROBE_N = 64  # chains of the probe that measures seconds per network evaluation
RANK_ROUNDS = 3  # rounds of round 0's cost the budget must hold before round 0 is raised to the metric's rank_n


@dataclass(frozen=True)
class TuneConfig:
    budget: Budget
    n_start: int = 256  # samples per candidate in round 0 (fewer when the budget calls for it)
    n_max: int = 2000  # samples per candidate in the largest round
    n_report: int = 2000  # samples of the report (fewer when the budget has run short)
    seed: int = 0
    chunk_size: int = 1000
    resamples: int = 100  # bootstrap resamples per score
    report_share: float = 0.25  # of the budget, kept for the report
    n_floor: int = 32  # no round or report below this
    batched: bool = True  # candidates that share the networks run as one batch (False: one by one, to compare)

    def __post_init__(self):
        if not (self.n_floor <= self.n_start <= self.n_max) or self.n_report < self.n_floor:
            raise DDLSError(f"need {self.n_floor} <= first round ({self.n_start}) <= largest round "
                            f"({self.n_max}) and a report of at least {self.n_floor} samples")
        if self.resamples < 2:
            raise DDLSError(f"intervals need at least 2 bootstrap resamples, got {self.resamples}")


@dataclass
class Entry:
    """One candidate's progress through the rounds."""

    recipe: Recipe
    stage: int | None = None  # last round it ran in
    n: int = 0
    score: Score | None = None
    vs_generator: Score | None = None
    seconds: float = 0.0
    evaluations: int = 0
    status: str = "not run: budget"
    last_cost: float = 0.0  # what its last round cost, in budget units

    def row(self) -> dict:
        score, vs = self.score, self.vs_generator
        return {"candidate": self.recipe.label, "method": self.recipe.method, "temperature": self.recipe.temperature,
                "settings": dict(self.recipe.options), "stage": self.stage, "n": self.n,
                "score": None if score is None else score.value, "score_lo": None if score is None else score.lo,
                "score_hi": None if score is None else score.hi,
                "vs_generator": None if vs is None else vs.value, "vs_generator_lo": None if vs is None else vs.lo,
                "vs_generator_hi": None if vs is None else vs.hi,
                "seconds": round(self.seconds, 3), "evaluations": self.evaluations, "status": self.status}


@dataclass
class TuneResult:
    metric: str
    rows: list[dict]  # the generator first, then every candidate
    recipe: Recipe
    improved: bool  # a candidate beat the generator beyond its error bar (on validation data)
    report: dict  # the recipe and the generator on the report data
    budget: Budget
    spent: float  # in the budget's unit
    rounds: list[dict] = field(default_factory=list)
    calibrations: dict = field(default_factory=dict)  # what each searched calibration fitted
    data: str | None = None  # what the candidates were scored against (ddls.tuning.search sets it)


class _Meter:
    def __init__(self, budget: Budget):
        self.budget, self.t0, self.evaluations = budget, time.perf_counter(), 0

    def spent(self) -> float:
        return time.perf_counter() - self.t0 if self.budget.unit == "seconds" else float(self.evaluations)


class _Runner:
    """Runs recipes on one model: each calibration fitted once (at T = 1, with the search's seed, as
    `ddls sample --seed` refits it from TUNED.pt), one logit per (calibration, temperature)."""

    def __init__(self, model, chunk_size: int, draw_real, meter: _Meter, seed: int = 0, data: str | None = None,
                 batched: bool = True):
        self.model, self.chunk_size, self.draw_real, self.meter, self.seed = model, chunk_size, draw_real, meter, seed
        self.data = data  # what draw_real draws (a data set, a file): with it, calibration fits are cached
        self.batched = batched
        self.per_sample: dict[int, float] = {}  # forecast cost of one sample, by id(entry), until it has run
        self._calibrated, self._targets = {}, {}

    def calibrated(self, calibration: str):
        """The T = 1 target of `calibration`, fitted on first use (its passes through D counted), or read
        from the user cache when this checkpoint was fitted so on the same data and seed before."""
        if calibration not in self._calibrated:
            target = cached_target(self.model.energy(), calibration, self.draw_real, seed=self.seed, data=self.data)
            record = target.record
            self.meter.evaluations += record["evaluations"]
            self._calibrated[calibration] = (target, record["calibration"])
        return self._calibrated[calibration][0]

    def target(self, temperature: float, calibration: str = "raw"):
        from dataclasses import replace

        key = (temperature, calibration)
        if key not in self._targets:
            base = self.calibrated(calibration)
            self._targets[key] = replace(base, energy=base.energy.replaced(temperature=temperature))
        return self._targets[key]

    def records(self) -> dict:
        """What each calibration fitted, by name."""
        return {name: record for name, (_, record) in self._calibrated.items()}

    def batch_key(self, recipe: Recipe) -> tuple | None:
        """Candidates with one key run as one batch of chains (ddls.sampling.batched): Langevin settings on
        one calibration's networks with the same number of steps; None for a candidate that runs alone."""
        from ..posthoc import default_config

        if not self.batched or recipe.method not in (*BATCHED_KERNELS, *FLOWS):
            return None
        config = default_config(recipe.method, chunk_size=self.chunk_size, **recipe.options)
        if recipe.method in FLOWS:  # the settings of one flow but its step size
            if recipe.method == "dot" and config.optimizer != "sgd":
                return None
            shared = {k: v for k, v in config.to_dict().items() if k != FLOWS[recipe.method][0]}
            return (recipe.method, recipe.calibration, recipe.temperature, tuple(sorted(shared.items())))
        return ("langevin", recipe.calibration, config.steps, config.noise_scale)

    def sample_batch(self, recipes: list[Recipe], n: int, seed: int) -> list[tuple[np.ndarray | DDLSError, int]]:
        """Each recipe's samples (or the error that stopped it) and evaluations, from one batch of chains:
        the samples `sample` gives each recipe alone, to float tolerance."""
        from ..posthoc import default_config
        from ..sampling.batched import ChainSetting, sample_settings

        if recipes[0].method in FLOWS:
            return self._flow_batch(recipes, n, seed)
        out: list = [None] * len(recipes)
        settings, configs, where = [], [], []
        for i, recipe in enumerate(recipes):
            config = default_config(recipe.method, chunk_size=self.chunk_size, **recipe.options)
            try:
                energy = self.target(recipe.temperature, recipe.calibration).as_energy()
            except DDLSError as exc:
                out[i] = (exc, 0)
                continue
            settings.append(ChainSetting(energy, BATCHED_KERNELS[recipe.method], config.eps))
            configs.append(config)
            where.append(i)
        if settings:
            steps, noise = configs[0].steps, configs[0].noise_scale
            runs = sample_settings(settings, n, steps=steps, seed=seed, noise_scale=noise, chunk_size=self.chunk_size)
            for i, config, run in zip(where, configs, runs):
                evaluations = 2 * n * (steps + 1)  # as ddls.posthoc.langevin counts them
                self.meter.evaluations += evaluations
                if run.non_finite:
                    out[i] = (DDLSError(f"energy became NaN or inf by step {run.first_bad} in {run.non_finite} "
                                        f"chain(s) at eps={config.eps:g}; try a smaller eps"), evaluations)
                else:
                    out[i] = (run.samples.numpy(), evaluations)
        return out

    def _flow_batch(self, recipes: list[Recipe], n: int, seed: int) -> list[tuple[np.ndarray | DDLSError, int]]:
        """DGflow or DOT settings that differ only in step size, as one batch (the method's own batched
        sampler, FLOWS)."""
        from ..posthoc import default_config

        method = recipes[0].method
        field_name, batched = FLOWS[method]
        configs = [default_config(method, chunk_size=self.chunk_size, **r.options) for r in recipes]
        steps = [getattr(c, field_name) for c in configs]
        try:
            target = self.target(recipes[0].temperature, recipes[0].calibration)
            if not target.calibration.differentiable:
                raise DDLSError(f"{method} follows gradients of d, and {target.calibration.kind} calibration has none")
            runs = batched()(target, n, configs[0], steps, seed=seed)
        except DDLSError as exc:
            return [(exc, 0)] * len(recipes)
        out = []
        for step, run in zip(steps, runs):
            self.meter.evaluations += run.evaluations
            finite = bool(torch.isfinite(run.latents).all())
            out.append((run.samples.numpy() if finite else
                        DDLSError(f"{method} latents became NaN/inf; try a smaller {field_name} (got {step:g})"),
                        run.evaluations))
        return out

    def sample(self, recipe: Recipe, n: int, seed: int) -> tuple[np.ndarray, int]:
        from ..posthoc import default_config, run

        config = default_config(recipe.method, chunk_size=self.chunk_size, **recipe.options)
        result = run(recipe.method, self.target(recipe.temperature, recipe.calibration), n, config, seed=seed,
                     draw_real=self.draw_real)
        self.meter.evaluations += result.evaluations
        return result.samples.numpy(), result.evaluations

    def run(self, entry: Entry, n: int, seed: int, score: Callable[[np.ndarray], Bootstrapped], stage: int,
            baseline: Bootstrapped | None = None) -> Bootstrapped | None:
        """Sample and score `entry` for one round; None (and a status saying why) when it failed."""
        t0, before = time.perf_counter(), self.meter.evaluations
        try:
            x, _ = self.sample(entry.recipe, n, seed)
        except DDLSError as exc:
            x = exc
        return self._score(entry, x, n, score, stage, baseline, time.perf_counter() - t0,
                           self.meter.evaluations - before)

    def run_batch(self, entries: list[Entry], n: int, seed: int, score: Callable[[np.ndarray], Bootstrapped],
                  stage: int, baseline: Bootstrapped | None = None) -> None:
        """`run` for candidates of one batch key: sampled together, each scored on its own; the batch's
        time is shared out by each one's evaluations."""
        t0 = time.perf_counter()
        try:
            drawn = self.sample_batch([e.recipe for e in entries], n, seed)
        except DDLSError as exc:
            drawn = [(exc, 0)] * len(entries)
        seconds = time.perf_counter() - t0
        total = sum(evaluations for _, evaluations in drawn)
        for entry, (x, evaluations) in zip(entries, drawn):
            share = evaluations / total if total else 1 / len(entries)
            self._score(entry, x, n, score, stage, baseline, seconds * share, evaluations)

    def _score(self, entry: Entry, x: np.ndarray | DDLSError, n: int, score: Callable[[np.ndarray], Bootstrapped],
               stage: int, baseline: Bootstrapped | None, seconds: float, evaluations: int) -> Bootstrapped | None:
        entry.stage, entry.n, entry.score, entry.vs_generator = stage, n, None, None
        t0 = time.perf_counter()
        try:
            if isinstance(x, DDLSError):
                raise x
            if not np.isfinite(x).all():
                raise DDLSError("samples became NaN/inf")
            scored = score(x)
        except DDLSError as exc:
            scored, entry.status = None, f"failed: {str(exc)[:80]}"
        seconds += time.perf_counter() - t0
        entry.seconds += seconds
        entry.evaluations += evaluations
        entry.last_cost = seconds if self.meter.budget.unit == "seconds" else evaluations
        if scored is not None:
            entry.score, entry.status = scored.score, "ran"
            if baseline is not None:
                entry.vs_generator = difference(scored, baseline)
        return scored

    def forecast(self, entry: Entry, n: int) -> float:
        """What running `entry` on n samples will cost: its last round's cost scaled to n, or before it has
        run the probe's forecast (0 when there is none)."""
        if entry.n and entry.last_cost:
            return entry.last_cost * n / entry.n
        return self.per_sample.get(id(entry), 0.0) * n

    def run_round(self, entries: list[Entry], n: int, seed: int, score: Callable[[np.ndarray], Bootstrapped],
                  stage: int, baseline: Bootstrapped, limit: float) -> None:
        """Every entry of a round: those of one batch key as one batch, the others one by one, each
        group started only while the budget lasts."""
        for group in batches(entries, self.batch_key):
            left = limit - self.meter.spent()
            fits = 0 if left < 0 else max(1, _prefix_within([self.forecast(e, n) for e in group], left))
            for entry in group[fits:]:  # a batch runs only those of its candidates that fit what is left
                entry.status = f"not run: budget spent in round {stage}"
            group = group[:fits]
            if not group:
                continue
            if len(group) == 1:
                self.run(group[0], n, seed, score, stage, baseline)
            else:
                self.run_batch(group, n, seed, score, stage, baseline)


def _dgflow_batched():
    from ..posthoc.dgflow import sample_etas

    return sample_etas


def _dot_batched():
    from ..posthoc.dot import sample_lrs

    return sample_lrs


# post-hoc methods whose settings of one flow run as one batch: the config field they differ in, and the
# batched sampler (imported when used)
FLOWS = {"dgflow": ("eta", _dgflow_batched), "dot": ("lr", _dot_batched)}
CALIBRATION_N = 5000  # real and generated samples of a fit (ddls.posthoc.make_target's default)


def cached_target(energy, calibration: str, draw_real, *, seed: int, data: str | None):
    """ddls.posthoc.make_target's fit on CALIBRATION_N samples, kept in the user cache when `data` names the
    real source: a later search, compare or sample of the same checkpoint reads it instead of refitting."""
    from ..posthoc import make_target

    return make_target(energy, calibration, draw_real, n=CALIBRATION_N, seed=seed, data=data)


def _prefix_within(costs: list[float], left: float) -> int:
    """How many of the first costs add up to at most `left`."""
    total = 0.0
    for k, cost in enumerate(costs):
        total += cost
        if total > left:
            return k
    return len(costs)


def batches(entries: list[Entry], key: Callable[[Recipe], tuple | None]) -> list[list[Entry]]:
    """Entries grouped by batch key, each group where its first member stood; no key: a group of one."""
    groups: dict = {}
    for i, entry in enumerate(entries):
        k = key(entry.recipe)
        groups.setdefault(("alone", i) if k is None else k, []).append(entry)
    return list(groups.values())


def _first_round_size(runner: _Runner, validation: Scorer, entries: list[Entry], config: TuneConfig,
                      limit: float) -> int:
    """Round 0's n: all rounds (about log2 of the candidates, each costing about as much as round 0)
    should fit `limit`; round 0 is raised to the metric's rank_n when RANK_ROUNDS rounds of that size
    fit, so the choice starts where the metric ranks and the last round still doubles twice. (A round 0
    at rank_n with no round after it did worse on the image models: the last round's n decides "beyond
    noise"; docs/results.md.) Time budgets first measure seconds per evaluation and per scored sample:
    one by one, and for each batch of candidates (ddls.sampling.batched) at the size it will run at."""
    groups = batches(entries, runner.batch_key)
    rates = {id(e): 1.0 for e in entries}
    per_scored = 0.0
    if config.budget.unit == "seconds":
        probe = Recipe("ddls", 1.0, {"steps": 1, "eps": 1e-4})
        for _ in range(2):  # the first pass pays for imports and warm-up; the second is timed
            t0 = time.perf_counter()
            x, evaluations = runner.sample(probe, PROBE_N, config.seed)
            rate = (time.perf_counter() - t0) / evaluations
            t0 = time.perf_counter()
            validation.stage(PROBE_N, config.seed)(x)
            per_scored = (time.perf_counter() - t0) / PROBE_N
        rates = {id(e): rate for e in entries}
        for group in groups:
            if len(group) > 1:  # the whole batch, as many chains as round 0 would give it, 1 and 3 steps
                rate = _batch_rate(runner, group, config)
                rates.update({id(e): rate for e in group})
    runner.per_sample = {id(e): rates[id(e)] * evaluations_per_sample(e.recipe, config.n_start, fitted=True)
                         + per_scored
                         for e in entries}
    per_sample = sum(runner.per_sample.values())
    rounds = math.ceil(math.log2(max(len(entries) - 1, 1))) + 1
    fit = limit / (rounds * per_sample) if per_sample > 0 else config.n_start
    n = int(min(config.n_start, max(config.n_floor, fit)))
    if n < validation.rank_n <= config.n_start and RANK_ROUNDS * validation.rank_n * per_sample <= limit:
        n = validation.rank_n
    return n


def _batch_rate(runner: _Runner, group: list[Entry], config: TuneConfig) -> float:
    """Seconds per network evaluation of a batch's steps: the batch run for 1 and for 3 steps, the
    difference taken so that what a run costs besides its steps (the start, the final decode) drops out."""
    key = {"dgflow": "dgflow_steps", "dot": "dot_steps"}.get(group[0].recipe.method, "steps")
    n = max(1, min(config.n_start, config.chunk_size // len(group)))
    spent = []
    for steps in (1, 3):
        recipes = [replace(e.recipe, options={**e.recipe.options, key: steps}) for e in group]
        t0 = time.perf_counter()
        drawn = runner.sample_batch(recipes, n, config.seed)
        spent.append((time.perf_counter() - t0, sum(ev for _, ev in drawn)))
    (t1, e1), (t3, e3) = spent
    return (t3 - t1) / (e3 - e1) if t3 > t1 and e3 > e1 else t3 / max(e3, 1)


def tune(model, candidates: list[Recipe], validation: Scorer, report: Scorer, config: TuneConfig, *,
         draw_real=None, echo: Callable[[str], None] = lambda s: None, optional: tuple[str, ...] = (),
         data: str | None = None) -> TuneResult:
    """Search `candidates` (the generator alone is always the baseline) on `model`; see the module docstring.

    data: what draw_real draws (a data set's name, a points file): calibration fits are then cached.

    optional: calibrations chosen for the user ('auto'); where one cannot be fitted to this D, its
    candidates run on the raw score instead, with a note (one the user named stops the search with
    its reason)."""
    if not candidates:
        raise DDLSError("no candidates to tune: give at least one method")
    meter = _Meter(config.budget)
    runner = _Runner(model, config.chunk_size, draw_real, meter, config.seed, data, config.batched)
    limit = config.budget.amount * (1 - config.report_share)
    generator = Entry(Recipe(GENERATOR))
    for calibration in dict.fromkeys(c.calibration for c in candidates):  # fitted first: the rounds get what is left
        try:
            runner.calibrated(calibration)
        except DDLSError as exc:
            if calibration not in optional:
                raise
            moved = [replace(c, calibration="raw") if c.calibration == calibration else c for c in candidates]
            kept: dict[str, Recipe] = {}
            for c in moved:  # a recipe already searched raw is kept once, where it first stood
                kept.setdefault(c.label, c)
            candidates = list(kept.values())
            runner.calibrated("raw")
            echo(f"searching the raw score instead of calibration {calibration}: {exc}")
            continue
        if calibration != "raw":
            echo(f"calibration {calibration}: {_fitted(runner.records()[calibration])} ({_spent(meter)} spent)")
    for recipe in {c.label: c for c in candidates if c.method in FITTED_FIRST}.values():
        try:  # fitted once here; the rounds read the fit from memory (or the user cache)
            runner.sample(recipe, 1, config.seed)
            echo(f"{recipe.label}: fitted ({_spent(meter)} spent)")
        except DDLSError as exc:
            echo(f"{recipe.label}: not fitted: {exc}")
    entries = [Entry(c) for c in candidates]
    n = _first_round_size(runner, validation, entries, config, limit - meter.spent())
    if n < min(validation.rank_n, config.n_start):
        echo(f"note: round 0 gets {n} samples per candidate, fewer than the {validation.rank_n} at which "
             f"{validation.metric.upper()} ranks candidates well; a larger --budget or fewer candidates "
             f"(--methods, --temperatures, --eps) choose more surely")
    alive, stage, rounds = entries, 0, []
    while True:
        seed = derived_seed(config.seed, VALIDATION_STREAM, stage)
        score = validation.stage(n, seed)
        baseline = runner.run(generator, n, seed, score, stage)
        if baseline is None:
            raise DDLSError(f"the generator alone could not be scored ({generator.status})")
        runner.run_round(alive, n, seed, score, stage, baseline, limit)
        ran = sorted((e for e in alive if e.stage == stage and e.score is not None), key=lambda e: e.score.value)
        rounds.append({"round": stage, "n": n, "candidates": len(ran), "spent": round(meter.spent(), 3)})
        echo(f"round {stage}: {len(ran)} candidate(s) on {n} samples; best {ran[0].recipe.label if ran else '-'}"
             f" ({config.budget.describe()} budget, {_spent(meter)} spent)")
        not_run = sum(e.stage != stage for e in alive)  # failed candidates ran; these never did
        if stage == 0 and not_run == len(alive):  # a file saying "the generator alone" would claim a search
            raise DDLSError(f"the {config.budget.describe()} budget was spent before any candidate ran "
                            f"({_spent(meter)} on calibrations and the generator's round-0 baseline); give a larger "
                            f"--budget")
        if stage == 0 and not_run:
            echo(f"note: {not_run} of {len(alive)} candidates not run: the budget was spent in round 0; "
                 f"give a larger --budget to search them all")
        if len(ran) <= 1:
            break
        keep = ran[:math.ceil(len(ran) / 2)]
        for entry in ran[len(keep):]:
            entry.status = f"out after round {stage}"
        n_next = min(2 * n, config.n_max)
        fits = _fitting(keep, generator, n_next / n, limit - meter.spent())
        if fits == 0 or (fits == 1 and n_next == n):  # nothing more to learn within the budget
            ran = keep
            break
        for entry in keep[fits:]:
            entry.status = f"out after round {stage}: budget"
        alive, n, stage = keep[:fits], n_next, stage + 1
    for entry in ran:
        entry.status = "finalist"
    best = ran[0] if ran else None
    improved = best is not None and best.vs_generator is not None and best.vs_generator.hi < 0
    if best is not None:
        best.status = finalist_status(best.vs_generator)
    recipe = best.recipe if improved else Recipe(GENERATOR)
    generator.status = "baseline" if improved else "chosen"
    shown = _report(runner, report, recipe, best if improved else None, generator, config, meter)
    return TuneResult(validation.metric, [generator.row()] + [e.row() for e in entries], recipe, improved, shown,
                      config.budget, meter.spent(), rounds, runner.records())


def _fitting(keep: list[Entry], generator: Entry, growth: float, left: float) -> int:
    """How many of the best `keep` the next round can run within `left`, with the generator beside them.

    When the whole half does not fit, the best few go on to larger n rather than stopping early:
    leaving the budget unspent would leave the choice to the noisier, smaller round."""
    cost = generator.last_cost * growth
    for k, entry in enumerate(keep):
        cost += entry.last_cost * growth
        if cost > left:
            return k
    return len(keep)


def _fitted(record: dict) -> str:
    if record.get("kind") == "raw":
        return "the score as it is"
    if record.get("kind") == "platt":
        return f"a = {record['a']:.4g}, b = {record['b']:.4g}"
    return record.get("note", record.get("kind", ""))


def _spent(meter: _Meter) -> str:
    s = meter.spent()
    return f"{s:.0f}s" if meter.budget.unit == "seconds" else f"{s:.3g} evaluations"


def _report(runner: _Runner, report: Scorer, recipe: Recipe, best: Entry | None, generator: Entry,
            config: TuneConfig, meter: _Meter) -> dict:
    """The recipe and the generator on fresh latents, against the report reference."""
    per_sample = (generator.last_cost + (best.last_cost if best else 0.0)) / max(generator.n, 1)
    left = config.budget.amount - meter.spent()
    n = config.n_report
    if per_sample > 0:
        n = int(min(n, max(config.n_floor, 0.8 * left / per_sample)))  # 0.8: costs vary on a busy machine
    seed = derived_seed(config.seed, REPORT_STREAM)
    score = report.stage(n, seed)
    prdc: dict = {}  # precision, recall, density, coverage of each row, where the scorer gives them

    def scored(row: str):
        if report.prdc is None:
            return score

        def both(x: np.ndarray) -> Bootstrapped:
            out = score(x)
            prdc[row] = report.prdc(x, seed)
            return out

        return both

    gen_entry = Entry(Recipe(GENERATOR))
    gen = runner.run(gen_entry, n, seed, scored("generator"), 0)
    out = {"n": n, "seed": seed, "metric": report.metric, "reference": report.source,
           "generator": None if gen is None else gen.score.to_dict()}
    if best is None or gen is None:
        return {**out, "recipe": out["generator"], "difference": None,
                "prdc": {"generator": prdc.get("generator"), "recipe": prdc.get("generator")}}
    entry = Entry(recipe)
    won = runner.run(entry, n, seed, scored("recipe"), 0, gen)
    return {**out, "recipe": None if won is None else won.score.to_dict(),
            "difference": None if entry.vs_generator is None else entry.vs_generator.to_dict(),
            "prdc": {"generator": prdc.get("generator"), "recipe": prdc.get("recipe")}}
