"""Ex2MCMC against known answers.

- i-SIR alone leaves a 1-D Gaussian target invariant and reaches it from the prior;
- on two far-apart Gaussian modes (weights 0.2 / 0.8) Ex2MCMC finds the weights, MALA alone
  keeps the split its starting points had;
- the network evaluations it reports are the passes through D that happened;
- the same seed gives the same samples, through the registry and the command line.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DEVICE, Linear, MixtureLogit, invoke, one_line_error
from ddls._torch import make_generator
from ddls.errors import DDLSError
from ddls.posthoc import default_config, run
from ddls.posthoc.ex2mcmc import Ex2MCMCConfig, StandardNormal, isir_step, run_chains
from ddls.posthoc.target import LatentLogit
from ddls.sampling.energy import LatentEnergy
from ddls.sampling.samplers import State

CKPT = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
MEAN, STD = 1.0, 0.5  # the 1-D target


def gaussian_energy(z):
    return 0.5 * ((z[:, 0] - MEAN) / STD) ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_isir_leaves_the_target_invariant(seed):
    """Chains drawn from N(1, 0.5^2) are still N(1, 0.5^2) after i-SIR moves with only 2 candidates
    (plain SIR, which drops the current point, would give the prior N(0, 1) there)."""
    n, gen = 20000, make_generator(seed, DEVICE)
    z = MEAN + STD * torch.randn(n, 1, generator=gen, device=DEVICE)
    state = State(z, gaussian_energy(z), None)
    moved = torch.zeros(n, dtype=torch.bool, device=DEVICE)
    for _ in range(3):
        state, m = isir_step(state, gaussian_energy, proposal=StandardNormal(1), candidates=2, generator=gen)
        moved |= m
    x = state.position[:, 0]
    assert float(moved.float().mean()) > 0.5  # the chains did move
    assert abs(float(x.mean()) - MEAN) < 0.02  # 5.7 standard errors
    assert abs(float(x.var()) - STD**2) < 0.015  # 6 standard errors
    assert state.grad is None and torch.allclose(state.energy, gaussian_energy(state.position))


def test_isir_chains_reach_the_target_from_the_prior():
    gen = make_generator(0, DEVICE)
    z = torch.randn(20000, 1, generator=gen, device=DEVICE)
    out = run_chains(gaussian_energy, z, Ex2MCMCConfig(iterations=20, candidates=4, mala_steps=0), generator=gen)
    x = out.state.position[:, 0]
    assert abs(float(x.mean()) - MEAN) < 0.02 and abs(float(x.var()) - STD**2) < 0.015
    # i-SIR alone: one forward pass per chain to start, then N - 1 per move
    assert out.evaluations == 20000 * (1 + 20 * 3)


# Two modes, far apart for gradient steps (the density between them is exp(-16) of a peak's)
MODES, WEIGHTS, MODE_STD = ((-2.0, 0.0), (2.0, 0.0)), (0.2, 0.8), 0.35


def two_modes():
    logit = MixtureLogit(MODES, WEIGHTS, MODE_STD)
    return LatentLogit(LatentEnergy(Linear(torch.eye(2), [0.0, 0.0]).to(DEVICE), logit.to(DEVICE), 2))


def left_share(result):
    return float((result.samples[:, 0] < 0).float().mean())


def test_ex2mcmc_finds_the_mode_weights_where_mala_alone_does_not():
    target = two_modes()
    n = 2000
    config = default_config("ex2mcmc", eps=0.05, ex2mcmc_iterations=30, ex2mcmc_candidates=10,
                            ex2mcmc_mala_steps=3)
    ex2 = run("ex2mcmc", target, n, config, seed=0)
    # MALA alone, from the same prior draws, at the same step size and more steps
    mala = run("mala", target, n, default_config("mala", steps=200, eps=0.05), seed=0)
    assert abs(left_share(ex2) - WEIGHTS[0]) < 0.04  # the standard error is 0.009
    assert abs(left_share(mala) - WEIGHTS[0]) > 0.15  # stuck where it started: about half on each side
    # within a mode the local steps give the right spread
    right = ex2.samples[ex2.samples[:, 0] > 0]
    assert abs(float(right[:, 1].std()) - MODE_STD) < 0.03
    assert 0.1 < ex2.info["global_acceptance"] < 1 and 0.5 < ex2.info["acceptance"] <= 1


def test_reported_evaluations_are_the_passes_through_d():
    target = two_modes()
    disc = target.energy.discriminator
    config = Ex2MCMCConfig(iterations=4, candidates=5, mala_steps=2, eps=0.05, chunk_size=150)
    result = run("ex2mcmc", target, 400, config, seed=1)
    assert disc.backward_rows > 0
    assert result.evaluations == disc.forward_rows + disc.backward_rows


def test_same_seed_same_samples():
    config = Ex2MCMCConfig(iterations=3, candidates=4, mala_steps=2, eps=0.05, chunk_size=64)
    a = run("ex2mcmc", two_modes(), 100, config, seed=7)
    b = run("ex2mcmc", two_modes(), 100, config, seed=7)
    c = run("ex2mcmc", two_modes(), 100, config, seed=8)
    torch.testing.assert_close(a.latents, b.latents, rtol=0, atol=0)
    assert a.evaluations == b.evaluations and a.info == b.info
    assert not torch.equal(a.latents, c.latents)


@pytest.mark.parametrize("fields", [{"candidates": 1}, {"iterations": 0}, {"mala_steps": -1}, {"eps": 0.0}])
def test_bad_settings_are_refused(fields):
    with pytest.raises(DDLSError):
        Ex2MCMCConfig(**fields)


def test_sample_command_runs_ex2mcmc_with_its_options(tmp_path):
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", CKPT, "--method", "ex2mcmc", "--n", 40, "--eps", 1e-3,
               "--ex2mcmc-iterations", 2, "--ex2mcmc-candidates", 3, "--ex2mcmc-mala-steps", 1, "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        meta = json.loads(str(npz["meta"]))
        assert npz["x"].shape == (40, 2)
    assert meta["settings"] == {"iterations": 2, "candidates": 3, "mala_steps": 1, "eps": 1e-3, "chunk_size": 5000}
    assert set(meta["info"]) == {"acceptance", "global_acceptance"}
    # 2 to start, then per move 2 candidates, 2 per MALA step and 2 per chain that moved
    moved = round(meta["info"]["global_acceptance"] * 40 * 2)
    assert meta["evaluations"] == 40 * 2 + 2 * 40 * (2 + 2) + 2 * moved
    stray = invoke("sample", "--ckpt", CKPT, "--method", "ex2mcmc", "--n", 4, "--steps", 7, "--out", tmp_path / "t.npz")
    assert "--steps" in one_line_error(stray)


def test_tune_grid_holds_ex2mcmc_settings_its_config_takes():
    from ddls.tuning.grid import EX2MCMC_SETTINGS, default_grid

    recipes = default_grid(("ex2mcmc",), temperatures=(1.0, 0.1), eps=(1e-2, 1e-3))
    assert {(r.temperature, r.options["eps"]) for r in recipes} == {(1.0, 1e-2), (1.0, 1e-3), (0.1, 1e-2), (0.1, 1e-3)}
    config = default_config("ex2mcmc", **recipes[0].options)
    assert (config.iterations, config.candidates, config.mala_steps) == tuple(EX2MCMC_SETTINGS.values())
