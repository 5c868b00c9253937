"""Ex2MCMC: global importance-resampling moves between local MALA steps (Samsonov et al., NeurIPS 2022).

Each iteration of a chain on the latent energy E(z) = -log p0(z) - d(G(z)) / T:

1. explore (i-SIR): the current latent is candidate 0; N - 1 fresh candidates are drawn from a
   proposal q (here the prior p0); the chain moves to candidate i with probability proportional
   to w_i = exp(-E(z_i)) / q(z_i). Keeping the current latent among the candidates is what makes
   the move leave exp(-E) invariant for any N >= 2 (plain SIR, without it, is only right as N grows).
   With q = p0 the weight is exp(d(G(z)) / T): the critic alone chooses, without its gradient,
   so a chain can jump to a mode that gradient steps would never reach.
2. exploit: `mala_steps` MALA steps (ddls.sampling.samplers.mala_step) refine the latent within
   the mode the global move found.

The fresh candidates cost one forward pass each; a chain that moved needs its gradient anew
(a forward and a backward pass); each MALA step costs one of each.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple, Protocol

import click
import torch
from torch import Tensor

from .._torch import frozen, seeded_chunks
from ..errors import DDLSError
from ..sampling.energy import standard_normal_logpdf
from ..sampling.samplers import State, energy_and_grad, init, mala_step
from .progress import step_bar
from .registry import Setting, register
from .target import LatentLogit, PosthocResult

Energy = Callable[[Tensor], Tensor]


class Proposal(Protocol):
    """Where the global move draws its candidates: `sample(n, generator)` -> (n, D), `log_prob(z)` -> (n,)."""

    def sample(self, n: int, generator: torch.Generator) -> Tensor: ...

    def log_prob(self, z: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class StandardNormal:
    """N(0, I) in `dim` dimensions: the latent prior p0 of every ddls energy."""

    dim: int

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randn(n, self.dim, generator=generator, device=generator.device)

    def log_prob(self, z: Tensor) -> Tensor:
        return standard_normal_logpdf(z)


class Info(NamedTuple):
    moved: Tensor  # (B,) bool: the global move chose a fresh candidate
    accept_prob: Tensor  # (B,) MALA acceptance probability, averaged over the local steps (nan without any)


@dataclass(frozen=True)
class Ex2MCMCConfig:
    iterations: int = 10  # global moves per chain, each followed by the MALA steps
    candidates: int = 10  # N: the current latent and N - 1 prior draws
    mala_steps: int = 5  # local steps after each global move (0: i-SIR alone)
    eps: float = 0.01  # MALA step size
    chunk_size: int = 5000  # chains run at once; also the most candidates scored in one pass

    def __post_init__(self):
        if self.iterations < 1 or self.candidates < 2 or self.mala_steps < 0 or self.chunk_size < 1:
            raise DDLSError(f"Ex2MCMC needs iterations >= 1, candidates >= 2, MALA steps >= 0 and chunk size >= 1; "
                            f"got {self.iterations}, {self.candidates}, {self.mala_steps}, {self.chunk_size}")
        if not (0 < self.eps < float("inf")):
            raise DDLSError(f"Ex2MCMC eps must be a positive finite number, got {self.eps}")

    def to_dict(self) -> dict:
        return asdict(self)


def _scored(energy: Energy, z: Tensor, batch_size: int) -> Tensor:
    """E at many candidates, batch_size rows per pass, without a graph."""
    with torch.no_grad():
        return torch.cat([energy(part) for part in z.split(batch_size)])


def isir_step(state: State, energy: Energy, *, proposal: Proposal, candidates: int, generator: torch.Generator,
              batch_size: int | None = None) -> tuple[State, Tensor]:
    """One i-SIR move for every chain; returns the new state and which chains moved, (B,) bool.

    A state whose `grad` is None stays without one; otherwise the chains that moved get theirs anew.
    """
    pos = state.position
    b, dim = pos.shape
    fresh = proposal.sample(b * (candidates - 1), generator)
    e_fresh = _scored(energy, fresh, batch_size or len(fresh)).view(b, candidates - 1)
    fresh = fresh.view(b, candidates - 1, dim)
    log_w = torch.cat([(-state.energy - proposal.log_prob(pos))[:, None],
                       -e_fresh - proposal.log_prob(fresh.reshape(-1, dim)).view(b, -1)], 1)
    log_w = torch.nan_to_num(log_w, nan=-torch.inf, posinf=torch.inf)  # a NaN candidate is never chosen
    # Gumbel-max: the argmax of log w + Gumbel noise is a draw with probabilities softmax(log w)
    u = torch.rand(log_w.shape, generator=generator, device=generator.device, dtype=log_w.dtype)
    pick = (log_w - torch.log(-torch.log(u.clamp_min(1e-30)))).argmax(1)
    moved = pick != 0
    rows = torch.arange(b, device=pos.device)
    position = torch.cat([pos[:, None], fresh], 1)[rows, pick]
    value = torch.cat([state.energy[:, None], e_fresh], 1)[rows, pick]
    if state.grad is None:
        return State(position, value, None), moved
    grad = state.grad.clone()
    idx = moved.nonzero().squeeze(1)
    if len(idx):
        value[idx], grad[idx] = energy_and_grad(energy, position[idx])
    return State(position, value, grad), moved


def step(state: State, energy: Energy, *, proposal: Proposal, candidates: int, mala_steps: int, eps: float,
         generator: torch.Generator, batch_size: int | None = None) -> tuple[State, Info]:
    """One Ex2MCMC iteration: a global i-SIR move, then `mala_steps` MALA steps (the ddls MALA kernel)."""
    state, moved = isir_step(state, energy, proposal=proposal, candidates=candidates, generator=generator,
                             batch_size=batch_size)
    accept = torch.zeros_like(state.energy)
    for _ in range(mala_steps):
        state, info = mala_step(state, energy, eps=eps, generator=generator)
        accept = accept + info.accept_prob
    return state, Info(moved, accept / mala_steps if mala_steps else torch.full_like(accept, torch.nan))


class ChainsResult(NamedTuple):
    state: State
    moves: Tensor  # (B,) global moves that chose a fresh candidate
    accept: Tensor  # (B,) sum of the MALA acceptance probabilities
    evaluations: int  # forward and backward passes through the energy, summed over chains


def run_chains(energy: Energy, position: Tensor, config: Ex2MCMCConfig, *, generator: torch.Generator,
               proposal: Proposal | None = None, advance: Callable[[int], None] = lambda k: None,
               hook: Callable[[int, State, Info], None] | None = None) -> ChainsResult:
    """`config.iterations` Ex2MCMC iterations of the chains starting at `position`, (B, D).

    `hook(i, state, info)` runs after iteration i (under no_grad), before the next one draws from the proposal:
    FlEx2MCMC trains its flow there."""
    proposal = StandardNormal(position.shape[1]) if proposal is None else proposal
    b = len(position)
    local = config.mala_steps > 0
    with torch.no_grad():
        if local:
            state = init(position, energy)
        else:  # i-SIR alone never needs a gradient
            state = State(position.detach(), energy(position), None)
        moves = torch.zeros(b, dtype=torch.long, device=position.device)
        accept = torch.zeros(b, dtype=state.energy.dtype, device=position.device)
        for i in range(config.iterations):
            state, info = step(state, energy, proposal=proposal, candidates=config.candidates,
                               mala_steps=config.mala_steps, eps=config.eps, generator=generator,
                               batch_size=config.chunk_size)
            moves += info.moved
            if local:
                accept += info.accept_prob * config.mala_steps
            if hook is not None:
                hook(i, state, info)
            advance(1)
    moved = int(moves.sum())
    evaluations = (2 if local else 1) * b + config.iterations * b * (config.candidates - 1) \
        + (2 * moved + 2 * config.iterations * config.mala_steps * b if local else 0)
    return ChainsResult(state, moves, accept, evaluations)


def run_on_target(target: LatentLogit, n: int, config, name: str, title: str, *, seed: int, progress: bool,
                  run: Callable[..., ChainsResult]) -> tuple[PosthocResult, list]:
    """The chunk loop of Ex2MCMC and its variants: chunk k's chains start from the prior draws of stream
    (seed, k) and `run(energy, z0, generator=..., advance=...)` (returning a ChainsResult, or an object whose
    `.chains` is one) moves them. Returns the samples, with global and MALA acceptance in their info, and
    every chunk's own result. `config` has chunk_size, iterations, mala_steps, eps."""
    if isinstance(target.energy.label, Tensor) or isinstance(target.energy.temperature, Tensor):
        raise DDLSError(f"{name} scores candidates for many chains at once and cannot take a label or temperature "
                        f"per chain; give one class (--label K) and one temperature for every chain")
    # MALA needs the gradient of the calibrated logit; i-SIR alone takes any calibration
    energy = target.as_energy() if config.mala_steps else lambda z: -standard_normal_logpdf(z) - target(z)
    xs, zs, outs, moves, accept, evaluations = [], [], [], 0, 0.0, 0
    with frozen(*target.modules()), step_bar(progress, n, config.chunk_size, config.iterations, name) as advance:
        for _, start, stop, gen in seeded_chunks(n, config.chunk_size, seed, target.device):
            out = run(energy, target.prior_sample(stop - start, gen), generator=gen, advance=advance)
            chains = getattr(out, "chains", out)
            z = chains.state.position
            if not torch.isfinite(z).all():
                raise DDLSError(f"{title} latents became NaN/inf; try a smaller eps (got {config.eps:g})")
            with torch.no_grad():
                xs.append(target.decode(z).cpu())
            zs.append(z.cpu())
            outs.append(out)
            moves += int(chains.moves.sum())
            accept += float(chains.accept.sum())
            evaluations += chains.evaluations
    info = {"global_acceptance": moves / (n * config.iterations)}
    if config.mala_steps:
        info["acceptance"] = accept / (n * config.iterations * config.mala_steps)
    return PosthocResult(torch.cat(xs), torch.cat(zs), evaluations, info), outs


@register("ex2mcmc", Ex2MCMCConfig, "Ex2MCMC: global importance-resampling moves from the prior between MALA steps",
          shared={"chunk_size": "chunk_size", "eps": "eps"}, settings=[
              Setting("--ex2mcmc-iterations", "iterations", click.IntRange(min=1),
                      "Ex2MCMC: global moves per chain, each followed by the MALA steps."),
              Setting("--ex2mcmc-candidates", "candidates", click.IntRange(min=2),
                      "Ex2MCMC: candidates per global move (the current latent and N-1 prior draws)."),
              Setting("--ex2mcmc-mala-steps", "mala_steps", click.IntRange(min=0),
                      "Ex2MCMC: MALA steps (step size --eps) after each global move."),
          ])
def sample(target: LatentLogit, n: int, config: Ex2MCMCConfig = Ex2MCMCConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n chains; chunk k starts from the prior draws of stream (seed, k), as DDLS does, and draws its
    candidates and noise from the same stream."""
    def run(energy, z0, **kw):
        return run_chains(energy, z0, config, **kw)

    return run_on_target(target, n, config, "ex2mcmc", "Ex2MCMC", seed=seed, progress=progress, run=run)[0]
