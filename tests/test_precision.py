"""The precision check: same chains in float32 and bf16, scores compared within their bootstrap noise.

Known answers on the CPU: a well-conditioned model passes in bf16; a model whose logit is the
difference of two large, nearly equal numbers (bf16 keeps 8 significant bits, so x + 1000 is
rounded to a multiple of 4) fails. On CUDA, a model whose output overflows fp16 fails in fp16.
"""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import DEVICE
from test_fastpath import _energy

from ddls.sampling.driver import RunConfig
from ddls.sampling.energy import LatentEnergy
from ddls.sampling.precision import Scorer, bootstrap, check_precision, emd_scorer, fid_scorer

CENTER = torch.tensor([1.5, -1.0])
S2 = 0.05  # D's logit -|x - c|^2 / (2 s2): the chains' target is N(c / (1 + s2), s2 / (1 + s2))
CONFIG = RunConfig(n=300, steps=150, eps=0.01, seed=0, chunk_size=300)


class Offset(nn.Module):
    """h(x) = (x + big) - big - c through two linear layers: exact in float32, rounded away in bf16."""

    def __init__(self, big: float):
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
        with torch.no_grad():
            for lin in (self.a, self.b):
                lin.weight.copy_(torch.eye(2))
            self.a.bias.fill_(big)
            self.b.bias.copy_(-big - CENTER)

    def forward(self, x):
        return -0.5 * self.b(self.a(x)).pow(2).sum(1) / S2


def _energy_2d(big: float, device="cpu") -> LatentEnergy:
    g = nn.Linear(2, 2)
    with torch.no_grad():
        g.weight.copy_(torch.eye(2))
        g.bias.zero_()
    return LatentEnergy(g.to(device), Offset(big).to(device), 2)


def _reference(n: int = CONFIG.n) -> np.ndarray:
    gen = torch.Generator().manual_seed(99)
    mean, std = CENTER / (1 + S2), (S2 / (1 + S2)) ** 0.5
    return (mean + std * torch.randn(n, 2, generator=gen)).numpy()


def test_bootstrap_interval_holds_the_score_and_narrows_with_more_samples():
    scorer = Scorer("mean", lambda x: x, lambda rows: float(rows.mean()))
    rng = np.random.default_rng(0)
    small = bootstrap(scorer, rng.normal(size=(100, 1)), rounds=200)
    large = bootstrap(scorer, rng.normal(size=(10000, 1)), rounds=200)
    assert small.low <= small.value <= small.high
    # the interval of a mean shrinks as 1/sqrt(n): 100x the samples, about 1/10 the width
    ratio = (large.high - large.low) / (small.high - small.low)
    assert 0.05 < ratio < 0.2


def test_bf16_of_a_well_conditioned_model_passes():
    verdict = check_precision(_energy_2d(big=0.0), "bf16", CONFIG, emd_scorer(_reference()), rounds=20)
    assert verdict.passed, verdict
    assert abs(verdict.reduced.value - verdict.fp32.value) < 0.05
    assert verdict.fp32.value < 0.15  # the float32 chains did reach the target


def test_bf16_of_a_cancelling_model_fails():
    verdict = check_precision(_energy_2d(big=1000.0), "bf16", CONFIG, emd_scorer(_reference()), rounds=20)
    assert verdict.fp32.value < 0.15  # in float32 the same model is fine
    assert not verdict.passed, verdict
    assert verdict.reduced is None or verdict.reduced.value > verdict.fp32.high


def test_domain_fid_check_of_identical_networks_passes():
    """Images: FID in the domain classifier's space against a reference of the same model's float32 samples."""
    from ddls.metrics.features import domain_features
    from ddls.metrics.fid_stats import image_stats
    from ddls.sampling.driver import sample

    energy = _energy("cpu")
    extractor = domain_features("cpu")
    config = RunConfig(n=200, steps=5, eps=0.05, seed=0, chunk_size=200)
    reference = image_stats(sample(energy, RunConfig(n=400, steps=5, eps=0.05, seed=1, chunk_size=200)).samples,
                            extractor)
    verdict = check_precision(energy, "bf16", config, fid_scorer(extractor, reference), rounds=20)
    assert verdict.metric == "domain fid"
    assert verdict.passed, verdict


@pytest.mark.skipif(DEVICE.type != "cuda", reason="fp16 runs on CUDA only: run with DDLS_TEST_DEVICE=cuda")
def test_fp16_of_a_model_that_overflows_fp16_fails():
    # x + 1e5 is finite in float32 and inf in fp16 (largest 65504)
    energy = _energy_2d(big=1e5, device=DEVICE)
    verdict = check_precision(energy, "fp16", CONFIG, emd_scorer(_reference()), rounds=20)
    assert not verdict.passed and verdict.reduced is None, verdict
