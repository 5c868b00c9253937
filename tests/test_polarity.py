"""Polarity sampling and MaGNET against known answers.

- the Jacobian and its volume against torch.autograd.functional.jacobian on a tiny MLP;
- G(z) = A z: the volume is constant (sum log s_i(A)), so every weight is equal and the kept
  latents keep the prior's law;
- G a piecewise-linear map with slopes a (z < 0) and b (z >= 0): vol^rho = a^rho or b^rho, so the
  mass kept on z >= 0 is b^rho / (a^rho + b^rho) exactly (with replacement, as the pool grows);
- G(z) = z^3: vol = 3 z^2, so at rho = 1 the kept latents have density ∝ z^2 N(z; 0, 1), E z^2 = 3.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import DEVICE, Linear, invoke
from ddls import posthoc
from ddls.errors import DDLSError
from ddls.posthoc.polarity import MagnetConfig, PolarityConfig, select
from ddls.posthoc.target import LatentLogit
from ddls.sampling.energy import LatentEnergy
from ddls.sampling.jacobian import jacobian, log_volume, log_volume_of


class Zero(nn.Module):
    """A discriminator that has no opinion: polarity alone decides."""

    def forward(self, x):
        return x.flatten(1)[:, 0] * 0.0


class TwoSlopes(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, z):
        return torch.where(z < 0, self.a * z, self.b * z)


class Cube(nn.Module):
    def forward(self, z):
        return z ** 3


def target_of(generator, dim, disc=None):
    return LatentLogit(LatentEnergy(generator.to(DEVICE), (disc or Zero()).to(DEVICE), dim))


def test_jacobian_and_volume_match_autograd_on_a_small_mlp():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 16), nn.LeakyReLU(0.2), nn.Linear(16, 5)).double()
    z = torch.randn(7, 3, dtype=torch.float64)
    got = jacobian(mlp, z)
    want = torch.stack([torch.autograd.functional.jacobian(mlp, row[None])[0, :, 0] for row in z])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    logdet = torch.linalg.slogdet(want.transpose(1, 2) @ want).logabsdet / 2  # 1/2 log det(J^T J)
    torch.testing.assert_close(log_volume(mlp, z, rows=6), logdet, rtol=1e-5, atol=1e-5)  # two rows per pass
    # top_k: the k largest singular values only
    s = torch.linalg.svdvals(want)
    torch.testing.assert_close(log_volume_of(want, top_k=2), s[:, :2].log().sum(1), rtol=1e-5, atol=1e-5)


def test_reverse_mode_fallback_gives_the_same_jacobian(monkeypatch):
    import ddls.sampling.jacobian as jac

    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    z = torch.randn(4, 2, dtype=torch.float64)
    want = jac.jacobian(mlp, z)

    def no_forward_mode(decode, z):
        raise NotImplementedError("Trying to use forward AD with an op that does not implement it")

    monkeypatch.setattr(jac, "_forward_mode", no_forward_mode)
    torch.testing.assert_close(jac.jacobian(mlp, z), want, rtol=1e-6, atol=1e-6)


def test_a_linear_generator_has_constant_volume_and_keeps_the_prior():
    a = torch.tensor([[2.0, 0.5], [0.0, 1.5], [1.0, -1.0]])
    t = target_of(Linear(a, [0.1, 0.2, 0.3]), 2)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    lv = log_volume(t.decode, z)
    torch.testing.assert_close(lv, torch.full((50,), float(torch.linalg.svdvals(a.double()).log().sum()),
                                              dtype=torch.float64), rtol=1e-5, atol=1e-5)
    n = 3000
    res = posthoc.run("polarity", t, n, PolarityConfig(rho=1.0, pool_factor=3, chunk_size=500), seed=0)
    assert res.info["ess"] == pytest.approx(3 * n, rel=1e-6)  # equal weights
    zk = res.latents
    # N(0, I): mean within 4 standard errors, variances within 10%
    assert zk.mean(0).abs().max() < 4 / math.sqrt(n)
    assert (zk.var(0) - 1).abs().max() < 0.1
    # the samples are G of the kept latents
    torch.testing.assert_close(res.samples, zk @ a.T + torch.tensor([0.1, 0.2, 0.3]), rtol=1e-5, atol=1e-5)


def two_slope_share(rho, a=1.0, b=3.0):
    """P(z >= 0) under p0(z) * vol(z)^rho for the two-slope map."""
    return b ** rho / (a ** rho + b ** rho)


@pytest.mark.parametrize("rho", [1.0, -1.0, 0.5])
def test_two_slopes_keep_the_analytic_share_at_one_seed(rho):
    t = target_of(TwoSlopes(1.0, 3.0), 1)
    n = 4000
    res = posthoc.run("polarity", t, n, PolarityConfig(rho=rho, pool_factor=10, replace=True, chunk_size=10000),
                      seed=0)
    share = float((res.latents >= 0).double().mean())
    p = two_slope_share(rho)
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)
    # the sign matters: rho and -rho move the share to opposite sides of 1/2
    assert (share - 0.5) * rho > 0


def test_two_slopes_across_seeds_and_without_replacement():
    t = target_of(TwoSlopes(1.0, 3.0), 1)
    n, p = 2000, two_slope_share(1.0)
    shares, firsts = [], set()
    for seed in range(4):
        res = posthoc.run("polarity", t, n, PolarityConfig(rho=1.0, pool_factor=20, chunk_size=20000), seed=seed)
        shares.append(float((res.latents >= 0).double().mean()))
        firsts.add(float(res.latents[0, 0]))
        assert abs(shares[-1] - p) < 4 * math.sqrt(p * (1 - p) / n) + 0.01  # + the bias of 1/20 of the pool kept
    assert abs(np.mean(shares) - p) < 3 * math.sqrt(p * (1 - p) / (4 * n)) + 0.01
    assert len(firsts) == 4  # the seeds do draw different pools


def test_a_cube_at_rho_one_has_second_moment_three():
    t = target_of(Cube(), 1)
    n = 4000
    res = posthoc.run("polarity", t, n, PolarityConfig(rho=1.0, pool_factor=20, replace=True, chunk_size=20000),
                      seed=3)
    m2 = float(res.latents.double().pow(2).mean())
    # under z^2 N(z; 0, 1) / 1: E z^2 = 3, Var z^2 = E z^6 - 9 = 6
    assert abs(m2 - 3.0) < 4 * math.sqrt(6 / n) + 0.05
    assert res.info["log_volume_kept_mean"] > res.info["log_volume_pool_mean"]  # rho > 0 keeps the stretched


def test_magnet_is_polarity_at_rho_one():
    t = target_of(TwoSlopes(1.0, 3.0), 1)
    a = posthoc.run("magnet", t, 200, posthoc.default_config("magnet", chunk_size=100), seed=5)
    b = posthoc.run("polarity", t, 200, PolarityConfig(rho=1.0, chunk_size=100), seed=5)
    assert MagnetConfig().rho == 1.0
    torch.testing.assert_close(a.latents, b.latents)
    assert a.evaluations == b.evaluations == 200 * 4 * 1 + 200


def test_the_critic_weight_is_the_combined_energy():
    """With `critic`, log w = rho log vol + d/T: on G(z) = z with d(x) = c x, the kept law is
    N(c, 1) (the volume is constant), a shift the plain method does not make."""
    c = 0.8
    t = target_of(Linear([[1.0]], [0.0]), 1, Linear([[c]], [0.0]))
    n = 3000
    tilted = posthoc.run("polarity", t, n, PolarityConfig(rho=1.0, critic=True, replace=True, pool_factor=20,
                                                          chunk_size=20000), seed=0)
    plain = posthoc.run("polarity", t, n, PolarityConfig(rho=1.0, replace=True, pool_factor=20, chunk_size=20000),
                        seed=0)
    assert abs(float(tilted.latents.mean()) - c) < 4 / math.sqrt(n) + 0.02
    assert abs(float(plain.latents.mean())) < 4 / math.sqrt(n)


def test_select_without_replacement_keeps_distinct_members_in_random_order():
    lw = torch.linspace(0, 5, 100, dtype=torch.float64)
    idx = select(lw, 50, False, torch.Generator().manual_seed(0))
    assert len(set(idx.tolist())) == 50
    assert not torch.equal(idx, idx.sort().values) and not torch.equal(idx, idx.sort(descending=True).values)
    with pytest.raises(DDLSError, match="without replacement"):
        select(lw, 101, False, torch.Generator().manual_seed(0))


def test_same_seed_same_samples_and_refine_by_dot_moves_them():
    t = target_of(TwoSlopes(1.0, 3.0), 1, Linear([[1.0]], [0.0]))
    cfg = PolarityConfig(rho=0.5, chunk_size=64)
    a = posthoc.run("polarity", t, 100, cfg, seed=2)
    b = posthoc.run("polarity", t, 100, cfg, seed=2)
    torch.testing.assert_close(a.samples, b.samples)
    moved = posthoc.run("polarity", t, 100, PolarityConfig(rho=0.5, chunk_size=64, refine="dot", dot_steps=5,
                                                           dot_lr=0.1), seed=2)
    # d(x) = x pulls latents to the right; DOT starts from the very latents polarity kept
    shift = moved.latents - a.latents
    assert float(shift.mean()) > 0.02 and float(shift.abs().max()) < 1.0
    assert moved.info["k_eff"] > 0


def test_polarity_refuses_bad_settings():
    with pytest.raises(DDLSError, match="refine"):
        PolarityConfig(refine="ddls")
    with pytest.raises(DDLSError, match="pool factor"):
        PolarityConfig(pool_factor=0)


def test_polarity_is_a_choice_of_sample(tmp_path):
    from pathlib import Path

    ckpt = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
    out = tmp_path / "p.npz"
    r = invoke("sample", "--ckpt", ckpt, "--method", "polarity", "--polarity-rho", "0.5", "--n", 40,
               "--chunk-size", 32, "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        assert f["x"].shape == (40, 2)
        assert '"rho": 0.5' in str(f["meta"])
