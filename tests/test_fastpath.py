"""Each fast-path switch follows the plain float32 chains, within the tolerance stated for it."""
import pytest
import torch
from torch import nn

from ddls.sampling.driver import RunConfig, sample
from ddls.sampling.energy import LatentEnergy
from ddls.errors import DDLSError
from ddls.sampling.fastpath import FastPath, FastEnergy, prepare

# Max |difference| after STEPS ULA steps from the same prior draws, same noise:
# float32 switches only reorder sums (1e-4); bf16/fp16 networks round each step's gradient.
STEPS = 5
TOL = {"fp32": 1e-4, "bf16": 1e-2, "fp16": 1e-2}


class TinyG(nn.Module):
    def __init__(self, z=8):
        super().__init__()
        self.fc = nn.Linear(z, 16 * 7 * 7)
        self.up = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.ConvTranspose2d(16, 8, 4, 2, 1),
                                nn.BatchNorm2d(8), nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.up(self.fc(z).view(-1, 16, 7, 7))


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 4, 2, 1),
                                  nn.LeakyReLU(0.2))
        self.fc = nn.Linear(16 * 7 * 7, 1)

    def forward(self, x):
        return self.fc(self.main(x).flatten(1))


def _energy(device):
    torch.manual_seed(0)  # made-up weights, the same in every test
    g, d = TinyG().to(device), TinyD().to(device)
    with torch.no_grad():  # give batch norm non-trivial running statistics
        for bn in (g.up[0], g.up[3]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return LatentEnergy(g, d, 8)


def _run(energy, fast=None):
    config = RunConfig(n=24, steps=STEPS, eps=0.05, seed=3, chunk_size=8)  # one batch shape: one compile
    return sample(energy, config, fast=fast)


def _close(fast, device, tol):
    energy = _energy(device)
    plain = _run(energy)
    fast_run = _run(energy, fast)
    torch.testing.assert_close(fast_run.latents, plain.latents, atol=tol, rtol=0)
    torch.testing.assert_close(fast_run.samples, plain.samples, atol=tol * 10, rtol=0)
    return (fast_run.latents - plain.latents).abs().max().item()


def test_no_switch_is_the_plain_energy(device):
    energy = _energy(device)
    assert prepare(energy, FastPath()) is energy


def test_channels_last_follows_fp32_chains(device):
    _close(FastPath(channels_last=True), device, TOL["fp32"])
    energy = _energy(device)
    fast = FastEnergy(energy, FastPath(channels_last=True))
    _run(energy, FastPath(channels_last=True))
    # an 8-channel conv (a 1-channel one is contiguous in both layouts): the copy switched, the caller's did not
    ours, theirs = fast.energy.discriminator.main[2].weight, energy.discriminator.main[2].weight
    assert ours.is_contiguous(memory_format=torch.channels_last) and not ours.is_contiguous()
    assert theirs.is_contiguous() and not theirs.is_contiguous(memory_format=torch.channels_last)


def test_bf16_autocast_follows_fp32_chains_and_keeps_latents_fp32(device):
    worst = _close(FastPath(autocast="bf16"), device, TOL["bf16"])
    assert worst > 0  # bf16 really ran: the chains differ a little
    e, g = FastEnergy(_energy(device), FastPath(autocast="bf16")).value_and_grad(torch.zeros(4, 8, device=device))
    assert e.dtype == g.dtype == torch.float32


@pytest.mark.slow
def test_compiled_energy_follows_fp32_chains(device):
    pytest.importorskip("torch._dynamo")
    _close(FastPath(compile=True), device, TOL["fp32"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs and fp16 need a GPU")
def test_cuda_graphs_and_fp16_follow_fp32_chains():
    _close(FastPath(cuda_graphs=True), torch.device("cuda"), TOL["fp32"])
    _close(FastPath(autocast="fp16"), torch.device("cuda"), TOL["fp16"])
    _close(FastPath(cuda_graphs=True, autocast="bf16", channels_last=True), torch.device("cuda"), TOL["bf16"])


def test_gpu_switches_on_cpu_are_refused_in_one_line():
    energy = _energy("cpu")
    with pytest.raises(DDLSError, match="CUDA graphs need a CUDA device"):
        _run(energy, FastPath(cuda_graphs=True))
    with pytest.raises(DDLSError, match="fp16 autocast needs a CUDA device"):
        _run(energy, FastPath(autocast="fp16"))
    with pytest.raises(DDLSError, match="either compile or CUDA graphs"):
        FastPath(compile=True, cuda_graphs=True)
