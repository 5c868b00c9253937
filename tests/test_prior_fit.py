"""prior-fit against known answers.

G(z) = W z + b is linear and D's features are x itself (the input of its one layer), so the prior
N(mu, A A^T) that makes G's samples match real data N(m, S) is known: W mu + b = m, W A A^T W^T = S.
With the KL weight large the fit must stay at the prior N(0, I) instead.
"""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import DEVICE, Linear, invoke, one_line_error
from ddls import posthoc
from ddls.errors import DDLSError
from ddls.posthoc.prior_fit import IterateMean, PriorFitConfig, critic_features, fit, frechet_terms
from ddls.posthoc.target import LatentLogit
from ddls.sampling.energy import LatentEnergy

W = torch.tensor([[1.0, 0.5], [0.0, 2.0]])
B = torch.tensor([0.3, -0.2])
M = torch.tensor([2.0, -1.0])
ROOT = torch.tensor([[0.4, 0.3], [0.0, 1.5]])  # real x = M + ROOT e: covariance ROOT ROOT^T
S = ROOT @ ROOT.T


def draw_real(n, gen):
    return M + torch.randn(n, 2, generator=gen) @ ROOT.T


def target(discriminator=None, **energy):
    d = discriminator if discriminator is not None else nn.Sequential(nn.Linear(2, 1))
    return LatentLogit(LatentEnergy(Linear(W, B).to(DEVICE), d.to(DEVICE), 2, **energy))


def fitted(config, seed=0, discriminator=None):
    res = posthoc.run("prior-fit", target(discriminator), 4000, config, seed=seed, draw_real=draw_real)
    return res, res.samples.double()


def test_fit_matches_the_data_gaussian():
    res, x = fitted(PriorFitConfig(kl=0.0, steps=400, lr=0.03, batch=1000, real=20000))
    assert torch.allclose(x.mean(0), M.double(), atol=0.1)
    cov = torch.cov(x.T)
    assert torch.allclose(cov, S.double(), atol=0.12 * float(S.diagonal().max()))
    fit = res.info["fit"]
    assert fit["relative_fd_fitted"] < 0.05 * fit["relative_fd_prior"]
    # the generator alone is far off: the test can tell a fit from none
    gen = posthoc.run("generator", target(), 4000, posthoc.default_config("generator"), seed=0).samples.double()
    assert float((gen.mean(0) - M.double()).norm()) > 1.0


def test_degenerate_feature_directions_are_left_out():
    """D's features: 4 values per sample that span a plane (rank 2): the fit still finds the answer."""
    lift = Linear(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]]), [0.0] * 4)
    d = nn.Sequential(lift, nn.Linear(4, 1))
    res, x = fitted(PriorFitConfig(kl=0.0, steps=400, lr=0.03, batch=1000, real=20000), discriminator=d)
    assert res.info["fit"]["directions"] == 2
    assert torch.allclose(x.mean(0), M.double(), atol=0.1)


def test_a_large_kl_weight_keeps_the_prior():
    res, _ = fitted(PriorFitConfig(kl=1e4, steps=200, lr=0.03, batch=500, real=5000))
    z = res.latents.double()
    assert float(z.mean(0).norm()) < 0.1
    assert torch.allclose(torch.cov(z.T), torch.eye(2, dtype=torch.float64), atol=0.1)


def test_samples_are_the_generator_at_the_fitted_latents_and_repeat_by_seed():
    config = PriorFitConfig(steps=20, batch=200, real=2000, chunk_size=300)
    a = posthoc.run("prior-fit", target(), 700, config, seed=3, draw_real=draw_real)
    torch.testing.assert_close(a.samples, a.latents @ W.T + B)
    b = posthoc.run("prior-fit", target(), 700, config, seed=3, draw_real=draw_real)
    torch.testing.assert_close(a.samples, b.samples)
    c = posthoc.run("prior-fit", target(), 700, config, seed=4, draw_real=draw_real)
    assert not torch.allclose(a.samples, c.samples)


def test_langevin_on_the_fitted_prior_samples_it_tilted_by_d():
    """d(x) = w.x: the fit makes G's samples N(M, S), and q(z) exp(d(G(z)) / T) makes them N(M + S w / T, S)."""
    w, temperature, n, steps = torch.tensor([2.0, -1.0]), 1.0, 4000, 300
    d = nn.Sequential(nn.Linear(2, 1))
    with torch.no_grad():
        d[0].weight.copy_(w[None])
        d[0].bias.zero_()
    fit_settings = dict(kl=0.0, steps=401, lr=0.03, batch=1000, real=20000)  # a fit no other test makes
    config = PriorFitConfig(**fit_settings, langevin_steps=steps, langevin_eps=0.05)
    res = posthoc.run("prior-fit", target(d, temperature=temperature), n, config, seed=0, draw_real=draw_real)
    x = res.samples.double()
    expected = (M + S @ w / temperature).double()
    assert float((expected - M.double()).norm()) > 1.0  # far from the fitted prior's own mean, M
    assert torch.allclose(x.mean(0), expected, atol=0.1)
    assert torch.allclose(torch.cov(x.T), S.double(), atol=0.15 * float(S.diagonal().max()))
    # the latents are z = mu + A u in G's own latent space: G(z) gives the samples
    torch.testing.assert_close(Linear(W, B)(res.latents), res.samples, atol=1e-5, rtol=1e-5)
    assert res.evaluations == 2 * n * (steps + 1) + res.info["fit"]["evaluations"]
    # the same fit as without the steps: they are no part of the fit (nor of its cache key)
    plain = posthoc.run("prior-fit", target(d, temperature=temperature), n, PriorFitConfig(**fit_settings), seed=0,
                        draw_real=draw_real)
    assert torch.allclose(plain.samples.double().mean(0), M.double(), atol=0.1)
    assert not res.info["fit"]["cached"] and plain.info["fit"]["cached"]


def test_sample_command_runs_langevin_on_the_fitted_prior(tmp_path):
    import json
    from pathlib import Path

    ckpt = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", ckpt, "--method", "prior-fit", "--prior-steps", 10, "--prior-real", 500,
               "--prior-batch", 100, "--prior-langevin-steps", 3, "--prior-langevin-eps", 1e-3, "--n", 50, "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        meta = json.loads(str(npz["meta"]))
    assert (meta["settings"]["langevin_steps"], meta["settings"]["langevin_eps"]) == (3, 1e-3)
    assert meta["evaluations"] == 2 * 50 * (3 + 1) + meta["info"]["fit"]["evaluations"]
    bad = invoke("sample", "--ckpt", ckpt, "--method", "prior-fit", "--prior-langevin-eps", 0, "--n", 5,
                 "--out", tmp_path / "t.npz")
    assert "--prior-langevin-eps" in one_line_error(bad, code=2)


def test_the_fit_is_read_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DDLS_CACHE_DIR", str(tmp_path))
    config = PriorFitConfig(steps=30, batch=200, real=2000)
    t = target()
    first = posthoc.run("prior-fit", t, 100, config, seed=5, draw_real=draw_real)
    assert first.info["fit"]["cached"] is False and first.evaluations > 100
    assert len(list(tmp_path.glob("prior-fit-*.npz"))) == 1
    second = posthoc.run("prior-fit", t, 100, config, seed=5, draw_real=draw_real)
    assert second.info["fit"]["cached"] is True and second.evaluations == 100
    torch.testing.assert_close(first.samples, second.samples)
    other = posthoc.run("prior-fit", t, 100, PriorFitConfig(steps=31, batch=200, real=2000), seed=5,
                        draw_real=draw_real)
    assert other.info["fit"]["cached"] is False


def covariance_error(config):
    """Relative error of the fitted G(z)'s covariance, W A A^T W^T against S, and its mean's distance to M."""
    mu, a, record = fit(target(), draw_real, config)
    cov = W.to(a.device) @ a @ a.T @ W.T.to(a.device)
    return float((cov.cpu() - S).norm() / S.norm()), float((W @ mu.cpu() + B - M).norm()), record


def test_averaged_iterates_settle_a_noisy_fit():
    """Batches of 40 make each Adam step noisy: the last iterate lands anywhere near the optimum, the mean of
    the last two thirds at it."""
    last, mean = [], []
    for seed in range(4):
        settings = dict(kl=0.0, steps=300, lr=0.05, batch=40, real=20000, seed=seed)
        last.append(covariance_error(PriorFitConfig(average=0.0, **settings))[0])
        err, shift, record = covariance_error(PriorFitConfig(**settings))
        assert record["averaged"] == 201
        assert err < 0.08 and shift < 0.06
        mean.append(err)
    assert sum(last) / len(last) > 2.5 * sum(mean) / len(mean)


def test_the_iterate_mean_averages_covariances_not_roots():
    mean = IterateMean(2, "cpu")
    a1, a2 = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, 1.0], [-2.0, 0.0]])  # a2 = a1 turned
    mean.add(torch.tensor([1.0, 0.0]), a1)
    mean.add(torch.tensor([0.0, 3.0]), a2)
    mu, root = mean.prior()
    torch.testing.assert_close(mu, torch.tensor([0.5, 1.5]))
    expected = (a1 @ a1.T + a2 @ a2.T) / 2  # = diag(1, 4) twice: averaging A itself would give a narrower prior
    torch.testing.assert_close(root @ root.T, expected)


def test_the_cache_keys_on_d_s_features_not_its_head(monkeypatch, tmp_path):
    """A refitted head (D's last layer) leaves the features and so the fit; a changed hidden layer does not."""
    monkeypatch.setenv("DDLS_CACHE_DIR", str(tmp_path))
    config = PriorFitConfig(steps=20, batch=200, real=2000, seed=17)  # a fit seed no other test's memo holds

    def critic(head_weight, hidden_scale=1.0):
        d = nn.Sequential(Linear(torch.eye(2) * hidden_scale, [0.0, 0.0]), nn.Linear(2, 1))
        with torch.no_grad():
            d[1].weight.fill_(head_weight)
        return d

    first = posthoc.run("prior-fit", target(critic(0.5)), 50, config, seed=1, draw_real=draw_real)
    head = posthoc.run("prior-fit", target(critic(-3.0)), 50, config, seed=1, draw_real=draw_real)
    assert first.info["fit"]["cached"] is False and head.info["fit"]["cached"] is True
    torch.testing.assert_close(first.samples, head.samples)
    hidden = posthoc.run("prior-fit", target(critic(0.5, hidden_scale=2.0)), 50, config, seed=1,
                         draw_real=draw_real)
    assert hidden.info["fit"]["cached"] is False


def test_frechet_terms_equal_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(500, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    cov_r = torch.diag(torch.tensor([2.0, 1.0, 3.0], dtype=torch.float64))
    mu_r = torch.tensor([0.5, 0.0, -1.0], dtype=torch.float64)
    value = frechet_terms(f, mu_r, torch.eye(3, dtype=torch.float64), cov_r.sqrt(), cov_r.trace())
    mean, cov = f.mean(0) - mu_r, torch.cov(f.T)
    w, v = torch.linalg.eigh(cov)
    cross = torch.linalg.eigvals(cov_r @ cov).real.clamp_min(0).sqrt().sum()
    expected = mean.pow(2).sum() + cov.trace() + cov_r.trace() - 2 * cross
    assert abs(float(value - expected)) < 1e-8


def test_features_are_the_input_of_the_last_layer_or_a_named_output():
    d = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3), nn.Linear(3, 1))
    x = torch.randn(7, 2)
    with critic_features(d) as run:
        torch.testing.assert_close(run(x), d[2](d[1](d[0](x))))
    with critic_features(d, "1") as run:
        torch.testing.assert_close(run(x), d[1](d[0](x)))
    with pytest.raises(DDLSError, match="no layer 'nope'"):
        with critic_features(d, "nope"):
            pass


@pytest.mark.parametrize("energy,real,match", [
    ({"sigma": 0.1}, draw_real, "sigma 0"),
    ({}, None, "--data"),
])
def test_refusals_are_one_line(energy, real, match):
    with pytest.raises(DDLSError, match=match) as err:
        posthoc.run("prior-fit", target(**energy), 10, PriorFitConfig(steps=2, batch=10, real=20), draw_real=real)
    assert "\n" not in str(err.value)
