"""Losses by hand, and the trainer on tiny models."""
import math

import pytest
import torch

from ddls.data.toy2d import get_dataset
from ddls.errors import DDLSError
from ddls.training.losses import gradient_penalty, ns_d_loss, ns_g_loss, wgan_d_loss, wgan_g_loss
from ddls._torch import make_generator
from ddls.training.trainer import TrainConfig, train

from conftest import Linear


def test_ns_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    torch.testing.assert_close(ns_d_loss(real, fake), expected_d)
    torch.testing.assert_close(ns_g_loss(fake), -torch.log(sig(fake)).mean())


def test_wgan_losses_by_hand():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 0.0])
    assert float(wgan_d_loss(real, fake)) == pytest.approx(-0.5 - 3.0)
    assert float(wgan_g_loss(fake)) == pytest.approx(0.5)


def test_gradient_penalty_of_a_linear_critic(device):
    # D(x) = w.x + b has gradient w everywhere: penalty (||w|| - 1)^2 for any interpolate.
    d = Linear([[3.0, 4.0]], [0.1]).to(device)
    real, fake = torch.randn(8, 2, device=device), torch.randn(8, 2, device=device)
    gp = gradient_penalty(d, real, fake, make_generator(0, device))
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)


def test_gradient_penalty_works_for_images_of_any_channel_count(device):
    for c in (1, 3, 5):
        d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * 4 * 4, 1)).to(device)
        x, y = torch.randn(2, c, 4, 4, device=device), torch.randn(2, c, 4, 4, device=device)
        gp = gradient_penalty(d, x, y, make_generator(0, device))
        w = d[1].weight.norm()
        assert gp.item() == pytest.approx((w - 1).pow(2).item(), rel=1e-5)


def tiny(loss, **kw):
    args = dict(data="gmm25", loss=loss, steps=30, batch_size=32, hidden=16, depth=2, seed=0, log_every=10)
    args.update(kw)
    return TrainConfig(**args)


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_training_is_seeded_and_deterministic(loss, device):
    ds = get_dataset("gmm25")
    a = train(tiny(loss), ds.sample, 2, device=device)
    b = train(tiny(loss), ds.sample, 2, device=device)
    c = train(tiny(loss, seed=1), ds.sample, 2, device=device)
    for (k, va), vb, vc in zip(a.generator.state_dict().items(), b.generator.state_dict().values(),
                               c.generator.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.generator.state_dict().values(),
                                                         c.generator.state_dict().values()))
    assert a.history["step"] == [10, 20, 30]
    assert all(math.isfinite(v) for v in a.history["d_loss"] + a.history["g_loss"])


def test_discriminator_learns_to_separate(device):
    # With the generator frozen (lr_g tiny), the NS discriminator loss must fall below log 4.
    ds = get_dataset("gmm25")
    out = train(tiny("ns", steps=300, lr_g=1e-12, lr_d=1e-2, hidden=32, log_every=50), ds.sample, 2, device=device)
    assert out.history["d_loss"][-1] < 0.8 * math.log(4), out.history["d_loss"]


def test_training_does_not_touch_global_rng(device):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    train(tiny("ns", steps=2), get_dataset("gmm25").sample, 2, device=device)
    torch.testing.assert_close(torch.rand(3), expected)


def test_unknown_loss_and_bad_steps():
    with pytest.raises(DDLSError, match="unknown loss 'lsgan2'"):
        tiny("lsgan2")
    with pytest.raises(DDLSError, match="steps must be >= 1"):
        tiny("ns", steps=0)


def test_resnet_takes_the_sngan_recipe_and_explicit_options_win():
    from ddls.training.recipes import make_config

    resnet = make_config("fashion-mnist", loss="sngan", arch="resnet", image_size=32)
    assert (resnet.beta1, resnet.beta2, resnet.critic_steps) == (0.0, 0.9, 5)
    assert (resnet.lr_g, resnet.lr_d, resnet.batch_size) == (2e-4, 2e-4, 64)
    dcgan = make_config("fashion-mnist", loss="sngan")
    assert (dcgan.arch, dcgan.beta1, dcgan.critic_steps) == ("dcgan", 0.5, 1)
    mine = make_config("fashion-mnist", loss="sngan", arch="resnet", beta1=0.5, n_critic=2, lr=1e-4, lr_d=3e-4)
    assert (mine.beta1, mine.critic_steps, mine.lr_g, mine.lr_d) == (0.5, 2, 1e-4, 3e-4)
    toy = make_config("gmm25")
    assert (toy.arch, toy.z_dim, toy.batch_size, toy.lr_g) == ("mlp", 2, 256, 1e-4)


@pytest.mark.slow
def test_cli_train_reports_the_generator_alone_on_5000_samples(tmp_path):
    """The score `ddls train` prints on 2-D data is that of 5000 generator samples from seed 0."""
    from conftest import invoke
    from ddls.io.checkpoint import load_model
    from ddls.metrics.points2d import evaluate
    from ddls.sampling.driver import RunConfig, sample

    r = invoke("train", "--data", "ring8", "--steps", 5, "--hidden", 8, "--depth", 1, "--batch-size", 16,
               "--device", "cpu", "--out", tmp_path / "m.pt")
    assert r.exit_code == 0, r.output
    model = load_model(tmp_path / "m.pt")
    expected = evaluate(sample(model.energy(), RunConfig(n=5000, steps=0, seed=0)).samples.numpy(), get_dataset("ring8"))
    assert model.meta["extra"]["generator_metrics"] == pytest.approx(expected)
    assert f"emd={expected['emd']:.4g}" in r.output
