"""FlEx2MCMC and its flow against known answers.

- the flow: the identity at the start (q = N(0, I), its draws the generator's normal draws); with random
  weights it inverts itself, its log-determinant is autograd's, and its density integrates to 1;
- on N(m, 0.5^2 I) with |m| = 4, where prior candidates almost never win (Ex2MCMC's global moves stay put),
  the fitted flow is the target (its draws' mean and spread), so i-SIR's weights are all but equal and
  the chain moves to a fresh candidate at the rate (N - 1) / N; the chains' mean and variance are the target's;
- on two far modes (weights 0.3 / 0.7) away from the prior, where Ex2MCMC's prior draws keep the split the
  chains started with, FlEx2MCMC finds the weights;
- the defensive mixture (1 - a) q + a p0: its density is the mixture's, a share a of its draws are the prior's;
  where the proposal missed the target the chains stall, and the mixture moves them at the rate its prior
  draws predict (k / (k + 1) for k ~ Binomial(N - 1, a)) while they keep sampling the target;
- the evaluations it reports are the passes through D; the same seed gives the same samples.
"""
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import DEVICE, Linear, MixtureLogit, invoke, one_line_error
from ddls._torch import make_generator
from ddls.errors import DDLSError
from ddls.posthoc import default_config, run
from ddls.posthoc.ex2mcmc import Ex2MCMCConfig, StandardNormal, run_chains
from ddls.posthoc.flex2mcmc import DefensiveMixture, FlEx2MCMCConfig, run_chunk
from ddls.posthoc.flows import RealNVP
from ddls.posthoc.target import LatentLogit
from ddls.sampling.energy import LatentEnergy, standard_normal_logpdf

pytestmark = pytest.mark.usefixtures("one_thread")  # small MLPs: one thread is faster on a busy CPU

CKPT = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
# small flows and few Adam steps keep the file fast; they are enough in two dimensions
SMALL = dict(flex2mcmc_flow_hidden=32, flex2mcmc_flow_steps=10)


def randomised(flow: RealNVP, seed: int, scale: float = 0.3) -> RealNVP:
    gen = make_generator(seed, DEVICE)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, device=DEVICE))
    return flow


def test_a_new_flow_is_the_identity_so_its_density_is_the_prior():
    flow = RealNVP(3, layers=4, hidden=16, generator=make_generator(0, DEVICE))
    z = torch.randn(50, 3, generator=make_generator(1, DEVICE), device=DEVICE)
    torch.testing.assert_close(flow.log_prob(z), standard_normal_logpdf(z))
    a, b = make_generator(2, DEVICE), make_generator(2, DEVICE)
    torch.testing.assert_close(flow.sample(20, a), torch.randn(20, 3, generator=b, device=DEVICE))


def test_the_initial_weights_come_from_the_generator():
    def weights(seed):
        return torch.cat([p.flatten() for p in RealNVP(4, generator=make_generator(seed, DEVICE)).parameters()])

    torch.testing.assert_close(weights(5), weights(5), rtol=0, atol=0)
    assert not torch.equal(weights(5), weights(6))


@pytest.mark.parametrize("dim", [1, 3, 4])
def test_the_flow_inverts_and_its_log_det_is_the_jacobians(dim):
    flow = randomised(RealNVP(dim, layers=5, hidden=8, generator=make_generator(0, DEVICE)), seed=1)
    u = torch.randn(6, dim, generator=make_generator(2, DEVICE), device=DEVICE)
    z, log_det = flow(u)
    back, log_det_inv = flow.inverse(z)
    torch.testing.assert_close(back, u, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(log_det_inv, -log_det, atol=1e-5, rtol=1e-5)
    if dim > 1:  # the random weights make the map non-linear: its log-det varies from point to point
        assert float(log_det.detach().std()) > 0.05
    for i in range(len(u)):
        jac = torch.autograd.functional.jacobian(lambda x: flow(x[None])[0][0], u[i])
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jac)[1], atol=1e-4, rtol=1e-4)
    # log q(z) = log N(f^-1(z)) + log |det d f^-1 / dz|
    torch.testing.assert_close(flow.log_prob(z), standard_normal_logpdf(u) - log_det, atol=1e-4, rtol=1e-4)


def test_the_flow_density_integrates_to_one():
    flow = randomised(RealNVP(2, layers=4, hidden=8, generator=make_generator(0, DEVICE)), seed=3)
    side = torch.linspace(-12, 12, 601, device=DEVICE, dtype=torch.float64)
    grid = torch.cartesian_prod(side, side)
    with torch.no_grad():
        density = flow.double().log_prob(grid).exp()
    cell = float(side[1] - side[0]) ** 2
    mean = (grid * density[:, None]).sum(0) * cell
    assert abs(float(density.sum()) * cell - 1) < 2e-3
    # and it is not the prior: the random weights moved its mass
    assert float(mean.norm()) > 0.1


D, M_NORM, S = 3, 4.0, 0.5
M = torch.full((D,), M_NORM / math.sqrt(D))


class GaussianLogit(nn.Module):
    """d(x) = log N(x; M, S^2 I) - log N(x; 0, I): then p0 * exp(d) is N(M, S^2 I)."""

    def forward(self, x):
        log_p = -0.5 * ((x - M.to(x.device)) / S).pow(2).sum(1) - D * math.log(S) - 0.5 * D * math.log(2 * math.pi)
        return log_p - standard_normal_logpdf(x)


def far_gaussian():
    return LatentLogit(LatentEnergy(Linear(torch.eye(D), [0.0] * D).to(DEVICE), GaussianLogit(), D))


@pytest.mark.parametrize("seed", [0, 1])
def test_on_a_gaussian_far_from_the_prior_the_flow_learns_it_and_global_moves_are_taken(seed):
    target, n = far_gaussian(), 2000
    config = default_config("flex2mcmc", eps=0.05, flex2mcmc_prior_share=0.0, **SMALL)  # the flow alone
    flex = run("flex2mcmc", target, n, config, seed=seed)
    ex2 = run("ex2mcmc", target, n, default_config("ex2mcmc", eps=0.05, ex2mcmc_iterations=config.iterations),
              seed=seed)
    # with q equal to the target the N weights are equal: a fresh candidate wins with probability (N - 1) / N = 0.9
    assert 0.8 < flex.info["frozen_global_acceptance"] < 0.92
    assert ex2.info["global_acceptance"] < 0.1  # prior draws 4 prior deviations away seldom beat the chain
    z = flex.latents
    torch.testing.assert_close(z.mean(0), M, atol=0.045, rtol=0)  # 4 standard errors
    torch.testing.assert_close(z.var(0), torch.full((D,), S**2), atol=0.035, rtol=0)  # 4.4 standard errors


def test_the_fitted_flow_is_the_target_gaussian():
    energy = far_gaussian().as_energy()
    gen = make_generator(0, DEVICE)
    z0 = torch.randn(2000, D, generator=gen, device=DEVICE)
    config = FlEx2MCMCConfig(iterations=11, adapt=10, eps=0.05, flow_hidden=32, flow_steps=10)
    out = run_chunk(energy, z0, config, generator=gen)
    with torch.no_grad():
        draws = out.flow.sample(20000, gen)
    torch.testing.assert_close(draws.mean(0), M, atol=0.06, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.full((D,), S), atol=0.06, rtol=0)
    assert not any(p.requires_grad for p in out.flow.parameters())  # frozen


# Two modes, far from each other and from the prior's mass (a prior draw lands in one about once in 5000)
MODES, WEIGHTS, MODE_STD = ((-3.0, 2.0), (3.0, 2.0)), (0.3, 0.7), 0.35


def two_modes():
    logit = MixtureLogit(MODES, WEIGHTS, MODE_STD)
    return LatentLogit(LatentEnergy(Linear(torch.eye(2), [0.0, 0.0]).to(DEVICE), logit.to(DEVICE), 2))


def left_share(result):
    return float((result.samples[:, 0] < 0).float().mean())


def test_flex2mcmc_finds_the_mode_weights_where_ex2mcmc_with_the_prior_does_not():
    target, n = two_modes(), 2000
    flex = run("flex2mcmc", target, n, default_config("flex2mcmc", eps=0.05, **SMALL), seed=0)
    ex2 = run("ex2mcmc", target, n, default_config("ex2mcmc", eps=0.05, ex2mcmc_iterations=20), seed=0)
    assert abs(left_share(flex) - WEIGHTS[0]) < 0.04  # the standard error is 0.01
    assert abs(left_share(ex2) - WEIGHTS[0]) > 0.1  # about the split its chains started with
    right = flex.samples[flex.samples[:, 0] > 0]
    assert abs(float(right[:, 1].std()) - MODE_STD) < 0.03
    assert flex.info["frozen_global_acceptance"] > 0.5 and 0.5 < flex.info["acceptance"] <= 1


# --- the defensive mixture (1 - a) q + a p0 ------------------------------------------------------------------


@dataclass(frozen=True)
class FarProposal:
    """N(6, 0.1^2 I): a proposal that missed a target near the origin (its draws weigh ~nothing there)."""

    dim: int

    def sample(self, n, generator):
        return 6.0 + 0.1 * torch.randn(n, self.dim, generator=generator, device=generator.device)

    def log_prob(self, z):
        return standard_normal_logpdf((z - 6.0) / 0.1) - self.dim * math.log(0.1)


def test_the_mixture_density_is_the_mixture_of_its_parts_and_integrates_to_one():
    flow = randomised(RealNVP(2, layers=4, hidden=8, generator=make_generator(0, DEVICE)), seed=3).double()
    mix = DefensiveMixture(flow, StandardNormal(2), 0.3)
    side = torch.linspace(-12, 12, 601, device=DEVICE, dtype=torch.float64)
    grid = torch.cartesian_prod(side, side)
    with torch.no_grad():
        density = mix.log_prob(grid).exp()
        expected = 0.7 * flow.log_prob(grid).exp() + 0.3 * standard_normal_logpdf(grid).exp()
    torch.testing.assert_close(density, expected)
    assert abs(float(density.sum()) * float(side[1] - side[0]) ** 2 - 1) < 2e-3
    # draws: a share 0.3 from the prior, told apart from the far proposal's by where they land
    draws = DefensiveMixture(FarProposal(2), StandardNormal(2), 0.3).sample(20000, make_generator(1, DEVICE))
    assert abs(float((draws[:, 0] < 3).double().mean()) - 0.3) < 0.015  # 4.6 standard errors


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_a_missed_proposal_stalls_the_chains_and_the_mixture_restores_the_moves(share):
    # target = the prior (d = 0): every prior draw weighs as much as a chain in the prior's mass, so with k of the
    # N - 1 candidates from the prior a fresh one wins with probability k / (k + 1), k ~ Binomial(N - 1, share)
    dim, n, candidates = 2, 4000, 10
    target = LatentLogit(LatentEnergy(Linear(torch.eye(dim), [0.0] * dim).to(DEVICE), ZeroLogit(), dim))
    config = Ex2MCMCConfig(iterations=5, candidates=candidates, mala_steps=0)
    z0 = torch.randn(n, dim, generator=make_generator(0, DEVICE), device=DEVICE)
    energy = lambda z: -standard_normal_logpdf(z) - target(z)  # noqa: E731
    alone = run_chains(energy, z0, config, generator=make_generator(1, DEVICE), proposal=FarProposal(dim))
    mixed = run_chains(energy, z0, config, generator=make_generator(1, DEVICE),
                       proposal=DefensiveMixture(FarProposal(dim), StandardNormal(dim), share))
    expected = sum(math.comb(candidates - 1, k) * share**k * (1 - share)**(candidates - 1 - k) * k / (k + 1)
                   for k in range(candidates))
    assert float(alone.moves.sum()) / (n * 5) < 1e-3
    assert abs(float(mixed.moves.sum()) / (n * 5) - expected) < 0.02  # about 4 standard errors
    z = mixed.state.position  # and the chains still sample the target
    torch.testing.assert_close(z.mean(0), torch.zeros(dim), atol=0.07, rtol=0)
    torch.testing.assert_close(z.var(0), torch.ones(dim), atol=0.1, rtol=0)


class ZeroLogit(nn.Module):
    def forward(self, x):
        return torch.zeros(len(x), device=x.device)


def test_flex2mcmc_at_its_default_prior_share_samples_the_far_gaussian():
    target, n, a = far_gaussian(), 2000, FlEx2MCMCConfig().prior_share
    assert 0 < a < 1
    flex = run("flex2mcmc", target, n, default_config("flex2mcmc", eps=0.05, **SMALL), seed=0)
    z = flex.latents
    torch.testing.assert_close(z.mean(0), M, atol=0.045, rtol=0)
    torch.testing.assert_close(z.var(0), torch.full((D,), S**2), atol=0.035, rtol=0)
    # prior draws never win here, the flow's do: about k / (k + 1) with k ~ Binomial(9, 1 - a) flow candidates
    expected = sum(math.comb(9, k) * (1 - a)**k * a**(9 - k) * k / (k + 1) for k in range(10))
    assert abs(flex.info["frozen_global_acceptance"] - expected) < 0.06


def test_reported_evaluations_are_the_passes_through_d():
    target = two_modes()
    disc = target.energy.discriminator
    config = FlEx2MCMCConfig(iterations=4, adapt=2, candidates=5, mala_steps=2, eps=0.05, flow_hidden=8,
                             flow_steps=2, chunk_size=150)
    result = run("flex2mcmc", target, 400, config, seed=1)
    assert disc.backward_rows > 0
    assert result.evaluations == disc.forward_rows + disc.backward_rows


def test_same_seed_same_samples():
    config = FlEx2MCMCConfig(iterations=4, adapt=2, candidates=4, mala_steps=2, eps=0.05, flow_hidden=8,
                             flow_steps=3, chunk_size=64)
    a = run("flex2mcmc", two_modes(), 100, config, seed=7)
    b = run("flex2mcmc", two_modes(), 100, config, seed=7)
    c = run("flex2mcmc", two_modes(), 100, config, seed=8)
    torch.testing.assert_close(a.latents, b.latents, rtol=0, atol=0)
    assert a.evaluations == b.evaluations and a.info == b.info
    assert not torch.equal(a.latents, c.latents)


@pytest.mark.parametrize("fields", [{"adapt": 20}, {"adapt": -1}, {"iterations": 0}, {"candidates": 1},
                                    {"mala_steps": -1}, {"eps": 0.0}, {"flow_lr": float("inf")},
                                    {"flow_layers": 0}, {"flow_hidden": 0}, {"flow_steps": 0}, {"chunk_size": 0},
                                    {"prior_share": 1.0}, {"prior_share": -0.1}])
def test_bad_settings_are_refused_in_one_line(fields):
    with pytest.raises(DDLSError) as err:
        FlEx2MCMCConfig(**fields)
    assert "\n" not in str(err.value) and "FlEx2MCMC" in str(err.value)


def test_sample_command_runs_flex2mcmc_with_its_options(tmp_path):
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", CKPT, "--method", "flex2mcmc", "--n", 40, "--eps", 1e-3,
               "--flex2mcmc-iterations", 3, "--flex2mcmc-adapt", 1, "--flex2mcmc-candidates", 3,
               "--flex2mcmc-mala-steps", 1, "--flex2mcmc-flow-layers", 2, "--flex2mcmc-flow-hidden", 8,
               "--flex2mcmc-flow-lr", 0.02, "--flex2mcmc-flow-steps", 2, "--flex2mcmc-prior-share", 0.25,
               "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        meta = json.loads(str(npz["meta"]))
        assert npz["x"].shape == (40, 2)
    assert meta["settings"] == {"iterations": 3, "adapt": 1, "candidates": 3, "mala_steps": 1, "eps": 1e-3,
                                "flow_layers": 2, "flow_hidden": 8, "flow_lr": 0.02, "flow_steps": 2,
                                "prior_share": 0.25, "chunk_size": 5000}
    assert set(meta["info"]) == {"acceptance", "global_acceptance", "frozen_global_acceptance"}
    # 2 to start, then per move 2 candidates, 2 per MALA step and 2 per chain that moved
    moved = round(meta["info"]["global_acceptance"] * 40 * 3)
    assert meta["evaluations"] == 40 * 2 + 3 * 40 * (2 + 2) + 2 * moved
    bad = invoke("sample", "--ckpt", CKPT, "--method", "flex2mcmc", "--n", 4, "--flex2mcmc-iterations", 5,
                 "--out", tmp_path / "t.npz")
    assert "adapt < iterations" in one_line_error(bad)


def test_tune_grid_holds_flex2mcmc_settings_its_config_takes():
    from ddls.tuning.grid import FLEX2MCMC_SETTINGS, default_grid, evaluations_per_sample

    recipes = default_grid(("flex2mcmc",), temperatures=(1.0, 0.1), eps=(1e-2, 1e-3))
    assert {(r.temperature, r.options["eps"]) for r in recipes} == {(1.0, 1e-2), (1.0, 1e-3), (0.1, 1e-2), (0.1, 1e-3)}
    config = default_config("flex2mcmc", **recipes[0].options)
    assert (config.iterations, config.adapt, config.candidates, config.mala_steps) == tuple(FLEX2MCMC_SETTINGS.values())
    # 2 to start; per move 9 candidates, 10 for the MALA steps, 1 for the half of the chains that moved
    assert evaluations_per_sample(recipes[0], 100) == 2 + 20 * (9 + 10 + 1)
