"""What `ddls tune` searches (the candidate grid) and how much it may spend (the budget)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Callable

from ..errors import DDLSError
from ..core.options import HUGE
from .recipe import GENERATOR, Recipe

TEMPERATURES = (1.0, 0.3, 0.1)  # T < 1: on an NS-GAN, DDLS at T = 0.3 got most of DGflow's gain
EPS = (1e-2, 1e-3, 1e-4)  # 2-D models want eps near 1e-4, image models near 1e-2 (docs/results.md)
LANGEVIN_STEPS = 100
# sir is searched only when asked: it gained nothing on the shipped models and its candidates would
# shrink the first round of every search (docs/results.md)
DEFAULT_METHODS = ("ddls", "mala", "dgflow", "dot", "drs", "mhgan", "prior-fit")
AUTO = "auto"
# polarity is searched only when asked (its pool's Jacobians cost latent_dim passes each); small rho:
# log vol varies by tens of nats across an image GAN's latents, and on the shipped SNGAN rho >= 0.05
# or <= -0.05 made FID worse (docs/results.md)
POLARITY_RHOS = (0.02,)
# ex2mcmc is searched only when asked, at its defaults (a cost near DDLS's 100 steps) over T x eps
EX2MCMC_SETTINGS = {"ex2mcmc_iterations": 10, "ex2mcmc_candidates": 10, "ex2mcmc_mala_steps": 5}
# flex2mcmc likewise, at its defaults (twice ex2mcmc's moves: half of them train the flow)
FLEX2MCMC_SETTINGS = {"flex2mcmc_iterations": 20, "flex2mcmc_adapt": 10, "flex2mcmc_candidates": 10,
                      "flex2mcmc_mala_steps": 5}
SIR_TEMPERATURES = (1.0, 3.0, 10.0)  # T > 1 flattens the weights of an over-confident fine-tuned D
AUTO_MINUTES = {"cpu": 20.0, "cuda": 2.0}
# head is fitted once per search (seconds to a minute or two); finetune's schedule is the user's to set
CALIBRATIONS = ("raw", "platt", "head")


@dataclass(frozen=True)
class Budget:
    """At most `amount` seconds of wall time, or `amount` network evaluations."""

    amount: float
    unit: str  # "seconds" | "evaluations"

    def describe(self) -> str:
        if self.unit == "evaluations":
            return f"{self.amount:.3g} network evaluations"
        return f"{self.amount / 60:.3g} min"


_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(s|sec|m|min|h|evals?|evaluations?)?\s*$", re.I)
_SECONDS = {None: 60.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_budget(text: str, device_type: str = "cpu") -> Budget:
    """'auto' (20 min on a CPU, 2 on a GPU), '90s', '20m' or '20' (minutes), '1.5h', or '5e6evals'."""
    if str(text).strip().lower() == "auto":
        return Budget(60.0 * AUTO_MINUTES.get(device_type, AUTO_MINUTES["cpu"]), "seconds")
    found = _BUDGET.match(str(text))
    amount = float(found.group(1)) if found else 0.0
    if not found or not amount > 0:
        raise DDLSError(f"budget {text!r} is not a positive time or evaluation count; write minutes (20m or 20), "
                        f"seconds (90s), hours (1h), network evaluations (5e6evals) or auto")
    unit = (found.group(2) or "").lower() or None
    budget = (Budget(amount, "evaluations") if unit is not None and unit.startswith("eval")
              else Budget(amount * _SECONDS[unit], "seconds"))
    if not budget.amount <= HUGE:  # 1e400m overflows to inf: refused like inf, in the API as on the command line
        raise DDLSError(f"budget {text!r} is not a positive time or evaluation count of at most {HUGE:g} (seconds or "
                        f"evaluations); write minutes (20m or 20), seconds (90s), hours (1h), network evaluations "
                        f"(5e6evals) or auto")
    return budget


SMALLEST, LARGEST = 1e-30, 1e30


def parse_list(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or not all(v > 0 and math.isfinite(v) for v in values):
        raise DDLSError(f"{what} {text!r} is not a comma-separated list of positive numbers")
    if not all(SMALLEST <= v <= LARGEST for v in values):  # float32 steps and scales: no-ops or overflow outside
        raise DDLSError(f"{what} {text!r}: each value must be in [{SMALLEST:g}, {LARGEST:g}]")
    return values


def default_methods(sample_shape: tuple[int, ...]) -> tuple[str, ...]:
    """What `--methods auto` searches: DEFAULT_METHODS, less IMAGE_ONLY for samples that are no images."""
    return DEFAULT_METHODS if len(sample_shape) == 3 else tuple(m for m in DEFAULT_METHODS if m not in IMAGE_ONLY)


def parse_methods(text: str) -> tuple[str, ...]:
    """Method names, checked; ('auto',) for auto (see default_methods, which needs the model)."""
    from ..posthoc import METHODS

    if str(text).strip().lower() == AUTO:
        return (AUTO,)
    methods = tuple(dict.fromkeys(m.strip() for m in str(text).split(",") if m.strip()))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise DDLSError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    for m in methods:  # a method registered later (a plug-in) that tune has no candidates for
        searched(m)
    return methods


def is_auto(text: str) -> bool:
    """Whether `--calibrations` leaves the choice to tune (see parse_calibrations)."""
    return str(text).strip().lower() == "auto"


def parse_calibrations(text: str, energy_kind: str | None = None, has_real: bool = False) -> tuple[str, ...]:
    """Calibrations to search: raw (the score as it is) and those that need no hand-set schedule.

    'auto': head for a critic that is no logit (energy kind 'wgan') when there are real samples to fit
    on, else raw (docs/results.md: the head made the WGAN-GP's recipe and beat raw on the SNGAN; on a
    logit D it lost to raw; searching both halves the first rounds, which then lost the WGAN-GP's best)."""
    from ..calibration.maps import canonical

    if is_auto(text):
        return ("head",) if energy_kind == "wgan" and has_real else ("raw",)
    names = tuple(dict.fromkeys(canonical(c.strip()) for c in str(text).split(",") if c.strip()))
    refused = [c for c in names if c not in CALIBRATIONS]
    if refused or not names:
        raise DDLSError(f"tune searches the calibrations {', '.join(CALIBRATIONS)}; got {text!r} (fine-tune with "
                        f"`ddls calibrate` first and tune the file it writes)")
    return names


Grid = Callable[[tuple[float, ...], tuple[float, ...], int], list[Recipe]]  # (temperatures, eps, steps) -> candidates
Cost = Callable[[dict, int, bool], float]  # (options, n, fitted) -> network evaluations per kept sample


@dataclass(frozen=True)
class Searched:
    """How `ddls tune` searches one post-hoc method."""

    grid: Grid  # its candidates, given the search's temperatures, step sizes and Langevin steps
    cost: Cost  # a forecast of network evaluations per kept sample (ddls.posthoc counts the real ones)
    image_only: bool = False  # left out of --methods auto when the samples are no images
    fitted_first: bool = False  # fits something once per search, before round 0 (its cost paid there)
    calibration_free: bool = False  # the same candidates on every calibration: searched on the first only
    kernel: str | None = None  # its candidates run as one batch of chains (ddls.sampling.batched) with this kernel


def _steps(o: dict) -> float:
    return 2.0 * (o.get("steps", 500) + 1)


SEARCHED: dict[str, Searched] = {
    "ddls": Searched(lambda ts, es, steps: [Recipe("ddls", t, {"steps": steps, "eps": e}) for t in ts for e in es],
                     lambda o, n, fitted: _steps(o), kernel="ula"),
    "mala": Searched(lambda ts, es, steps: [Recipe("mala", 1.0, {"steps": steps, "eps": e}) for e in es[:2]],
                     lambda o, n, fitted: _steps(o), kernel="mala"),
    "dgflow": Searched(lambda ts, es, steps: [Recipe("dgflow", 1.0, {"dgflow_steps": 25, "dgflow_eta": eta,
                                                                     "dgflow_gamma": 0.01}) for eta in (0.1, 0.01)],
                       lambda o, n, fitted: 2.0 * o.get("dgflow_steps", 25)),
    "dot": Searched(lambda ts, es, steps: [Recipe("dot", 1.0, {"dot_steps": 50, "dot_lr": lr}) for lr in (0.05, 0.01)],
                    lambda o, n, fitted: 2.0 * o.get("dot_steps", 100) + 2.0 * o.get("dot_pairs", 100) / n),
    "drs": Searched(lambda ts, es, steps: [Recipe("drs", 1.0, {"drs_pilot": 2000, "drs_gamma_percentile": p})
                                           for p in (95.0, 80.0)],
                    lambda o, n, fitted: o.get("drs_pilot", 10000) / n + 3.0),  # assumes about a third accepted
    "mhgan": Searched(lambda ts, es, steps: [Recipe("mhgan", 1.0, {"mh_chain_length": k}) for k in (20, 100)],
                      lambda o, n, fitted: o.get("mh_chain_length", 640) + 1.0),
    "sir": Searched(lambda ts, es, steps: [Recipe("sir", t, {"sir_pool_factor": 10}) for t in SIR_TEMPERATURES],
                    lambda o, n, fitted: o.get("sir_pool_factor", 10) + 1.0),
    # a Jacobian costs latent_dim passes through G, unknown here: 64, the shipped image GANs' latent
    "polarity": Searched(lambda ts, es, steps: [Recipe("polarity", 1.0, {"polarity_rho": r, "polarity_pool_factor": 2})
                                                for r in POLARITY_RHOS],
                         lambda o, n, fitted: o.get("polarity_pool_factor", 4) * 64.0 + 1.0),
    "magnet": Searched(lambda ts, es, steps: [Recipe("magnet", 1.0, {})], lambda o, n, fitted: 4 * 64.0 + 1.0),
    "collab": Searched(lambda ts, es, steps: [Recipe("collab", 1.0, {"collab_steps": 25, "collab_lr": lr})
                                              for lr in (0.3, 0.1)],
                       lambda o, n, fitted: 2.0 * o.get("collab_steps", 25) + 1.0),
    "ex2mcmc": Searched(lambda ts, es, steps: [Recipe("ex2mcmc", t, {"eps": e, **EX2MCMC_SETTINGS})
                                               for t in ts for e in es[:2]],
                        lambda o, n, fitted: _ex2mcmc_passes(o.get("ex2mcmc_iterations", 10),
                                                             o.get("ex2mcmc_candidates", 10),
                                                             o.get("ex2mcmc_mala_steps", 5))),
    # the flow's own passes are no network evaluations
    "flex2mcmc": Searched(lambda ts, es, steps: [Recipe("flex2mcmc", t, {"eps": e, **FLEX2MCMC_SETTINGS})
                                                 for t in ts for e in es[:2]],
                          lambda o, n, fitted: _ex2mcmc_passes(o.get("flex2mcmc_iterations", 20),
                                                               o.get("flex2mcmc_candidates", 10),
                                                               o.get("flex2mcmc_mala_steps", 5))),
    # image_only: on the shipped 2-D GAN prior-fit made EMD worse (0.43 -> 0.97), and its fit took 8% of a
    # 2e6-evaluation search, which then chose a weaker recipe (docs/results.md); calibration_free: a prior fitted
    # to D's features, and calibrations change D's last layer at most
    "prior-fit": Searched(lambda ts, es, steps: [Recipe("prior-fit", 1.0, {})],
                          lambda o, n, fitted: _prior_fit_sampling(o) + (0.0 if fitted else _prior_fit_passes(o) / n),
                          image_only=True, fitted_first=True, calibration_free=True),
}
# the table's traits by name, for the search and the command's help
IMAGE_ONLY = tuple(m for m, s in SEARCHED.items() if s.image_only)
FITTED_FIRST = tuple(m for m, s in SEARCHED.items() if s.fitted_first)
BATCHED_KERNELS = {m: s.kernel for m, s in SEARCHED.items() if s.kernel is not None}


def searched(method: str) -> Searched:
    if method not in SEARCHED:
        raise DDLSError(f"tune has no candidates for method {method!r}; it searches {', '.join(SEARCHED)}")
    return SEARCHED[method]


def default_grid(methods: tuple[str, ...] = DEFAULT_METHODS, *, temperatures: tuple[float, ...] = TEMPERATURES,
                 eps: tuple[float, ...] = EPS, steps: int = LANGEVIN_STEPS,
                 calibrations: tuple[str, ...] = ("raw",)) -> list[Recipe]:
    """The candidates: DDLS over eps x T, a few settings of each other method (T = 1 unless noted), each on
    every calibration in `calibrations`."""
    return [replace(r, calibration=c) for i, c in enumerate(calibrations) for m in methods
            for r in searched(m).grid(temperatures, eps, steps) if not searched(m).calibration_free or i == 0]


def evaluations_per_sample(recipe: Recipe, n: int, *, fitted: bool = False) -> float:
    """A forecast of network evaluations per kept sample (ddls.posthoc counts the real ones). fitted: what a
    fitted_first method fits once is already fitted (tune fits it before round 0)."""
    if recipe.method == GENERATOR:
        return 1.0
    return searched(recipe.method).cost(recipe.options, n, fitted)


def _ex2mcmc_passes(iterations: int, candidates: int, mala_steps: int) -> float:
    """Per chain: 2 to start; per global move N - 1 candidates, 2 per MALA step, 2 where the chain moved (assumed
    half). Without MALA steps there is no gradient: 1 to start and N - 1 per move."""
    if mala_steps == 0:
        return 1.0 + iterations * (candidates - 1.0)
    return 2.0 + iterations * (candidates - 1.0 + 2.0 * mala_steps + 1.0)


def _prior_fit_sampling(options: dict) -> float:
    """Per sample once fitted: one pass through G, or DDLS's passes with its Langevin steps."""
    steps = options.get("prior_langevin_steps", 0)
    return _steps({"steps": steps}) if steps else 1.0  # DDLS's own cost


def _prior_fit_passes(options: dict) -> float:
    from ..posthoc import default_config
    from ..posthoc.prior_fit import fit_evaluations

    return float(fit_evaluations(default_config("prior-fit", **{k: v for k, v in options.items()
                                                                 if k.startswith("prior_")})))
