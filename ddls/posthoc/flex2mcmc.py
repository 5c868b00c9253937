"""FlEx2MCMC: Ex2MCMC whose global moves draw from a normalizing flow fitted to the chains (Samsonov et al.,
NeurIPS 2022, "Local-Global MCMC kernels: the best of both worlds").

Ex2MCMC (ex2mcmc.py) proposes its global candidates from the prior p0; where exp(-E) sits far from p0, almost
no prior draw outweighs the current latent and the global move stays put. FlEx2MCMC proposes from a flow q
(flows.RealNVP, the identity map at the start, so q = p0) and learns q from the chains:

1. adaptation, the first `adapt` iterations: an Ex2MCMC iteration with q as the proposal (i-SIR weights
   exp(-E(z)) / q(z)), then `flow_steps` Adam steps on the forward KL estimate -mean log q(z) over the chains'
   current latents (detached);
2. sampling, the remaining iterations: q is frozen, so each iteration is one fixed Ex2MCMC kernel (i-SIR with
   the current latent among the candidates, then MALA), which leaves exp(-E) invariant whatever q is.

Only the forward KL trains q, not the paper's mixture with a backward KL E_q[log q + E]: the forward KL needs
no pass through G and D (the backward one costs a forward and a backward pass per flow draw per Adam step), and
it spreads q over every mode the chains visit, which an importance proposal needs; the backward KL tends to seek one
mode. The flow's own passes are not counted as evaluations: they are a small MLP, not the GAN.

A flow fitted to a few thousand chain states in many dimensions can put almost no mass where the chains
are; then the current latent outweighs every candidate and the global move stays put (on the shipped SNGAN
the frozen flow's moves were taken 0.11 of the time, the prior's 0.90). So `prior_share` a (0.5 by default; 0 is
the paper's flow alone) proposes from the defensive mixture (1 - a) q + a p0 (Hesterberg, 1995): a draw comes
from p0 with probability a, and every weight is at most 1 / a times its weight under the prior alone, so the
moves are never much worse than Ex2MCMC's, whatever the flow learnt (on the SNGAN: FID 16.97, against 30.03
with the flow alone and the generator's 15.82). i-SIR leaves exp(-E) invariant for this proposal as for any other.

Each chunk of chains fits its own flow, seeded from the chunk's stream, so chunk k's samples are the same
whoever runs it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import click
import torch
from torch import Tensor

from ..errors import DDLSError
from ..sampling.samplers import State
from .ex2mcmc import ChainsResult, Energy, Ex2MCMCConfig, Info, Proposal, StandardNormal, run_chains, run_on_target
from .flows import RealNVP
from .registry import POSITIVE, Setting, register
from .target import LatentLogit, PosthocResult


@dataclass(frozen=True)
class FlEx2MCMCConfig:
    iterations: int = 20  # global moves per chain, each followed by the MALA steps
    adapt: int = 10  # the first iterations, after each of which the flow is trained; then it is frozen
    candidates: int = 10  # N: the current latent and N - 1 flow draws
    mala_steps: int = 5  # local steps after each global move (0: i-SIR alone)
    eps: float = 0.01  # MALA step size
    flow_layers: int = 4  # affine coupling layers
    flow_hidden: int = 64  # width of each coupling's MLP
    flow_lr: float = 0.01  # Adam's step size on the flow
    flow_steps: int = 20  # Adam steps after each adaptation iteration
    prior_share: float = 0.5  # a: candidates drawn from (1 - a) flow + a prior; 0: the flow alone (the paper's)
    chunk_size: int = 5000  # chains run at once (each chunk fits its own flow)

    def __post_init__(self):
        if self.iterations < 1 or not 0 <= self.adapt < self.iterations:
            raise DDLSError(f"FlEx2MCMC needs iterations >= 1 and 0 <= adapt < iterations (at least one move with "
                            f"the flow frozen); got iterations {self.iterations}, adapt {self.adapt}")
        counts = {"candidates": (self.candidates, 2), "mala_steps": (self.mala_steps, 0),
                  "flow_layers": (self.flow_layers, 1), "flow_hidden": (self.flow_hidden, 1),
                  "flow_steps": (self.flow_steps, 1), "chunk_size": (self.chunk_size, 1)}
        bad = [f"{name} >= {low} (got {value})" for name, (value, low) in counts.items() if value < low]
        if bad:
            raise DDLSError(f"FlEx2MCMC needs {', '.join(bad)}")
        if not 0 <= self.prior_share < 1:
            raise DDLSError(f"FlEx2MCMC prior_share must be in [0, 1) (1 would be Ex2MCMC: use --method ex2mcmc); "
                            f"got {self.prior_share}")
        for name in ("eps", "flow_lr"):
            if not 0 < getattr(self, name) < math.inf:
                raise DDLSError(f"FlEx2MCMC {name} must be a positive finite number, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def chains(self) -> Ex2MCMCConfig:
        """The Ex2MCMC settings of the chains."""
        return Ex2MCMCConfig(iterations=self.iterations, candidates=self.candidates, mala_steps=self.mala_steps,
                             eps=self.eps, chunk_size=self.chunk_size)


@dataclass(frozen=True)
class DefensiveMixture:
    """The proposal (1 - share) q + share p0: each draw comes from p0 with probability `share`, else from q."""

    flow: Proposal
    prior: Proposal
    share: float

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        from_prior = torch.rand(n, generator=generator, device=generator.device) < self.share
        return torch.where(from_prior[:, None], self.prior.sample(n, generator), self.flow.sample(n, generator))

    def log_prob(self, z: Tensor) -> Tensor:
        return torch.logaddexp(math.log1p(-self.share) + self.flow.log_prob(z),
                               math.log(self.share) + self.prior.log_prob(z))


def fit_forward_kl(flow: RealNVP, optimizer: torch.optim.Optimizer, z: Tensor, steps: int) -> Tensor:
    """`steps` Adam steps on -mean log q(z), the forward KL from the chains' latents z to q up to a constant;
    returns the last loss (a 0-d tensor, never read on the host here)."""
    z = z.detach()
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = -flow.log_prob(z).mean()
            loss.backward()
            optimizer.step()
    return loss.detach()


class ChunkResult(NamedTuple):
    chains: ChainsResult  # the Ex2MCMC chains, their moves, acceptance and evaluations
    frozen_moves: Tensor  # (B,) global moves with the flow frozen that chose a fresh candidate
    flow: RealNVP  # the flow as frozen


def run_chunk(energy: Energy, position: Tensor, config: FlEx2MCMCConfig, *, generator: torch.Generator,
              advance: Callable[[int], None] = lambda k: None) -> ChunkResult:
    """FlEx2MCMC chains starting at `position`, (B, D): a new flow (its weights drawn from `generator`) as the
    proposal of `config.iterations` Ex2MCMC iterations, trained after each of the first `config.adapt`."""
    flow = RealNVP(position.shape[1], config.flow_layers, config.flow_hidden, generator=generator,
                   dtype=position.dtype)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.flow_lr)
    frozen_moves = torch.zeros(len(position), dtype=torch.long, device=position.device)

    def adapt_or_count(i: int, state: State, info: Info) -> None:
        if i < config.adapt:
            fit_forward_kl(flow, optimizer, state.position, config.flow_steps)
        else:
            frozen_moves.add_(info.moved)

    proposal = (flow if config.prior_share == 0 else
                DefensiveMixture(flow, StandardNormal(position.shape[1]), config.prior_share))
    chains = run_chains(energy, position, config.chains(), generator=generator, proposal=proposal, advance=advance,
                        hook=adapt_or_count)
    flow.requires_grad_(False)
    return ChunkResult(chains, frozen_moves, flow)


@register("flex2mcmc", FlEx2MCMCConfig,
          "FlEx2MCMC: Ex2MCMC whose global moves draw from a flow fitted to the chains, then frozen",
          shared={"chunk_size": "chunk_size", "eps": "eps"}, settings=[
              Setting("--flex2mcmc-iterations", "iterations", click.IntRange(min=1),
                      "FlEx2MCMC: global moves per chain, each followed by the MALA steps."),
              Setting("--flex2mcmc-adapt", "adapt", click.IntRange(min=0),
                      "FlEx2MCMC: first global moves after which the flow is trained (fewer than the moves); "
                      "then it is frozen."),
              Setting("--flex2mcmc-candidates", "candidates", click.IntRange(min=2),
                      "FlEx2MCMC: candidates per global move (the current latent and N-1 flow draws)."),
              Setting("--flex2mcmc-mala-steps", "mala_steps", click.IntRange(min=0),
                      "FlEx2MCMC: MALA steps (step size --eps) after each global move."),
              Setting("--flex2mcmc-flow-layers", "flow_layers", click.IntRange(min=1),
                      "FlEx2MCMC: affine coupling layers of the flow."),
              Setting("--flex2mcmc-flow-hidden", "flow_hidden", click.IntRange(min=1),
                      "FlEx2MCMC: hidden units of each coupling layer's MLP."),
              Setting("--flex2mcmc-flow-lr", "flow_lr", POSITIVE, "FlEx2MCMC: Adam's step size on the flow."),
              Setting("--flex2mcmc-flow-steps", "flow_steps", click.IntRange(min=1),
                      "FlEx2MCMC: Adam steps on the flow after each adaptation move."),
              Setting("--flex2mcmc-prior-share", "prior_share", click.FloatRange(min=0, max=1, max_open=True),
                      "FlEx2MCMC: share of candidates drawn from the prior instead of the flow (a defensive "
                      "mixture: a flow that missed the chains cannot stall them); 0: the flow alone."),
          ])
def sample(target: LatentLogit, n: int, config: FlEx2MCMCConfig = FlEx2MCMCConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n chains; chunk k starts from the prior draws of stream (seed, k), as DDLS and Ex2MCMC do, then draws
    its flow's initial weights, its candidates and its noise from the same stream."""
    def run(energy, z0, **kw):
        return run_chunk(energy, z0, config, **kw)

    result, outs = run_on_target(target, n, config, "flex2mcmc", "FlEx2MCMC", seed=seed, progress=progress, run=run)
    frozen_moves = sum(int(out.frozen_moves.sum()) for out in outs)
    result.info["frozen_global_acceptance"] = frozen_moves / (n * (config.iterations - config.adapt))
    return result
