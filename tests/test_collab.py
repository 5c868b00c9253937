"""Collaborative sampling against a known answer.

G(z) = S (W1 z) with a 1-D latent and S = diag(2, 1): G's range is a line in R^2. D's logit
d(x) = -||x - c||^2 / 2 peaks at c, off that line. Refining the output h of G's first layer by
ascent steps of size eta on d(S h) gives exactly, per coordinate,
h_k = c/s + (1 - eta s^2)^k (h_0 - c/s), so the samples leave G's range and approach c, which no
latent method can reach (and refining at G's last layer would give another answer).
"""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import DEVICE, Linear, Quadratic, invoke
from ddls import posthoc
from ddls.errors import DDLSError
from ddls.posthoc.collab import CollabConfig
from ddls.posthoc.target import LatentLogit
from ddls.sampling.energy import LatentEnergy

C = torch.tensor([1.0, -2.0])
W1 = torch.tensor([[0.5], [1.0]])  # G's range: the line x1 = x2
S = torch.tensor([2.0, 1.0])


def two_layer():
    return nn.Sequential(Linear(W1, [0.0, 0.0]), Linear(torch.diag(S), [0.0, 0.0]))


def target():
    return LatentLogit(LatentEnergy(two_layer().to(DEVICE), Quadratic(C).to(DEVICE), 1))


@pytest.mark.parametrize("steps,eta", [(1, 0.3), (7, 0.2)])
def test_refinement_follows_the_closed_form(steps, eta):
    t = target()
    res = posthoc.run("collab", t, 50, CollabConfig(steps=steps, lr=eta, stop_when_real=False, chunk_size=32), seed=0)
    h0 = res.latents @ W1.T  # G's first layer at the prior latents the method drew
    h = C / S + (1 - eta * S ** 2) ** steps * (h0 - C / S)
    torch.testing.assert_close(res.samples, h * S, rtol=1e-5, atol=1e-5)
    assert res.evaluations == 50 * (2 * steps + 1)


def test_refined_samples_leave_the_generators_range():
    res = posthoc.run("collab", target(), 40, CollabConfig(steps=20, lr=0.3, stop_when_real=False), seed=1)
    off_line = (res.samples[:, 0] - res.samples[:, 1]).abs()
    assert float(off_line.min()) > 2.5  # c is 3 off the line x1 = x2; G alone is exactly on it
    gen = posthoc.run("generator", target(), 40, posthoc.default_config("generator"), seed=1)
    assert float((gen.samples[:, 0] - gen.samples[:, 1]).abs().max()) < 1e-6


def test_samples_called_real_stop_moving():
    """d(x) = -||x - c||^2/2 + 1 is > 0 within sqrt(2) of c: a sample stops as soon as it gets there."""

    class Shifted(Quadratic):
        def forward(self, x):
            return super().forward(x) + 1.0

    t = LatentLogit(LatentEnergy(two_layer().to(DEVICE), Shifted(C).to(DEVICE), 1))
    res = posthoc.run("collab", t, 60, CollabConfig(steps=200, lr=0.05), seed=2)
    dist = (res.samples - C).norm(dim=1)
    assert res.info["real_share"] == 1.0
    # stopped at the first step inside the disc (a step shrinks each coordinate's gap by at most 1 - 4 eta):
    # inside, but not driven on to c as 200 steps would
    assert float(dist.max()) < 2 ** 0.5 and float(dist.min()) > 2 ** 0.5 * (1 - 4 * 0.05) - 1e-4


def test_a_named_layer_and_bad_names():
    t = target()
    a = posthoc.run("collab", t, 10, CollabConfig(layer="0", steps=3, lr=0.1, stop_when_real=False), seed=0)
    b = posthoc.run("collab", t, 10, CollabConfig(steps=3, lr=0.1, stop_when_real=False), seed=0)
    torch.testing.assert_close(a.samples, b.samples)  # "" is G's first child, "0"
    with pytest.raises(DDLSError, match="no layer 'nope'; choose one of 0, 0.lin, 1, 1.lin"):
        posthoc.run("collab", t, 10, CollabConfig(layer="nope"), seed=0)
    flat = LatentLogit(LatentEnergy(nn.Identity().to(DEVICE), Quadratic(C[:1]).to(DEVICE), 1))
    with pytest.raises(DDLSError, match="no submodules"):
        posthoc.run("collab", flat, 10, CollabConfig(), seed=0)


def test_collab_is_a_choice_of_sample(tmp_path):
    from pathlib import Path

    ckpt = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
    out = tmp_path / "c.npz"
    r = invoke("sample", "--ckpt", ckpt, "--method", "collab", "--collab-steps", 3, "--n", 20, "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        assert f["x"].shape == (20, 2)
