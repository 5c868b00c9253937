"""Every loss family against a hand computation on fixed tensors; f-GAN conjugates against closed forms."""
import math

import pytest
import torch
import torch.nn.functional as F

from ddls.sampling.energy import SCORES
from ddls.training.losses import (DIVERGENCES, LOSSES, began_convergence, began_d_loss, began_k_update, ebgan_d_loss,
                         ebgan_g_loss, fgan_d_loss, fgan_g_loss, hinge_d_loss, lsgan_d_loss, lsgan_g_loss,
                         minimax_g_loss, pulling_away)

REAL = torch.tensor([0.2, 1.5, -0.3])
FAKE = torch.tensor([2.0, 0.1, 0.7])


def test_ebgan_margin_loss_by_hand():
    # D(x) + max(0, m - D(G(z))) with m = 1: fakes 2.0 and 0.7 and 0.1 -> hinge 0, 0.9, 0.3
    assert ebgan_d_loss(REAL, FAKE, margin=1.0).item() == pytest.approx((0.2 + 1.5 - 0.3) / 3 + (0 + 0.9 + 0.3) / 3)
    assert ebgan_g_loss(FAKE).item() == pytest.approx(2.8 / 3)


def test_pulling_away_term_by_hand():
    # codes (1,0), (0,1), (1,1): cos^2 = 0, 1/2, 1/2 over the 3 pairs, each counted twice, / (3*2)
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert pulling_away(codes).item() == pytest.approx(2 * (0 + 0.5 + 0.5) / 6)
    assert pulling_away(torch.tensor([[1.0, 2.0], [2.0, 4.0]])).item() == pytest.approx(1.0)  # parallel codes


def test_began_losses_k_and_convergence_by_hand():
    assert began_d_loss(REAL, FAKE, k=0.25).item() == pytest.approx(1.4 / 3 - 0.25 * 2.8 / 3)
    # k + lambda (gamma L(x) - L(G(z))) = 0.5 + 0.1 * (0.5 * 0.4 - 0.1) = 0.51
    assert began_k_update(0.5, 0.4, 0.1, gamma=0.5, lambda_k=0.1) == pytest.approx(0.51)
    assert began_k_update(0.999, 10.0, 0.0, gamma=1.0, lambda_k=1.0) == 1.0  # clipped to [0, 1]
    assert began_k_update(0.001, 0.0, 10.0, gamma=1.0, lambda_k=1.0) == 0.0
    assert began_convergence(0.4, 0.1, gamma=0.5) == pytest.approx(0.4 + abs(0.2 - 0.1))


def test_logistic_least_squares_and_hinge_losses_by_hand():
    sig = torch.sigmoid
    torch.testing.assert_close(minimax_g_loss(FAKE), torch.log(1 - sig(FAKE)).mean())
    torch.testing.assert_close(lsgan_d_loss(REAL, FAKE), 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE ** 2).mean())
    torch.testing.assert_close(lsgan_g_loss(FAKE), 0.5 * ((FAKE - 1) ** 2).mean())
    # max(0, 1 - real) = 0.8, 0, 1.3; max(0, 1 + fake) = 3, 1.1, 1.7
    assert hinge_d_loss(REAL, FAKE).item() == pytest.approx(2.1 / 3 + 5.8 / 3)


@pytest.mark.parametrize("name", list(DIVERGENCES))
def test_fgan_conjugate_is_the_legendre_transform_of_f(name):
    div = DIVERGENCES[name]
    u = torch.logspace(-4, 4, 200001, dtype=torch.float64)
    v = torch.linspace(-2.0, 1.5, 15, dtype=torch.float64)
    t = div.activation(v)  # inside the conjugate's domain by construction
    sup = (u[None, :] * t[:, None] - div.f(u)[None, :]).max(1).values
    torch.testing.assert_close(div.conjugate(t), sup, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(div.conjugate_of_v(v), div.conjugate(t))


@pytest.mark.parametrize("name", list(DIVERGENCES))
def test_fgan_energy_recovers_the_density_ratio_through_the_inverse_of_f_prime(name):
    # at the optimum T = f'(p/q); the energy's score must give back log(p/q)
    div = DIVERGENCES[name]
    v = torch.linspace(-1.5, 1.5, 13, dtype=torch.float64)
    log_r = SCORES[f"fgan-{name}"](v)
    u = torch.exp(log_r).requires_grad_(True)
    (f_prime,) = torch.autograd.grad(div.f(u).sum(), u)
    torch.testing.assert_close(f_prime, div.activation(v))


def test_fgan_losses_are_the_variational_bound():
    div = DIVERGENCES["kl"]
    torch.testing.assert_close(fgan_d_loss(REAL, FAKE, div), -(REAL.mean() - torch.exp(FAKE - 1).mean()))
    torch.testing.assert_close(fgan_g_loss(FAKE, div), -FAKE.mean())
    gan = DIVERGENCES["gan"]  # the GAN divergence's bound is minus the logistic loss
    torch.testing.assert_close(fgan_d_loss(REAL, FAKE, gan), F.softplus(-REAL).mean() + F.softplus(FAKE).mean())


def test_every_family_names_a_registered_energy():
    for family in LOSSES.values():
        assert family.energy_kind in SCORES, family.name
    assert {"gan", "ns", "lsgan", "wgan", "wgan-gp", "sngan", "ebgan", "began"} <= set(LOSSES)
    assert {f"fgan-{d}" for d in ("kl", "reverse-kl", "pearson", "hellinger", "js", "gan")} <= set(LOSSES)


def test_lsgan_energy_is_the_logit_of_the_optimal_output():
    d = torch.tensor([0.5, 0.8, 0.2])  # D* = p/(p+q) -> log ratio = log(D/(1-D))
    torch.testing.assert_close(SCORES["lsgan"](d), torch.log(d / (1 - d)))
    assert torch.isfinite(SCORES["lsgan"](torch.tensor([-3.0, 4.0]))).all()
