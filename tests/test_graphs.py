"""Whole-step graphs (ddls.sampling.graphs) give the chains eager steps give.

On the CPU the capture is `EagerReplay` (the captured body rerun on each replay), which checks
the stepper's bookkeeping exactly: static buffers, the step counter, restarts, resuming. The
CUDA graph itself runs under DDLS_TEST_DEVICE=cuda.
"""
import pytest
import torch

from conftest import DEVICE
from test_fastpath import _energy

from ddls._torch import frozen, make_generator
from ddls.sampling.driver import RunConfig, run_chain, sample
from ddls.sampling.fastpath import FastPath
from ddls.sampling.graphs import EagerReplay, GraphStepper
from ddls.sampling.samplers import make_sampler

needs_cuda = pytest.mark.skipif(DEVICE.type != "cuda",
                                reason="CUDA graphs need a GPU: run with DDLS_TEST_DEVICE=cuda")
# Max |difference| of latents, graph against eager, after a few fp32 steps: only cuDNN's algorithm
# choice may differ between the capture and the eager run (the noise is the same draws).
CUDA_TOL = 1e-4


class Replayed:
    """An energy whose steps go through a GraphStepper with the CPU stand-in for a capture."""

    def __init__(self, energy):
        self.energy = energy

    def __call__(self, z):
        return self.energy(z)

    def stepper(self, sampler, generator, accept_sum, first_bad):
        return GraphStepper(sampler, self.energy, generator, accept_sum, first_bad, capture=EagerReplay)


class Ridge:
    """E(z) = |z|^2 / 2, NaN where z_0 > 1.5: chains started near the edge restart."""

    def __call__(self, z):
        e = 0.5 * z.pow(2).sum(1)
        return torch.where(z[:, 0] > 1.5, torch.nan, e)


def _chain(energy, method, steps=12, eps=0.05, on_nan="stop", scale=1.0, **kw):
    z0 = scale * torch.randn(16, 8, generator=make_generator(5, "cpu"))
    gen = make_generator(7, "cpu")
    run = run_chain(make_sampler(method, eps), energy, z0, steps=steps, generator=gen, check_every=4,
                    on_nan=on_nan, **kw)
    return run, gen.get_state()


@pytest.mark.parametrize("method", ["ula", "mala"])
def test_replayed_steps_are_the_eager_steps(method):
    energy = _energy("cpu")
    with frozen(*energy.modules()):
        eager, eager_gen = _chain(energy, method)
        graph, graph_gen = _chain(Replayed(energy), method)
    for a, b in zip(eager.state, graph.state):
        assert torch.equal(a, b)
    assert torch.equal(eager.accept_sum, graph.accept_sum)
    assert torch.equal(eager_gen, graph_gen)  # the warm-up's draws were given back
    if method == "mala":
        assert 0 < float(graph.accept_sum.mean()) < 12  # some proposals were refused: the accept ran


def test_restarts_recapture_with_per_chain_eps_and_match_eager():
    method = "ula"  # MALA refuses non-finite proposals, so its chains never restart
    eager, _ = _chain(Ridge(), method, steps=20, eps=0.5, on_nan="restart", scale=0.3)
    graph, _ = _chain(Replayed(Ridge()), method, steps=20, eps=0.5, on_nan="restart", scale=0.3)
    assert eager.restarts, "the ridge should have sent some chains back"
    assert graph.restarts == eager.restarts
    for a, b in zip(eager.state, graph.state):
        assert torch.equal(a, b)


def test_resume_from_a_save_inside_a_replayed_run_matches_the_whole_eager_run():
    energy = _energy("cpu")
    saved = []
    with frozen(*energy.modules()):
        whole, _ = _chain(energy, "ula", steps=12)
        first, _ = _chain(Replayed(energy), "ula", steps=12, save=saved.append, save_every=5)
        progress = saved[0]
        assert progress.step == 5
        # The saved state is a copy: the replays after it did not overwrite it.
        assert not torch.equal(progress.state.position, first.state.position)
        z0 = torch.randn(16, 8, generator=make_generator(5, "cpu"))
        resumed = run_chain(make_sampler("ula", 0.05), Replayed(energy), z0, steps=12,
                            generator=make_generator(7, "cpu"), check_every=4, start=progress)
    assert torch.equal(resumed.state.position, whole.state.position)


@needs_cuda
@pytest.mark.parametrize("method", ["ula", "mala"])
def test_cuda_graph_steps_follow_eager_steps(method):
    energy = _energy(DEVICE)
    # chunks of 8, 8 and 4 chains: two shapes, each captured, one pool shared
    config = RunConfig(n=20, steps=6, method=method, eps=0.05, seed=3, chunk_size=8)
    plain = sample(energy, config)
    graphed = sample(energy, config, fast=FastPath(cuda_graphs=True))
    torch.testing.assert_close(graphed.latents, plain.latents, atol=CUDA_TOL, rtol=0)
    if method == "mala":
        torch.testing.assert_close(graphed.acceptance, plain.acceptance, atol=1e-6, rtol=0)


@needs_cuda
def test_cuda_graph_generator_state_after_a_chunk_is_the_eager_one():
    energy = _energy(DEVICE)
    from ddls.sampling.fastpath import prepare

    z0 = torch.randn(32, 8, device=DEVICE, generator=make_generator(1, DEVICE))
    states = []
    with frozen(*energy.modules()):
        for chain_energy in (energy, prepare(energy, FastPath(cuda_graphs=True))):
            gen = make_generator(2, DEVICE)
            run_chain(make_sampler("ula", 0.05), chain_energy, z0, steps=7, generator=gen)
            states.append(gen.get_state())
    assert torch.equal(states[0], states[1])


@needs_cuda
def test_cuda_graph_needs_about_the_memory_of_the_eager_step():
    from test_fastpath import TinyD, TinyG
    from ddls.sampling.energy import LatentEnergy

    torch.manual_seed(0)
    energy = LatentEnergy(TinyG().to(DEVICE), TinyD().to(DEVICE), 8)
    config = RunConfig(n=4096, steps=3, eps=0.01, chunk_size=4096)
    peaks = []
    for fast in (None, FastPath(cuda_graphs=True)):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        sample(energy, config, fast=fast)
        peaks.append(torch.cuda.max_memory_reserved())
    assert peaks[1] <= 1.3 * peaks[0], f"graph path reserved {peaks[1] / 2**20:.0f} MiB, eager {peaks[0] / 2**20:.0f} MiB"
