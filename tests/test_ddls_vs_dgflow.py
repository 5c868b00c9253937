"""Why DGflow beat DDLS on images, checked on 2-D cases with the exact log ratio (examples/ddls_vs_dgflow_2d.py).

Every sampler runs through ddls.wrap and ddls.posthoc.run, as in the study in docs/results.md.
"""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ddls
from ddls.metrics.points2d import emd
from ddls.posthoc import default_config, make_target, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
try:
    import ddls_vs_dgflow_2d as study
finally:
    sys.path.pop(0)


@pytest.fixture(scope="module")
def blobs():
    return study.CASES["blobs"]()


@pytest.fixture(scope="module")
def grid():
    return study.CASES["grid"]()


def target(case, temperature=1.0, **damage):
    model = ddls.wrap(case.generator, study.LogRatio(case.data, case.gen, **damage), latent_shape=2, kind="gan")
    return make_target(model.energy(temperature=temperature), "raw")


def ddls_run(case, n, seed, *, steps, eps, temperature=1.0, noise_scale=1.0, method="ddls", **damage):
    config = default_config(method, steps=steps, eps=eps, noise_scale=noise_scale)
    return run(method, target(case, temperature, **damage), n, config, seed=seed)


def test_the_latent_energy_of_the_exact_ratio_is_the_data_pulled_back(blobs):
    # G(z) = m + S z, so log p_g(Gz) = log N(z; 0, I) - log|det S| and E(z) = -log p_data(Gz) - log|det S|
    energy = target(blobs).as_energy()
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 2
    x = blobs.generator(z)
    gap = energy(z) + blobs.data.log_prob(x)
    expected = -math.log(math.prod(blobs.gen.scale))
    torch.testing.assert_close(gap, torch.full_like(gap, expected), atol=1e-4, rtol=0)


def test_the_quantile_generator_pushes_the_prior_onto_its_mixture(grid):
    z = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1))
    x = grid.generator(z)
    shares = grid.shares(x.numpy())
    w = grid.gen.coord.weights  # per coordinate: outer, inner, centre, inner, outer
    expected = [w[2] ** 2, (1 - 2 * w[0]) ** 2 - w[2] ** 2, 1 - (1 - 2 * w[0]) ** 2]
    np.testing.assert_allclose(shares, expected, atol=0.01)
    # its gradient is the inverse function rule, checked against a central difference
    z = torch.tensor([[0.3, -1.7], [1.9, 0.05]], dtype=torch.float32, requires_grad=True)
    (g,) = torch.autograd.grad(grid.generator(z).sum(), z)
    h = 1e-3
    fd = (grid.generator(z.detach() + h) - grid.generator(z.detach() - h)) / (2 * h)
    torch.testing.assert_close(g, fd, rtol=2e-3, atol=1e-4)


def test_temperature_c_on_a_logit_scaled_by_c_gives_the_exact_chains(blobs):
    exact = ddls_run(blobs, 200, 4, steps=50, eps=0.01)
    for c in (0.3, 3.0):
        damaged = ddls_run(blobs, 200, 4, steps=50, eps=0.01, temperature=c, scale=c)
        torch.testing.assert_close(damaged.samples, exact.samples, atol=1e-4, rtol=1e-4)


def test_dgflow_is_cold_short_ddls_without_the_prior(blobs):
    # DGflow (KL): z + eta grad d + sqrt(2 eta gamma) n is a DDLS step at eps = 2 eta gamma, T = gamma,
    # less the prior's pull eps/2 * z; both draw their prior and noise from the same stream.
    flow = run("dgflow", target(blobs), 300, default_config("dgflow"), seed=2)
    cold = ddls_run(blobs, 300, 2, steps=25, eps=2 * 0.1 * 0.01, temperature=0.01)
    start = run("generator", target(blobs), 300, default_config("generator"), seed=2).latents
    moved = (flow.latents - start).norm(dim=1)
    assert float(moved.median()) > 0.1  # the flow really moves the latents ...
    gap = (flow.latents - cold.latents).norm(dim=1)
    # ... and the two differ by the prior's pull: at most 25 * eps/2 * |z| along the way
    assert float((gap / (25 * 0.001 * (start.norm(dim=1) + moved))).max()) < 1.2


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_noise_scale_tempers_the_prior_and_temperature_does_not(blobs, scale):
    # With a zero logit the chain is Langevin on the prior alone: z' = a z + sqrt(eps) s n, a = 1 - eps/2,
    # so after N steps from N(0, I) each coordinate has variance a^(2N) + s^2 eps (1 - a^(2N)) / (1 - a^2).
    eps, steps = 0.01, 100
    out = ddls_run(blobs, 4000, 0, steps=steps, eps=eps, noise_scale=scale, temperature=0.1, scale=0.0)
    a2n = (1 - eps / 2) ** (2 * steps)
    expected = a2n + scale**2 * eps * (1 - a2n) / (1 - (1 - eps / 2) ** 2)
    assert abs(float(out.latents.var(0).mean()) / expected - 1) < 0.05
    if scale < 1:
        assert expected < 0.4  # noise 0.1 shrinks |z| to about 61% of the prior's in 100 steps


def test_exact_ddls_mixes_to_the_data_and_dgflow_does_not(blobs):
    n = 600
    ref = blobs.dataset.sample(n, torch.Generator().manual_seed(99)).numpy()
    floor = emd(blobs.dataset.sample(n, torch.Generator().manual_seed(98)).numpy(), ref)
    gen = emd(run("generator", target(blobs), n, default_config("generator"), seed=0).samples.numpy(), ref)
    mala = emd(ddls_run(blobs, n, 0, steps=600, eps=0.03, method="mala").samples.numpy(), ref)
    flow = emd(run("dgflow", target(blobs), n, default_config("dgflow"), seed=0).samples.numpy(), ref)
    assert mala < floor + 0.06  # the exact target, reached
    assert mala + 0.2 < flow < gen  # DGflow sharpens each sample's own hill: better than G, far from p_data
    # an under-confident logit (x 0.1) stalls DDLS at T=1 and T = 0.1 puts it right
    weak = emd(ddls_run(blobs, n, 0, steps=600, eps=0.03, method="mala", scale=0.1).samples.numpy(), ref)
    fixed = emd(ddls_run(blobs, n, 0, steps=600, eps=0.03, method="mala", scale=0.1,
                         temperature=0.1).samples.numpy(), ref)
    assert weak > mala + 0.2 and fixed < floor + 0.06


def test_ddls_keeps_the_generators_mode_weights_on_separated_modes(grid):
    # stable steps: every chain stays in the mode its prior draw fell into; only exact DRS reweights modes
    n = 500
    gen = run("generator", target(grid), n, default_config("generator"), seed=0).samples.numpy()
    chains = ddls_run(grid, n, 0, steps=150, eps=0.001).samples.numpy()
    hq_gen, hq_chains = (study.evaluate(x, grid.dataset)["hq"] for x in (gen, chains))
    assert hq_gen < 60 and hq_chains > 98
    np.testing.assert_allclose(grid.shares(chains), grid.shares(gen), atol=0.015)
    drs = run("drs", target(grid), 2000, study.DRSConfig(gamma_percentile=None, max_logit=grid.max_logit,
                                                          batch_size=5000), seed=0).samples.numpy()
    np.testing.assert_allclose(grid.shares(drs), [0.04, 0.32, 0.64], atol=0.035)  # 3 binomial sd
