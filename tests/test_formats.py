"""Each supported checkpoint layout, built with made-up weights: `ddls sample` runs on it and the
loaded energy equals -log p0(z) - d(G(z)) computed by an independent functional reference."""
import math

import numpy as np
import pytest
import torch

import _layouts as L
from ddls.formats import load_any


from conftest import invoke, one_line_error  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_train_metrics")  # train only to get checkpoints


def hand_energy(z, logit):
    return 0.5 * z.pow(2).sum(1) + 0.5 * z.shape[1] * math.log(2 * math.pi) - logit


def check(paths, ref_g, ref_d, z_dim, tmp_path, label=None, kind="gan"):
    """`ddls sample` writes (4, 3, 32, 32) images; the energy matches the reference on 3 latents."""
    extra = [] if label is None else ["--label", label]
    out = tmp_path / "x.npz"
    args = ["sample", "--ckpt", paths[0], *(["--disc", paths[1]] if len(paths) > 1 else []), *extra,
            "--steps", 2, "--n", 4, "--eps", 1e-3, "--device", "cpu", "--out", out]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        assert npz["x"].shape == (4, 3, 32, 32)
        assert np.isfinite(npz["x"]).all()
    model = load_any(paths[0], paths[1] if len(paths) > 1 else None, label=label)
    assert model.energy_kind == kind
    energy = model.energy()
    z = torch.randn(3, z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        x = ref_g(z)
        torch.testing.assert_close(energy.decode(z), x, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(energy(z), hand_energy(z, ref_d(x)), rtol=1e-4, atol=1e-4)
    return model


@pytest.mark.parametrize("sn", [True, False], ids=["sngan", "wgangp"])
def test_gan_collections_cnn32(tmp_path, sn):
    g, d = L.collections_cnn32(100, sn)
    path = tmp_path / "model.pt"
    torch.save({"net_G": g, "net_D": d, "optim_G": {}, "optim_D": {}, "sched_G": {}, "sched_D": {}}, path)
    model = check([path], lambda z: L.ref_collections_cnn32_g(g, z), lambda x: L.ref_collections_cnn32_d(d, x),
                  100, tmp_path, kind="gan" if sn else "wgan")
    assert model.meta["architecture"] == "cnn32" and model.latent_shape == (100,)


def _collections_save(tmp_path, g, d):
    path = tmp_path / "model.pt"
    torch.save({"net_G": g, "net_D": d, "optim_G": {}, "optim_D": {}, "sched_G": {}, "sched_D": {}}, path)
    return path


def test_gan_collections_dcgan_batchnorm_discriminator(tmp_path):
    """The library's DCGAN cnn32 (ConvTranspose G from z, batch-norm D) loads strictly and samples with
    the batch norms' running statistics."""
    from ddls._torch import frozen

    g, d = L.collections_dcgan32(100, width_g=16, width_d=8)  # widths are read from the shapes
    path = _collections_save(tmp_path, g, d)
    ref_g, ref_d = (lambda z: L.ref_collections_dcgan32_g(g, z)), (lambda x: L.ref_collections_dcgan32_d(d, x))
    model = check([path], ref_g, ref_d, 100, tmp_path, kind="gan")
    assert model.meta["architecture"] == "cnn32" and model.meta["variant"] == "DCGAN"
    assert model.latent_shape == (100,)
    with np.load(tmp_path / "x.npz") as npz:  # the CLI's samples are G(z) of its final latents, in eval mode
        z, x = torch.from_numpy(npz["z"]), torch.from_numpy(npz["x"])
    torch.testing.assert_close(x, ref_g(z), rtol=1e-4, atol=1e-5)
    # Batch statistics would give another energy: sampling must (and does) use the running ones.
    energy = model.energy()
    zs = torch.randn(3, 100, generator=torch.Generator().manual_seed(3))
    expected = hand_energy(zs, ref_d(ref_g(zs)))
    model.discriminator.train()
    with torch.no_grad():
        with frozen(*energy.modules()):  # what the driver wraps every run in
            torch.testing.assert_close(energy(zs), expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(energy(zs), expected, rtol=1e-4, atol=1e-4)  # the energy itself uses them too
        assert model.discriminator.training  # and gives the caller's module its own mode back
        batch_stats = model.discriminator(ref_g(zs))  # a train-mode D on its own: batch statistics
        assert not torch.allclose(batch_stats, ref_d(ref_g(zs)), rtol=1e-3, atol=1e-3)


def test_gan_collections_dcgan_real_width_inspect(tmp_path):
    g, d = L.collections_dcgan32(100)  # the library's sizes: 1024..128-channel G, 64..512-channel D
    r = invoke("inspect", "--ckpt", _collections_save(tmp_path, g, d))
    assert r.exit_code == 0, r.output
    assert "architecture: cnn32" in r.output and "variant: DCGAN" in r.output and "energy: gan" in r.output
    stats = ("num_batches_tracked", "running_mean", "running_var")
    for net, name in ((g, "generator"), (d, "discriminator")):
        count = sum(v.numel() for k, v in net.items() if not k.endswith(stats))
        assert f"{name}_parameters: {count:,}" in r.output


@pytest.mark.parametrize("sn", [True, False], ids=["sngan", "wgangp"])
def test_gan_collections_res32(tmp_path, sn):
    g, d = L.collections_res32(128, 32, 16, sn)  # widths are read from the shapes: small ones keep this fast
    path = tmp_path / "model.pt"
    torch.save({"net_G": g, "net_D": d, "optim_G": {}, "optim_D": {}, "sched_G": {}, "sched_D": {}}, path)
    model = check([path], lambda z: L.ref_resnet_g(g, z, L.COLLECTIONS_RES_G), lambda x: L.ref_collections_res_d(d, x),
                  128, tmp_path, kind="gan" if sn else "wgan")
    assert model.meta["architecture"] == "res32"


def test_gan_collections_res32_real_width(tmp_path):
    """The library's own sizes (256-channel G, 128-channel D, z_dim 128) load, and inspect reports them."""
    g, d = L.collections_res32(128, 256, 128, True)
    path = tmp_path / "model.pt"
    torch.save({"net_G": g, "net_D": d, "optim_G": {}, "optim_D": {}, "sched_G": {}, "sched_D": {}}, path)
    r = invoke("inspect", "--ckpt", path)
    assert r.exit_code == 0, r.output
    assert "format: pytorch-gan-collections" in r.output and "architecture: res32" in r.output
    assert "latent_shape: [128]" in r.output and "variant: SNGAN" in r.output
    n_g = sum(v.numel() for k, v in g.items() if not k.endswith(("num_batches_tracked", "running_mean", "running_var")))
    assert f"generator_parameters: {n_g:,}" in r.output


@pytest.mark.parametrize("sn", ["torch", "mimicry", None], ids=["sngan-torch-sn", "sngan-mimicry-sn", "wgangp"])
def test_mimicry(tmp_path, sn):
    g, d = L.mimicry_pair(128, 32, 16, sn)
    gp, dp = tmp_path / "netG_100000_steps.pth", tmp_path / "netD_100000_steps.pth"
    for state, path in ((g, gp), (d, dp)):
        torch.save({"model_state_dict": state, "optimizer_state_dict": {}, "global_step": 100000}, path)
    pooling = "sum" if sn else "mean"
    check([gp, dp], lambda z: L.ref_resnet_g(g, z, L.MIMICRY_G, up="bilinear"),
          lambda x: L.ref_resnet_d(d, x, L.MIMICRY_D, pooling)[0], 128, tmp_path, kind="gan" if sn else "wgan")


def _studio_save(tmp_path, g, d):
    gp = tmp_path / "model=G-best-weights-step=50000.pth"
    dp = tmp_path / "model=D-best-weights-step=50000.pth"
    common = {"seed": 0, "run_name": "CIFAR10-resnet-train", "step": 50000, "best_step": 50000}
    torch.save({**common, "state_dict": g, "optimizer": {}}, gp)
    torch.save({**common, "state_dict": d, "optimizer": {}, "best_fid": 20.0, "best_fid_checkpoint_path": "x"}, dp)
    return gp, dp


def test_studiogan_unconditional(tmp_path):
    g, d = L.studiogan_pair(80, 32, 16, 0)
    gp, dp = _studio_save(tmp_path, g, d)
    check([gp, dp], lambda z: L.ref_resnet_g(g, z, L.STUDIO_G, eps=1e-4), lambda x: L.ref_studiogan_d(d, x),
          80, tmp_path)


def test_studiogan_conditional_needs_label(tmp_path):
    g, d = L.studiogan_pair(80, 32, 16, 10)
    gp, dp = _studio_save(tmp_path, g, d)
    y = torch.full((3,), 3)
    check([gp, dp], lambda z: L.ref_resnet_g(g, z, L.STUDIO_G, eps=1e-4, y=y), lambda x: L.ref_studiogan_d(d, x, y),
          80, tmp_path, label=3)
    line = one_line_error(invoke("sample", "--ckpt", gp, "--disc", dp, "--steps", 1, "--n", 2, "--device", "cpu",
                                 "--out", tmp_path / "y.npz"))
    assert "conditional model with 10 classes; give a class label (0..9)" in line
    line = one_line_error(invoke("sample", "--ckpt", gp, "--disc", dp, "--label", 10, "--device", "cpu",
                                 "--out", tmp_path / "y.npz"))
    assert "out of range" in line


def test_label_each_cycles_classes_across_chunks(tmp_path):
    """--label each: chain i has class i mod 10, across chunks of 5; `y` records it, and each chain's
    sample and energy are those of its own class."""
    g, d = L.studiogan_pair(80, 32, 16, 10)
    gp, dp = _studio_save(tmp_path, g, d)
    out = tmp_path / "each.npz"
    r = invoke("sample", "--ckpt", gp, "--disc", dp, "--label", "each", "--n", 12, "--chunk-size", 5,
               "--steps", 2, "--eps", 1e-3, "--device", "cpu", "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        y, z, x = torch.from_numpy(npz["y"]), torch.from_numpy(npz["z"]), torch.from_numpy(npz["x"])
    assert y.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    with torch.no_grad():
        ref_x = L.ref_resnet_g(g, z, L.STUDIO_G, eps=1e-4, y=y)
        torch.testing.assert_close(x, ref_x, rtol=1e-4, atol=1e-5)
        energy = load_any(gp, dp).energy(label=y)
        torch.testing.assert_close(energy(z), hand_energy(z, L.ref_studiogan_d(d, ref_x, y)), rtol=1e-4, atol=1e-4)
    r = invoke("sample", "--ckpt", gp, "--disc", dp, "--label", 4, "--n", 3, "--steps", 0, "--device", "cpu",
               "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        assert npz["y"].tolist() == [4, 4, 4]
    line = one_line_error(invoke("sample", "--ckpt", unconditional_checkpoint(tmp_path), "--label", "each",
                                 "--device", "cpu", "--out", out))
    assert "unconditional" in line and "drop the label" in line
    assert "--label each are for --method ddls/mala" in one_line_error(
        invoke("sample", "--ckpt", gp, "--disc", dp, "--label", "each", "--method", "drs", "--device", "cpu",
               "--out", out))
    bad = invoke("sample", "--ckpt", gp, "--disc", dp, "--label", "all", "--out", out)
    assert bad.exit_code == 2 and "neither a class index" in bad.output


def unconditional_checkpoint(tmp_path):
    """An unconditional pytorch-gan-collections checkpoint, for the label errors."""
    g, d = L.collections_dcgan32(8, width_g=2, width_d=2)
    return _collections_save(tmp_path, g, d)


def test_ddls_native_through_load_any(tmp_path):
    path = tmp_path / "tiny.pt"
    r = invoke("train", "--data", "gmm25", "--steps", 3, "--hidden", 8, "--depth", 1, "--batch-size", 16,
               "--out", path)
    assert r.exit_code == 0, r.output
    r = invoke("inspect", "--ckpt", path, "--json")
    assert r.exit_code == 0 and '"format": "ddls"' in r.output


# ---- wrong files: one clear line naming what was expected ----------------------------------------


@pytest.fixture
def classifier(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    path = tmp_path / "classifier.pt"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.parametrize("command", ["sample", "inspect"])
def test_wrong_file_one_line(classifier, command, tmp_path):
    args = ["--ckpt", classifier] + (["--out", tmp_path / "x.npz", "--device", "cpu"] if command == "sample" else [])
    line = one_line_error(invoke(command, *args))
    assert "no checkpoint format ddls knows" in line and "bare state dict" in line
    for name in ("pytorch-gan-collections", "torch-mimicry", "StudioGAN", "ddls"):
        assert name in line


def test_generator_without_discriminator(tmp_path):
    g, _ = L.mimicry_pair(16, 8, 8, "torch")
    gp = tmp_path / "netG_10_steps.pth"
    torch.save({"model_state_dict": g, "optimizer_state_dict": {}, "global_step": 10}, gp)
    line = one_line_error(invoke("inspect", "--ckpt", gp))
    assert "the discriminator file netD_<step>_steps.pth" in line
    sg, _ = L.studiogan_pair(16, 8, 8, 0)
    sp, _ = _studio_save(tmp_path, sg, {})
    assert "the discriminator file model=D-" in one_line_error(invoke("inspect", "--ckpt", sp))


def test_mismatched_shapes(tmp_path):
    g, d = L.collections_cnn32(100, True)
    d["linear.weight_orig"] = torch.randn(1, 2048)  # a 16x16-input head on a 32x32 discriminator
    d["linear.weight_v"] = torch.randn(2048)
    path = tmp_path / "model.pt"
    torch.save({"net_G": g, "net_D": d, "optim_G": {}, "optim_D": {}, "sched_G": {}, "sched_D": {}}, path)
    line = one_line_error(invoke("inspect", "--ckpt", path))
    assert "net_D (cnn32 Discriminator32) weights do not fit" in line and "linear.weight" in line


def test_unconditional_refuses_label_and_pair_mixup(tmp_path):
    g, d = L.mimicry_pair(16, 8, 8, None)
    gp, dp = tmp_path / "netG.pth", tmp_path / "netD.pth"
    for state, path in ((g, gp), (d, dp)):
        torch.save({"model_state_dict": state, "optimizer_state_dict": {}, "global_step": 1}, path)
    assert "unconditional" in one_line_error(invoke("sample", "--ckpt", gp, "--disc", dp, "--label", 1,
                                                    "--device", "cpu", "--out", tmp_path / "x.npz"))
    # the two files in either order load the same
    model = load_any(dp, gp)
    assert model.latent_shape == (16,)
    assert "not a torch-mimicry SNGAN-32/WGAN-GP-32 generator" in one_line_error(
        invoke("inspect", "--ckpt", gp, "--disc", gp))
