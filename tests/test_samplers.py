"""Langevin and MALA on Gaussian targets whose answers are known exactly."""
import math

import pytest
import torch

from ddls._torch import make_generator
from ddls.sampling.driver import run_chain
from ddls.errors import DDLSError, NonFiniteEnergy
from ddls.sampling.samplers import init, make_sampler

from conftest import DEVICE

MU = torch.tensor([1.0, -2.0])
SD = torch.tensor([0.5, 1.5])


def gaussian_energy(z):
    return 0.5 * ((z - MU.to(z.device)) / SD.to(z.device)).pow(2).sum(1)


def run(name, eps, n=4000, steps=400, seed=0, noise_scale=1.0, energy=gaussian_energy):
    sampler = make_sampler(name, eps, noise_scale)
    gen = make_generator(seed, DEVICE)
    z0 = torch.randn(n, 2, generator=gen, device=DEVICE)
    out = run_chain(sampler, energy, z0, steps=steps, generator=gen)
    return out.state.position.cpu(), (out.accept_sum / steps).cpu()


def ula_stationary_var(eps, s):
    # z' = a z + sqrt(eps) n with a = 1 - eps/(2 s^2): stationary variance eps / (1 - a^2).
    a = 1 - eps / (2 * s**2)
    return eps / (1 - a**2)


def test_mala_matches_mean_and_variance():
    n = 4000
    z, acc = run("mala", 0.2, n=n)
    # Final states of independent chains: the tolerance is 5 standard errors for n chains.
    mean_tol = 5 * SD / math.sqrt(n)
    var_tol = 5 * SD**2 * math.sqrt(2 / n)
    assert ((z.mean(0) - MU).abs() < mean_tol).all(), z.mean(0)
    assert ((z.var(0) - SD**2).abs() < var_tol).all(), z.var(0)
    assert 0.3 < float(acc.mean()) < 1.0


def test_ula_has_its_known_step_size_bias_and_mala_removes_it():
    n, eps = 4000, 0.4
    z, _ = run("ula", eps, n=n)
    expected = torch.tensor([ula_stationary_var(eps, float(s)) for s in SD])
    var_tol = 5 * expected * math.sqrt(2 / n)
    assert ((z.var(0) - expected).abs() < var_tol).all(), (z.var(0), expected)
    assert ((z.mean(0) - MU).abs() < 5 * expected.sqrt() / math.sqrt(n)).all()
    # The biased ULA variance of the narrow coordinate is far from the target; MALA's is not.
    assert abs(float(z.var(0)[0]) - 0.25) > 3 * float(var_tol[0])
    zm, _ = run("mala", eps, n=n)
    assert abs(float(zm.var(0)[0]) - 0.25) < 5 * 0.25 * math.sqrt(2 / n)


def test_noise_scale_zero_is_gradient_descent():
    z, _ = run("ula", 0.05, n=8, steps=2000, noise_scale=0.0)
    torch.testing.assert_close(z, MU.expand(8, 2), atol=1e-3, rtol=0)


def test_acceptance_falls_as_eps_grows():
    rates = [float(run("mala", eps, n=1000, steps=100)[1].mean()) for eps in (0.01, 0.1, 0.5, 1.5)]
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.95 and rates[-1] < 0.5


def test_ula_step_is_the_paper_update():
    sampler = make_sampler("ula", 0.3, noise_scale=0.7)
    z = torch.tensor([[0.2, 0.4], [-1.0, 3.0]], device=DEVICE)
    state = init(z, gaussian_energy)
    gen = make_generator(5, DEVICE)
    new, info = sampler.step(state, gaussian_energy, generator=gen)
    noise = torch.randn(z.shape, generator=make_generator(5, DEVICE), device=DEVICE)
    grad = (z - MU.to(DEVICE)) / SD.to(DEVICE) ** 2
    torch.testing.assert_close(new.position, z - 0.15 * grad + math.sqrt(0.3) * 0.7 * noise)
    torch.testing.assert_close(new.energy, gaussian_energy(new.position))
    assert info.accepted.all()


def test_same_seed_same_chains_other_seed_other_chains():
    a, _ = run("mala", 0.1, n=50, steps=20, seed=3)
    b, _ = run("mala", 0.1, n=50, steps=20, seed=3)
    c, _ = run("mala", 0.1, n=50, steps=20, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_step_size_is_refused(eps):
    with pytest.raises(DDLSError, match="eps must be a positive finite number"):
        make_sampler("ula", eps)


def test_unknown_sampler_is_refused():
    with pytest.raises(DDLSError, match="unknown sampler"):
        make_sampler("hmc", 0.1)


def test_non_finite_energy_names_chains_and_step():
    def energy(z):
        # chains 1 and 3 have infinite energy; the others are untouched
        scale = torch.ones(len(z), device=z.device)
        scale[[1, 3]] = float("inf")
        return gaussian_energy(z) * scale

    z0 = torch.zeros(5, 2, device=DEVICE)
    with pytest.raises(NonFiniteEnergy) as err:
        run_chain(make_sampler("ula", 0.1), energy, z0, steps=10, generator=make_generator(0, DEVICE))
    assert err.value.chains == [1, 3]
    assert err.value.step == 0
    assert "eps=0.1" in str(err.value)


def test_divergence_is_caught_at_the_step_it_happens():
    # A target far too sharp for eps=3: ULA explodes; the error reports a step after the start.
    sharp = lambda z: 50.0 * z.pow(2).sum(1)
    z0 = torch.ones(4, 2, device=DEVICE)
    with pytest.raises(NonFiniteEnergy) as err:
        run_chain(make_sampler("ula", 3.0), sharp, z0, steps=400, generator=make_generator(0, DEVICE),
                  check_every=1000)
    assert 0 < err.value.step < 400
    assert err.value.chains == [0, 1, 2, 3]


def test_recording_every_k_steps():
    gen = make_generator(0, DEVICE)
    recorded = []
    out = run_chain(make_sampler("ula", 0.1), gaussian_energy, torch.zeros(3, 2, device=DEVICE), steps=10,
                    generator=gen, record=lambda i, st: recorded.append(i) or st.position.clone(), record_every=4)
    assert recorded == [0, 4, 8]
    assert len(out.records) == 3
