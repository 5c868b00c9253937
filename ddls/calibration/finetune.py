"""Fine-tune the discriminator as a logistic classifier against the frozen generator, stopping on held-out data.

At the end of GAN training the discriminator lags the generator it last saw, and a
WGAN/hinge critic is no logit at all. The DDLS paper fine-tunes D on top of the fixed G
before sampling. Left alone this overfits: D memorises the real images it is shown, its
training loss falls towards 0 and the logit it gives DDLS gets worse. So the loss is also
measured on held-out real images and fresh generated ones (heldout.py) every `eval_every`
steps; the D with the lowest held-out loss is kept, training stops after `patience`
evaluations without a new best, and if no step beats the start, the start is returned.

A critic that is no logit (kind 'wgan': WGAN, hinge; 'ae': minus a reconstruction error)
starts from its best affine map a * score + b, fitted on samples from the training part,
so that the start is a fair logit to compare against; the map stays fixed while D is tuned
and is stored with it.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from ..sampling.energy import LatentEnergy
from ..training.losses import ns_d_loss
from ..training.trainer import MAX_LR
from .heldout import Draw, draw_heldout, excluding
from .maps import Calibration, fit

NOT_A_LOGIT = ("wgan", "ae")  # energy kinds whose score is no estimate of log p_data/p_g
LAYERS = ("all", "last")  # which of D's parameters fine-tuning trains
TRAIN_STREAM, HELDOUT_STREAM = 3, 11  # keys of the training and held-out random streams (derived_seed)


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 2000  # most steps; early stopping may end sooner
    batch_size: int = 256
    lr: float = 1e-4
    n_heldout: int = 1000  # held-out real and generated samples, each
    eval_every: int = 50  # steps between held-out evaluations
    patience: int = 5  # evaluations without a new best before stopping
    seed: int = 0
    layers: str = "all"  # "last": only D's last layer learns (a logistic head on D's own features)
    noise: float = 0.0  # std of Gaussian instance noise on D's training inputs (held-out ones stay clean)

    def __post_init__(self):
        for name in ("steps", "batch_size", "n_heldout", "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise DDLSError(f"calibration {name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.noise < float("inf"):
            raise DDLSError(f"calibration noise must be a finite number >= 0, got {self.noise}")
        if self.layers not in LAYERS:
            raise DDLSError(f"calibration layers must be one of {', '.join(LAYERS)}, got {self.layers!r}")
        if not 0 < self.lr <= MAX_LR:  # Adam divides lr by its bias correction: huge values overflow
            raise DDLSError(f"calibration learning rate must be in (0, {MAX_LR:g}], got {self.lr}")


def finetune(energy: LatentEnergy, draw_real: Draw, config: FinetuneConfig, *, heldout_real: Tensor | None = None,
             progress: bool = False) -> tuple[LatentEnergy, dict, int]:
    """(the energy with the fine-tuned D, a record of the run, passes through D spent).

    `energy` and its networks are left as they were. `heldout_real` replaces the held-out real
    samples drawn from `draw_real` (e.g. a data set's test split)."""
    if energy.label is not None:
        raise DDLSError("fine-tuning a conditional discriminator is not supported; use platt calibration")
    cfg = config
    device = energy.device
    held_gen = make_generator(derived_seed(cfg.seed, HELDOUT_STREAM), device)
    held = draw_heldout(energy, draw_real, cfg.n_heldout, held_gen, heldout_real)
    draw_train = excluding(draw_real, held.real)
    gen = make_generator(derived_seed(cfg.seed, TRAIN_STREAM), device)
    evaluations = 0

    start_map, raw_loss = energy.score_map, None
    if energy.kind in NOT_A_LOGIT and energy.score_map is None:
        raw_loss = held.loss(energy.score)
        start_map, spent = _affine_start(energy, draw_train, cfg, gen)
        evaluations += spent + 2 * cfg.n_heldout
    d = copy.deepcopy(energy.discriminator).eval()
    tuned = _with(energy, d, start_map)
    start = held.loss(tuned.score)
    evaluations += 2 * cfg.n_heldout
    if not math.isfinite(start):
        raise DDLSError(f"the held-out logistic loss of the discriminator is {start}; check the checkpoint")

    opt = optimizer(d, cfg)

    def update() -> Tensor:
        d.train()
        real = draw_train(cfg.batch_size, gen).to(device)
        with torch.no_grad():
            fake = energy.decode(energy.prior_sample(cfg.batch_size, gen))
        if cfg.noise > 0:  # blurs what only pixels tell apart, so D must use coarser evidence
            real, fake = (x + cfg.noise * torch.randn(x.shape, generator=gen, device=gen.device) for x in (real, fake))
        loss = ns_d_loss(tuned.score(real), tuned.score(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    with frozen(energy.generator):
        run = train_early_stopped(d, cfg, update, lambda: held.loss(tuned.score), start=start, progress=progress)
    # forward and backward, real and generated batches, per step; real and generated held-out sets per evaluation
    evaluations += 4 * cfg.batch_size * run.steps + 2 * cfg.n_heldout * (len(run.heldout_curve) - 1)
    out = run.keeper.result(energy, start_map)
    best, best_step, improved = run.best, run.best_step, run.improved
    step, stopped, train_curve = run.steps, run.stopped, run.train_curve
    record = {
        "kind": "finetune", **asdict(cfg), "steps_run": step, "stopped": stopped,
        "improved": improved, "best_step": best_step,
        "heldout_loss": {"first": start, "best": best, "final": run.heldout_curve[-1][1]},
        "train_loss": {"first": train_curve[0][1] if train_curve else None,
                       "final": train_curve[-1][1] if train_curve else None},
        "heldout_curve": run.heldout_curve, "train_curve": train_curve,
        "start_map": None if start_map is None else start_map.to_dict(),
        "energy_before": energy.kind, "energy": out.kind,
    }
    if raw_loss is not None:
        record["heldout_loss"]["raw_score"] = raw_loss
    if run.diverged is not None:
        record["diverged_at"] = run.diverged
    record["note"] = (f"held-out loss {start:.4f} -> {best:.4f}, best at step {best_step} of {step} ({stopped})"
                      if improved else
                      f"no fine-tuning step lowered the held-out loss {start:.4f} ({step} steps, {stopped}); "
                      f"kept the starting discriminator")
    return out, record, evaluations


class EarlyStop:
    """The best D so far by a held-out score, lower being better, and when `patience` evaluations
    without a new best end the run."""

    def __init__(self, d: torch.nn.Module, start: float, patience: int):
        self.d, self.patience = d, patience
        self.best, self.step, self.state, self.stale = start, 0, None, 0

    def update(self, step: int, score: float) -> bool:
        """Keep D if `score` is a new best; True when patience has run out."""
        if score < self.best:
            self.best, self.step, self.state, self.stale = score, step, copy.deepcopy(self.d.state_dict()), 0
            return False
        self.stale += 1
        return self.stale >= self.patience

    def result(self, energy: LatentEnergy, score_map) -> LatentEnergy:
        """The energy with the best D, frozen; the start, never a worse D, if no step beat it."""
        for p in self.d.parameters():
            p.requires_grad_(False)
        if self.state is None:
            return _with(energy, energy.discriminator, score_map)
        self.d.load_state_dict(self.state)
        return _with(energy, self.d.eval(), score_map)


class Trained(NamedTuple):
    keeper: EarlyStop  # the best D so far (keeper.result gives the energy with it)
    best: float  # the best held-out score, as `heldout` gives it
    steps: int  # updates run
    stopped: str  # "step limit" | "patience" | "diverged"
    diverged: int | None  # the step whose evaluation was not finite
    heldout_curve: list  # (step, held-out score), from (0, start)
    train_curve: list  # (step, mean of update()'s values since the last evaluation)

    @property
    def improved(self) -> bool:
        """Whether some step beat the start (else keeper.result returns the start)."""
        return self.keeper.state is not None

    @property
    def best_step(self) -> int:
        return self.keeper.step


def train_early_stopped(d: torch.nn.Module, cfg: FinetuneConfig, update: Callable[[], Tensor],
                        heldout: Callable[[], float], *, start: float, higher_is_better: bool = False,
                        healthy: Callable[[], bool] = lambda: True, progress: bool = False) -> Trained:
    """Up to cfg.steps calls of `update` (one optimiser step on d, returning its detached loss); every
    cfg.eval_every steps and at the last, `heldout()` scores d, the best d is kept, and the run stops after
    cfg.patience evaluations without a new best, or when a score or loss is not finite or `healthy()` is
    False. d is in eval mode whenever `heldout` runs."""
    sign = -1.0 if higher_is_better else 1.0  # EarlyStop keeps the lowest
    keeper = EarlyStop(d, sign * start, cfg.patience)
    heldout_curve, train_curve, window = [(0, start)], [], []
    step, stopped, diverged = 0, "step limit", None
    bar = _bar(cfg.steps) if progress else None
    try:
        for step in range(1, cfg.steps + 1):
            window.append(update())
            if bar is not None:
                bar.update()
            if step % cfg.eval_every and step != cfg.steps:
                continue
            d.eval()
            train_curve.append((step, float(torch.stack(window).mean())))
            window = []
            now = heldout()
            heldout_curve.append((step, now))
            if bar is not None:  # the number that decides, where a user watching can see it
                bar.set_postfix(heldout=f"{now:.4f}", best=f"{sign * min(keeper.best, sign * now):.4f}", refresh=False)
            if not (math.isfinite(now) and math.isfinite(train_curve[-1][1]) and healthy()):
                stopped, diverged = "diverged", step
                break
            if keeper.update(step, sign * now):
                stopped = "patience"
                break
    finally:
        if bar is not None:
            bar.close()
    return Trained(keeper, sign * keeper.best, step, stopped, diverged, heldout_curve, train_curve)


def optimizer(d: torch.nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """Adam on the parameters of D that `cfg.layers` trains (switched to requires_grad)."""
    trained = list(d.parameters() if cfg.layers == "all" else last_layer(d).parameters())
    for p in trained:
        p.requires_grad_(True)
    return torch.optim.Adam(trained, lr=cfg.lr, betas=(0.5, 0.999))


def last_layer(d: torch.nn.Module) -> torch.nn.Module:
    """D's last module holding weights of its own (a spectral-normalised layer counts with its parametrisation)."""
    from torch.nn.utils import parametrize

    layers = [m for name, m in d.named_modules() if "parametrizations" not in name.split(".")
              and (parametrize.is_parametrized(m) or next(m.parameters(recurse=False), None) is not None)]
    if not layers:
        raise DDLSError("the discriminator has no parameters to fine-tune")
    return layers[-1]


def _with(energy: LatentEnergy, d, score_map) -> LatentEnergy:
    """`energy` with discriminator d and score map `score_map`; a WGAN critic so calibrated is a logit."""
    kind = "gan" if energy.kind == "wgan" else energy.kind  # same score function, now read as a logit
    return energy.replaced(discriminator=d, kind=kind, score_map=score_map)


def _affine_start(energy: LatentEnergy, draw_train: Draw, cfg: FinetuneConfig,
                  gen: torch.Generator) -> tuple[Calibration, int]:
    """Platt's a, b for the raw critic, fitted on n_heldout samples of the training part."""
    n = cfg.n_heldout
    with torch.no_grad(), frozen(*energy.modules()):
        real = torch.cat([energy.score(draw_train(k, gen).to(energy.device)) for k in _sizes(n, 1024)])
        fake = torch.cat([energy.score(energy.decode(energy.prior_sample(k, gen))) for k in _sizes(n, 1024)])
    return fit("platt", real, fake), 2 * n


def _sizes(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]


def _bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="calibrate", unit="step", dynamic_ncols=True)
