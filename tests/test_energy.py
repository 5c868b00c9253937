"""The latent energy against hand computations."""
import math

import pytest
import torch
from torch import nn

from ddls.sampling.energy import LatentEnergy, standard_normal_logpdf
from ddls.errors import DDLSError

from conftest import DEVICE, Linear, Quadratic


def models():
    g = Linear([[2.0, 0.0], [1.0, -1.0]], [0.5, 0.0]).to(DEVICE)
    d = Quadratic([1.0, 1.0]).to(DEVICE)
    return g, d


def hand_energy(z, temperature=1.0):
    x = torch.stack([2 * z[:, 0] + 0.5, z[:, 0] - z[:, 1]], 1)
    logit = -0.5 * ((x - 1.0) ** 2).sum(1)
    log_p0 = -0.5 * (z**2).sum(1) - math.log(2 * math.pi)
    return -log_p0 - logit / temperature


def test_energy_is_minus_log_prior_minus_logit():
    g, d = models()
    z = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.3, 0.7]], device=DEVICE)
    energy = LatentEnergy(g, d, 2)
    torch.testing.assert_close(energy(z), hand_energy(z))


def test_temperature_divides_the_logit():
    g, d = models()
    z = torch.randn(6, 2, device=DEVICE)
    torch.testing.assert_close(LatentEnergy(g, d, 2, temperature=4.0)(z), hand_energy(z, 4.0))


def test_replaced_changes_only_what_is_named_and_checks_it():
    g, d = models()
    z = torch.randn(6, 2, device=DEVICE)
    energy = LatentEnergy(g, d, 2, kind="wgan", score_map=lambda s: 2 * s)
    colder = energy.replaced(temperature=4.0)
    assert colder.generator is g and colder.discriminator is d and colder.kind == "wgan"
    assert colder.score_map is energy.score_map and energy.temperature == 1.0  # the original is untouched
    torch.testing.assert_close(colder(z), hand_energy(z, 2.0))  # the map doubles the logit, T = 4 quarters it
    with pytest.raises(DDLSError, match="temperature must be > 0"):
        energy.replaced(temperature=0.0)
    with pytest.raises(TypeError, match="no argument"):
        energy.replaced(temprature=2.0)


def test_wgan_and_ae_scores():
    g, d = models()
    z = torch.randn(4, 2, device=DEVICE)
    x = g(z)
    prior = -standard_normal_logpdf(z)
    torch.testing.assert_close(LatentEnergy(g, d, 2, kind="wgan")(z), prior - d(x))
    # an auto-encoder discriminator outputs a reconstruction error: low energy where it is small
    torch.testing.assert_close(LatentEnergy(g, d, 2, kind="ae", temperature=2.0)(z), prior + d(x) / 2)


def test_extended_latent_decodes_to_g_plus_sigma_noise():
    g, d = models()
    energy = LatentEnergy(g, d, 2, sigma=0.1)
    assert energy.dim == 4
    pos = torch.randn(5, 4, device=DEVICE)
    x = energy.decode(pos)
    torch.testing.assert_close(x, g(pos[:, :2]) + 0.1 * pos[:, 2:])
    expected = -standard_normal_logpdf(pos) - d(x)
    torch.testing.assert_close(energy(pos), expected)


def test_gradient_of_energy_matches_analytic():
    g, d = models()
    z = torch.randn(3, 2, device=DEVICE, requires_grad=True)
    LatentEnergy(g, d, 2)(z).sum().backward()
    W = torch.tensor([[2.0, 0.0], [1.0, -1.0]], device=DEVICE)
    x = g(z.detach())
    expected = z.detach() + (x - 1.0) @ W
    torch.testing.assert_close(z.grad, expected)


def test_discriminator_with_wrong_output_shape_is_refused():
    g, _ = models()
    two_outputs = nn.Linear(2, 2).to(DEVICE)
    energy = LatentEnergy(g, two_outputs, 2)
    with pytest.raises(DDLSError, match=r"discriminator returned shape \(3, 2\)"):
        energy(torch.zeros(3, 2, device=DEVICE))


def test_column_output_is_accepted():
    g, _ = models()
    column = nn.Linear(2, 1).to(DEVICE)
    assert LatentEnergy(g, column, 2)(torch.zeros(3, 2, device=DEVICE)).shape == (3,)


def test_bad_settings_are_refused():
    g, d = models()
    with pytest.raises(DDLSError, match="unknown energy kind"):
        LatentEnergy(g, d, 2, kind="nope")
    with pytest.raises(DDLSError, match="temperature must be > 0"):
        LatentEnergy(g, d, 2, temperature=0)
    with pytest.raises(DDLSError, match=r"shape \(B, 2\)"):
        LatentEnergy(g, d, 2)(torch.zeros(3, 5, device=DEVICE))


def test_probing_does_not_change_module_modes():
    g = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4)).to(DEVICE)
    d = nn.Linear(4, 1).to(DEVICE)
    g.train()
    before = g[1].running_mean.clone()
    LatentEnergy(g, d, 2)
    assert g.training
    torch.testing.assert_close(g[1].running_mean, before)
