"""DCD: fine-tune the discriminator by contrastive divergence on the DDLS target (after Song et al., 2020).

DDLS samples x = G(z) with z ~ p_t(z) ∝ p0(z) exp(d(G(z))), that is x ~ p_t(x) ∝ p_g(x) exp(d(x)).
That is the data distribution exactly when d = log p_data / p_g + c. Fine-tuning d as a logistic
classifier (finetune.py) aims at that d through a proxy; DCD aims at it directly, by maximum
likelihood of the real data under p_t. The gradient of the log-likelihood in D's parameters is

    E_data[grad d(x)] - E_{p_t}[grad d(x)],

so each step lowers mean d(negatives) - mean d(real), where the negatives are DDLS's own samples
under the current d: persistent latent chains (one per batch row) advanced by a few Langevin steps
before every update. At the fixed point DDLS's samples and the data agree on every feature d can
see, which is what a sampler needs of d, not what a classifier needs of it.

Which step to keep is decided on held-out data by the same likelihood, up to a constant that does
not depend on d (the Donsker-Varadhan bound of KL(p_data || p_g)):

    L(d) = mean over held-out real x of d(x) - log mean over held-out generated x of exp(d(x)).

The D with the highest L is kept; training stops after `patience` evaluations without a new best;
if no step beats the start, the start is returned. A critic that is no logit starts, as in
finetune.py, from its Platt map, which stays fixed while D is tuned and is stored with it.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from ..sampling.energy import LatentEnergy
from ..sampling.samplers import init, ula_step
from .finetune import (HELDOUT_STREAM, NOT_A_LOGIT, TRAIN_STREAM, FinetuneConfig, _affine_start, _with, optimizer,
                       train_early_stopped)
from .heldout import Draw, HeldOut, draw_heldout, excluding

CHAIN_STREAM = 13  # key of the chains' random stream (derived_seed); the other draws use finetune's streams
RESTART = 0.05  # share of chains restarted from the prior before each update, so no chain stays stuck


@dataclass(frozen=True)
class DCDConfig:
    tune: FinetuneConfig = FinetuneConfig()  # steps, batch size (= chains), lr, held-out set, stopping, layers
    chain_steps: int = 5  # Langevin steps of every chain before each update
    chain_eps: float = 0.01  # their step size

    def __post_init__(self):
        if self.tune.noise > 0:
            raise DDLSError("DCD takes no instance noise: its negatives are DDLS's samples, noise would change the "
                            "target; drop the noise setting")
        if self.chain_steps < 1:
            raise DDLSError(f"DCD chain steps must be >= 1, got {self.chain_steps}")
        if not 0 < self.chain_eps < float("inf"):
            raise DDLSError(f"DCD chain step size must be a positive finite number, got {self.chain_eps}")

    def to_dict(self) -> dict:
        return {**asdict(self.tune), "chain_steps": self.chain_steps, "chain_eps": self.chain_eps}


def dv_bound(score, held: HeldOut, batch_size: int = 1024) -> float:
    """mean score(held-out real) - log mean exp score(held-out generated): the held-out log-likelihood of
    the real data under p_g exp(score), up to a constant; higher is better."""
    with torch.no_grad():
        real = torch.cat([score(x) for x in held.real.split(batch_size)])
        fake = torch.cat([score(x) for x in held.fake.split(batch_size)])
    return float(real.mean() - (torch.logsumexp(fake, 0) - math.log(len(fake))))


def dcd(energy: LatentEnergy, draw_real: Draw, config: DCDConfig, *, heldout_real: Tensor | None = None,
        progress: bool = False) -> tuple[LatentEnergy, dict, int]:
    """(the energy with the DCD-tuned D, a record of the run, passes through the networks spent).

    `energy` and its networks are left as they were; its temperature and sigma are ignored (the
    chains run at T = 1 on the plain latent, the target DDLS then samples at T = 1)."""
    if energy.label is not None:
        raise DDLSError("DCD fine-tuning of a conditional discriminator is not supported; use platt calibration")
    cfg = config.tune
    device = energy.device
    energy = energy.replaced(temperature=1.0, sigma=0.0)
    held = draw_heldout(energy, draw_real, cfg.n_heldout, make_generator(derived_seed(cfg.seed, HELDOUT_STREAM), device),
                        heldout_real)
    draw_train = excluding(draw_real, held.real)
    gen = make_generator(derived_seed(cfg.seed, TRAIN_STREAM), device)
    chain_gen = make_generator(derived_seed(cfg.seed, CHAIN_STREAM), device)
    evaluations = 2 * cfg.n_heldout

    start_map = energy.score_map
    if energy.kind in NOT_A_LOGIT and energy.score_map is None:
        start_map, spent = _affine_start(energy, draw_train, cfg, gen)
        evaluations += spent
    d = copy.deepcopy(energy.discriminator).eval()
    tuned = _with(energy, d, start_map)
    start = dv_bound(tuned.score, held)
    evaluations += 2 * cfg.n_heldout
    if not math.isfinite(start):
        raise DDLSError(f"the held-out likelihood bound of the discriminator is {start}; check the checkpoint")

    opt = optimizer(d, cfg)
    chains = energy.prior_sample(cfg.batch_size, chain_gen)

    def update() -> Tensor:
        nonlocal chains
        chains = _advance(tuned, chains, config, chain_gen)
        real = draw_train(cfg.batch_size, gen).to(device)
        with torch.no_grad():
            fake = tuned.decode(chains)
        d.train()
        gap = tuned.score(fake).mean() - tuned.score(real).mean()
        opt.zero_grad(set_to_none=True)
        gap.backward()
        opt.step()
        d.eval()  # the chains follow the d they will be scored by
        return gap.detach()

    with frozen(energy.generator):
        run = train_early_stopped(d, cfg, update, lambda: dv_bound(tuned.score, held), start=start,
                                  higher_is_better=True, healthy=lambda: bool(torch.isfinite(chains).all()),
                                  progress=progress)
    # per step: the chains' Langevin steps (+ 1: the start's gradient), then forward and backward on real and
    # negative batches; per evaluation: the held-out real and generated sets
    evaluations += (2 * (config.chain_steps + 1) + 4) * cfg.batch_size * run.steps \
        + 2 * cfg.n_heldout * (len(run.heldout_curve) - 1)
    out = run.keeper.result(energy, start_map)
    best, best_step, improved = run.best, run.best_step, run.improved
    step, stopped = run.steps, run.stopped
    record = {
        "kind": "dcd", **config.to_dict(), "steps_run": step, "stopped": stopped,
        "improved": improved, "best_step": best_step,
        "heldout_bound": {"first": start, "best": best, "final": run.heldout_curve[-1][1]},
        "heldout_curve": run.heldout_curve, "gap_curve": run.train_curve,
        "start_map": None if start_map is None else start_map.to_dict(),
        "energy_before": energy.kind, "energy": out.kind,
    }
    if run.diverged is not None:
        record["diverged_at"] = run.diverged
    record["note"] = (f"held-out likelihood bound {start:.4f} -> {best:.4f}, best at step {best_step} of {step} "
                      f"({stopped})" if improved else
                      f"no DCD step raised the held-out likelihood bound {start:.4f} ({step} steps, {stopped}); "
                      f"kept the starting discriminator")
    return out, record, evaluations


def _advance(energy: LatentEnergy, chains: Tensor, config: DCDConfig, generator: torch.Generator) -> Tensor:
    """The persistent chains after `chain_steps` Langevin steps on the current d (a few restarted first)."""
    restart = torch.rand(len(chains), generator=generator, device=generator.device) < RESTART
    fresh = energy.prior_sample(len(chains), generator)
    chains = torch.where(restart[:, None], fresh, chains)
    state = init(chains, energy)
    for _ in range(config.chain_steps):
        state, _ = ula_step(state, energy, eps=config.chain_eps, generator=generator)
    return state.position.detach()
