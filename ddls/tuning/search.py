"""A whole search, as `ddls tune` and `ddls.tune` start it: the scorers for the checkpoint's data, the methods
that can run on it, the calibrations to try, the candidate grid, then the search itself (run.py). And
`sample_recipe`, which draws with a recipe the way `ddls sample --ckpt TUNED.pt` does."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from ..errors import DDLSError
from .grid import AUTO, EPS, LANGEVIN_STEPS, TEMPERATURES, default_grid, default_methods, is_auto, parse_calibrations
from .recipe import GENERATOR, Recipe
from .run import TuneConfig, TuneResult, cached_target, tune


def search(model, energy, config: TuneConfig, *, methods: Sequence[str] = (AUTO,), calibrations: str = "auto",
           temperatures: Sequence[float] = TEMPERATURES, eps: Sequence[float] = EPS, steps: int = LANGEVIN_STEPS,
           data: str | None = None, stats: str | None = None, features: str = "domain", ref_n: int | None = None,
           classifier: str | None = None, echo: Callable[[str], None] = lambda s: None) -> TuneResult:
    """Search `methods` x `temperatures` x `eps` x `calibrations` on `model` (its `energy` as loaded) within
    `config.budget`; the result's `data` names what it was scored against."""
    from .scoring import scorers_for

    chosen = default_methods(energy.sample_shape) if tuple(methods) == (AUTO,) else tuple(methods)
    validation, report, draw_real, source = scorers_for(model, energy, data=data, stats=stats, features=features,
                                                        ref_n=ref_n, classifier=classifier,
                                                        resamples=config.resamples, seed=config.seed, note=echo)
    if draw_real is None:
        from ..posthoc.registry import get

        left_out = [m for m in chosen if get(m).needs_real]
        if left_out:
            chosen = tuple(m for m in chosen if m not in left_out)
            echo(f"leaving out {', '.join(left_out)}: they need real samples, and there are none to draw")
    calibrated = parse_calibrations(calibrations, energy.kind, draw_real is not None and energy.label is None)
    if draw_real is None and calibrated != ("raw",):
        raise DDLSError("calibrations other than raw are fitted on real samples, and there are none to draw; pass "
                        "--data or tune with --calibrations raw")
    if energy.kind == "wgan" and calibrated == ("raw",) and draw_real is not None:
        echo("note: this critic is no logit; --calibrations raw,head also tries it with its last layer refitted "
             "as one (docs/results.md: on a WGAN-GP that made the recipe)")
    candidates = default_grid(chosen, temperatures=tuple(temperatures), eps=tuple(eps), steps=steps,
                              calibrations=calibrated)
    echo(f"tuning {len(candidates)} candidates + the generator alone within {config.budget.describe()}")
    result = tune(model, candidates, validation, report, config, draw_real=draw_real, echo=echo,
                  optional=tuple(c for c in calibrated if c != "raw") if is_auto(calibrations) else (), data=source)
    return replace(result, data=source)


def tune_model(model, *, budget="auto", methods: str | Sequence[str] = AUTO, calibrations: str = "auto",
               temperatures: Sequence[float] = TEMPERATURES, eps: Sequence[float] = EPS, steps: int = LANGEVIN_STEPS,
               n_start: int = 256, n_max: int = 2000, n_report: int = 2000, data: str | None = None,
               stats: str | None = None, features: str = "domain", ref_n: int | None = None,
               classifier: str | None = None, resamples: int = 100, seed: int = 0, chunk_size: int = 1000,
               echo: Callable[[str], None] = lambda s: None) -> TuneResult:
    """`ddls tune` on a loaded model (ddls.load_any, ddls.wrap): the same search, with the command's defaults.

    budget: 'auto' (20 min on a CPU, 2 on a GPU), a text such as '90s', '20m' or '5e6evals', or a Budget.
    Returns the TuneResult: `.recipe` (give it to ddls.sample), `.report` (the recipe and the generator
    on data the choice never saw), `.rows` (every candidate). `echo` receives the command's notes."""
    from .grid import Budget, parse_budget, parse_methods

    energy = model.energy()
    budget = budget if isinstance(budget, Budget) else parse_budget(str(budget), energy.device.type)
    chosen = parse_methods(methods if isinstance(methods, str) else ",".join(methods))
    config = TuneConfig(budget, n_start=min(n_start, n_max), n_max=n_max, n_report=n_report, seed=seed,
                        chunk_size=chunk_size, resamples=resamples)
    return search(model, energy, config, methods=chosen, calibrations=calibrations, temperatures=temperatures,
                  eps=eps, steps=steps, data=data, stats=stats, features=features, ref_n=ref_n, classifier=classifier,
                  echo=echo)


def sample_recipe(model, recipe: Recipe, n: int, *, seed: int = 0, data: str | None = None, chunk_size: int = 1000,
                  progress: bool = False):
    """n samples of `model` drawn with `recipe` (a Recipe, or a TuneResult: its recipe), as `ddls sample --ckpt
    TUNED.pt --seed` draws them: the recipe's calibration refitted with `seed` on the model's data (or
    `data`), its method at its temperature and settings. Returns ddls.posthoc's PosthocResult."""
    from ..data.real import real_source
    from ..posthoc import default_config, run

    recipe = getattr(recipe, "recipe", recipe)
    if not isinstance(recipe, Recipe):
        raise DDLSError(f"expected a tuning recipe (ddls.tune(...).recipe), got {type(recipe).__name__}")
    energy = model.energy()
    draw_real = real_source(model, energy.sample_shape, data=data)
    name = data or model.data
    base = cached_target(energy, recipe.calibration, draw_real, seed=seed, data=name)
    target = replace(base, energy=base.energy.replaced(temperature=recipe.temperature))
    method = "generator" if recipe.method == GENERATOR else recipe.method
    config = default_config(method, chunk_size=chunk_size, **recipe.options)
    return run(method, target, n, config, seed=seed, draw_real=draw_real, progress=progress)


def sample(model_or_energy, how, *args, **kw):
    """`ddls.sample`: Langevin chains on an energy with a RunConfig (ddls.sampling.driver.sample, its keywords),
    or a model drawn with a tuned recipe: `ddls.sample(model, ddls.tune(model).recipe, 1000, seed=0)`
    (sample_recipe: returns a PosthocResult with .samples and .latents, as the driver's result has)."""
    if isinstance(how, (Recipe, TuneResult)):
        return sample_recipe(model_or_energy, how, *args, **kw)
    from ..sampling.driver import sample as run_chains

    return run_chains(model_or_energy, how, *args, **kw)
