"""Diverging chains: found at check points (no per-step host sync), named by index and step;
the run stops naming eps, or restarts just those chains at a smaller eps."""
import pytest
import torch

from ddls._torch import make_generator
from ddls.sampling.driver import RESTART_FACTOR, RunConfig, run_chain
from ddls.errors import NonFiniteEnergy
from ddls.sampling.samplers import make_sampler
from conftest import DEVICE, invoke, one_line_error

pytestmark = pytest.mark.usefixtures("no_train_metrics")  # train only to get checkpoints


class Cliff:
    """E = |z|^2/2, but NaN wherever z[0] > wall: chains pushed past the wall diverge."""

    def __init__(self, wall):
        self.wall = wall

    def __call__(self, z):
        nan = torch.where(z[:, 0] > self.wall, float("nan"), 0.0).detach()
        return 0.5 * z.pow(2).sum(1) + nan


def start(n=8):
    z = torch.zeros(n, 2, device=DEVICE)
    z[3, 0] = z[5, 0] = 0.95  # chains 3 and 5 sit next to the wall at 1.0
    return z


@pytest.mark.parametrize("method", ["ula", "mala"])
def test_stop_names_chains_step_and_eps(method):
    sampler = make_sampler(method, 0.5)
    with pytest.raises(NonFiniteEnergy) as info:
        z = start()
        z[3, 0] = z[5, 0] = 1.5  # past the wall at step 0: both kernels see it
        run_chain(sampler, Cliff(1.0), z, steps=20, generator=make_generator(0, DEVICE), check_every=10)
    assert info.value.chains == [3, 5] and info.value.step == 0
    assert "eps=0.5" in str(info.value)


def test_checked_only_at_check_points():
    """A chain that diverges at step 1 is reported at the next check (step 10) with its first bad step."""
    sampler = make_sampler("ula", 4.0)
    calls = []
    with pytest.raises(NonFiniteEnergy) as info:
        run_chain(sampler, Cliff(1.0), start(), steps=30, generator=make_generator(0, DEVICE),
                  check_every=10, on_step=lambda: calls.append(1))
    assert len(calls) == 10  # ran on to the check point without stopping at step 1
    assert info.value.step >= 1 and 3 in info.value.chains or 5 in info.value.chains


def test_restart_rolls_back_only_bad_chains_at_smaller_eps():
    sampler = make_sampler("ula", 0.5)
    gen = make_generator(0, DEVICE)
    run = run_chain(sampler, Cliff(1.0), start(), steps=200, generator=gen, check_every=5, on_nan="restart")
    assert torch.isfinite(run.state.position).all() and torch.isfinite(run.state.energy).all()
    assert run.restarts, "expected the chains near the wall to be restarted"
    chains = {c for c, _, _ in run.restarts}
    assert chains <= set(range(8))
    for c, step, eps in run.restarts:
        assert 1 <= step <= 200
        assert eps < 0.5 and any(abs(eps - 0.5 * RESTART_FACTOR ** k) < 1e-9 for k in range(1, 11))
    again = run_chain(sampler, Cliff(1.0), start(), steps=200, generator=make_generator(0, DEVICE),
                      check_every=5, on_nan="restart")
    assert again.restarts == run.restarts and torch.equal(again.state.position, run.state.position)


def test_restart_gives_up_after_max_restarts_and_names_eps():
    sampler = make_sampler("ula", 0.5)
    always = Cliff(-1.0)
    z = torch.full((4, 2), -2.0, device=DEVICE)
    z[1] = torch.tensor([-1.01, 0.0])  # one step from the NaN region at every eps
    with pytest.raises(NonFiniteEnergy, match=r"eps=.*after 10 restarts") as info:
        run_chain(sampler, always, z, steps=2000, generator=make_generator(0, DEVICE), check_every=1,
                  on_nan="restart")
    assert 1 in info.value.chains


def test_per_chain_eps_equals_scalar_eps():
    """A (B,) eps tensor with equal entries is the scalar step (so restarted runs use the same math)."""
    from ddls.sampling.samplers import init, mala_step

    energy = lambda z: 0.5 * z.pow(2).sum(1)  # noqa: E731
    st = init(torch.randn(6, 3, generator=make_generator(1, DEVICE), device=DEVICE), energy)
    a, ia = mala_step(st, energy, eps=0.1, generator=make_generator(2, DEVICE))
    b, ib = mala_step(st, energy, eps=torch.full((6,), 0.1, device=DEVICE), generator=make_generator(2, DEVICE))
    torch.testing.assert_close(a.position, b.position)
    torch.testing.assert_close(ia.accept_prob, ib.accept_prob)


def test_cli_on_nan_stop_and_restart(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    r = invoke("train", "--data", "gmm25", "--steps", "20", "--hidden", "16", "--depth", "2",
               "--batch-size", "32", "--out", ckpt)
    assert r.exit_code == 0, r.output
    out = tmp_path / "s.npz"
    args = ["sample", "--ckpt", str(ckpt), "--steps", "30", "--n", "20", "--eps", "1e30", "--out", str(out)]
    line = one_line_error(invoke(*args))
    assert "NaN or inf" in line and "eps=1e+30" in line and "chain" in line
    assert not out.exists()
    # checks come every 50 steps: 11 halvings of 1e30 need 550 steps before the run gives up
    assert "after 10 restarts" in one_line_error(invoke(*args, "--on-nan", "restart", "--steps", "600"))
    assert not out.exists()
