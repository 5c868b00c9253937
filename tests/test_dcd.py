"""DCD calibration: D fine-tuned by contrastive divergence against DDLS's own samples, with known answers.

A generator G(z) = z makes p_g = N(0, 1), and DDLS's target p_g(x) exp(d(x)) is then known in closed
form for the critics below, so where DCD's fixed point lies can be computed by hand."""
import json

import pytest
import torch
from torch import nn

from conftest import Linear, invoke, one_line_error
from ddls._torch import make_generator
from ddls.calibration import calibrate
from ddls.calibration.dcd import DCDConfig, dv_bound
from ddls.calibration.finetune import FinetuneConfig
from ddls.calibration.heldout import HeldOut
from ddls.errors import DDLSError
from ddls.io.checkpoint import load_model
from ddls.sampling.energy import LatentEnergy

MEAN, STD = 1.0, 0.6  # real data N(1, 0.6^2) against generated N(0, 1)


def real(n, gen):
    return MEAN + STD * torch.randn(n, 1, generator=gen, device=gen.device)


class Features(nn.Module):
    """d(x) = w . phi(x) + b with phi(x) = (x) or (x, x^2), started at d = 0."""

    def __init__(self, quadratic):
        super().__init__()
        self.quadratic = quadratic
        self.lin = nn.Linear(2 if quadratic else 1, 1)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.bias.zero_()

    def forward(self, x):
        return self.lin(torch.cat([x, x * x], 1) if self.quadratic else x)


def tuned(quadratic, **kw):
    energy = LatentEnergy(Linear([[1.0]], [0.0]), Features(quadratic), 1)
    settings = dict(steps=1500, lr=0.02, batch_size=256, n_heldout=4000, eval_every=100, patience=100, seed=0,
                    chain_steps=10, chain_eps=0.05)
    settings.update(kw)
    return energy, calibrate(energy, "dcd", real, **settings)


def test_a_linear_critic_is_tuned_until_ddls_matches_the_data_mean():
    # d(x) = w x + b makes DDLS's target N(0, 1) exp(w x) = N(w, 1): the only moment d sees is the mean,
    # and maximum likelihood (DCD's fixed point) matches it: w = the data's mean
    energy, result = tuned(quadratic=False)
    w = float(result.energy.discriminator.lin.weight)
    assert w == pytest.approx(MEAN, abs=0.1)
    rec = result.record
    assert rec["kind"] == "dcd" and rec["improved"]
    assert rec["heldout_bound"]["best"] > rec["heldout_bound"]["first"] + 0.3  # 0 at the start; 0.5 at w = 1
    assert float(energy.discriminator.lin.weight) == 0.0  # the input's D is left as it was


def test_a_quadratic_critic_learns_the_log_density_ratio_of_two_gaussians():
    # log N(x; 1, 0.36) - log N(x; 0, 1) = -0.889 x^2 + 2.778 x + c: DDLS then samples the data exactly
    _, result = tuned(quadratic=True, steps=2500)
    w1, w2 = result.energy.discriminator.lin.weight[0].tolist()
    assert w2 == pytest.approx(0.5 - 1 / (2 * STD ** 2), abs=0.15)
    assert w1 == pytest.approx(MEAN / STD ** 2, abs=0.4)
    # the target's own mean and variance, from its natural parameters
    var = 1 / (1 - 2 * w2)
    assert var * w1 == pytest.approx(MEAN, abs=0.1) and var == pytest.approx(STD ** 2, abs=0.08)


def test_dv_bound_is_the_likelihood_up_to_a_constant_and_peaks_at_the_true_ratio():
    gen = make_generator(3)
    held = HeldOut(real(20000, gen), torch.randn(20000, 1, generator=gen))
    truth = lambda x: (-0.5 * ((x[:, 0] - MEAN) / STD) ** 2 + 0.5 * x[:, 0] ** 2)  # log ratio up to a constant
    best = dv_bound(truth, held)
    assert dv_bound(lambda x: truth(x) + 7.0, held) == pytest.approx(best, abs=1e-4)  # constants drop out
    for other in (lambda x: 0.5 * truth(x), lambda x: 1.5 * truth(x), lambda x: truth(x) + 0.3 * x[:, 0]):
        assert dv_bound(other, held) < best - 0.01
    # and at the truth it is KL(N(1, .36) || N(0, 1)) = log(1/.6) + (.36 + 1) / 2 - 1/2
    assert best == pytest.approx(torch.log(torch.tensor(1 / STD)).item() + (STD ** 2 + MEAN ** 2) / 2 - 0.5, abs=0.05)


def test_dcd_is_reproducible_by_seed():
    a = tuned(quadratic=False, steps=40, eval_every=10)[1].energy.discriminator.lin.weight
    b = tuned(quadratic=False, steps=40, eval_every=10)[1].energy.discriminator.lin.weight
    c = tuned(quadratic=False, steps=40, eval_every=10, seed=1)[1].energy.discriminator.lin.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dcd_counts_every_pass_through_the_networks():
    # held-out set drawn (G) and scored at the start and at every evaluation (2 x n_heldout each); per update
    # chain_steps + 1 forward and backward passes per chain, and D forward and backward on real and chains
    result = tuned(quadratic=False, steps=40, eval_every=10, n_heldout=500, batch_size=64, chain_steps=3)[1]
    assert result.evaluations == 2 * 500 + 2 * 500 + 40 * (2 * 4 * 64 + 4 * 64) + 4 * 2 * 500


@pytest.mark.parametrize("kw, message", [
    (dict(chain_steps=0), "DCD chain steps must be >= 1"),
    (dict(chain_eps=0.0), "DCD chain step size must be a positive finite number"),
    (dict(tune=FinetuneConfig(noise=0.1)), "DCD takes no instance noise"),
])
def test_bad_settings_are_refused_in_one_line(kw, message):
    with pytest.raises(DDLSError, match=message):
        DCDConfig(**kw)


def test_cli_writes_a_dcd_checkpoint_that_scores_as_the_in_memory_fit(wgan_ckpt, tmp_path):
    out = tmp_path / "dcd.pt"
    r = invoke("calibrate", "--ckpt", wgan_ckpt, "--method", "dcd", "--steps", 30, "--eval-every", 10,
               "--batch-size", 64, "--n-heldout", 300, "--chain-steps", 2, "--out", out)
    assert r.exit_code == 0, r.output
    assert "held-out likelihood bound" in r.output and "energy kind now 'gan'" in r.output
    raw, cal = load_model(wgan_ckpt), load_model(out)
    rec = cal.meta["extra"]["calibration"]
    assert rec["kind"] == "dcd" and rec["energy_before"] == "wgan" and cal.score_map.kind == "platt"
    assert rec["heldout_bound"]["best"] >= rec["heldout_bound"]["first"]
    from ddls.data.real import real_source
    fitted = calibrate(raw.energy(), "dcd", real_source(raw), steps=30, eval_every=10, batch_size=64, n_heldout=300,
                       chain_steps=2)
    x = torch.randn(16, 2, generator=make_generator(5))
    torch.testing.assert_close(cal.energy().score(x), fitted.energy.score(x))


def test_cli_refuses_instance_noise_for_dcd(wgan_ckpt, tmp_path):
    line = one_line_error(invoke("calibrate", "--ckpt", wgan_ckpt, "--method", "dcd", "--noise", "0.1",
                                 "--out", tmp_path / "x.pt"))
    assert "--noise is an option of --method finetune, not of dcd" in line


def test_sample_calibrates_with_dcd_in_memory_as_calibrate_does(wgan_ckpt, tmp_path):
    # --calibration dcd reaches the same calibrate() as `ddls calibrate --method dcd` (steps from --calibration-steps)
    import numpy as np
    from ddls.data.real import real_source
    from ddls.posthoc import make_target

    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", wgan_ckpt, "--method", "ddls", "--calibration", "dcd", "--calibration-steps", 20,
               "--steps", 3, "--eps", 1e-3, "--n", 16, "--out", out)
    assert r.exit_code == 0, r.output
    raw = load_model(wgan_ckpt)
    target = make_target(raw.energy(), "dcd", real_source(raw), seed=0, finetune_steps=20)
    assert target.record["calibration"]["kind"] == "dcd" and target.record["calibration"]["steps_run"] == 20
    with np.load(out, allow_pickle=False) as f:
        assert f["x"].shape == (16, 2)
        written = json.loads(str(f["meta"]))["calibration"]["calibration"]
    assert written["heldout_bound"] == target.record["calibration"]["heldout_bound"]
