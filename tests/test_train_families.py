"""Every GAN family trains with the one trainer, moves its loss the way its definition says,
and leaves a checkpoint that samples with its own energy; image data and its errors."""
import gzip
import json
import math

import numpy as np
import pytest
import torch

from ddls._torch import make_generator
from ddls.io.checkpoint import load_model
from ddls.data.toy2d import get_dataset
from ddls.errors import DDLSError
from ddls.data.idx import read_idx
from ddls.data.images import get_image_data, load_fashion_mnist
from ddls.training.losses import LOSSES
from ddls.training.resume import load_train_progress, save_train_progress
from ddls.training.trainer import TrainConfig, save_trained, train
from conftest import invoke, one_line_error

FAMILIES = list(LOSSES)


def noise_images(n, gen, c=1, size=16):
    # a toy image distribution: a bright square on a dark background, randomly placed
    x = -torch.ones(n, c, size, size)
    pos = torch.randint(0, size - 4, (n, 2), generator=gen, device=gen.device).cpu()
    for i, (a, b) in enumerate(pos.tolist()):
        x[i, :, a:a + 4, b:b + 4] = 1.0
    return x


@pytest.mark.parametrize("loss", FAMILIES)
def test_discriminator_loss_falls_with_the_generator_frozen(loss):
    # lr_g tiny: only D learns, so its loss (whatever the family's definition) must go down
    ds = get_dataset("gmm25")
    cfg = TrainConfig(data="gmm25", loss=loss, steps=150, batch_size=64, hidden=32, depth=2, lr_g=1e-12,
                      lr_d=5e-3, log_every=1, seed=0, n_critic=1)
    h = train(cfg, ds.sample, 2).history["d_loss"]
    assert np.mean(h[-20:]) < h[0] - 0.05 * max(1.0, abs(h[0])), (loss, h[0], h[-20:])


@pytest.mark.parametrize("loss", FAMILIES)
def test_every_family_trains_on_images_and_samples_with_its_own_energy(loss, tmp_path):
    cfg = TrainConfig(data="toy", loss=loss, steps=2, batch_size=8, z_dim=8, arch="dcgan", width=4,
                      code_dim=8, pt_weight=0.1, seed=0, log_every=1)
    trained = train(cfg, noise_images, (1, 16, 16))
    assert all(math.isfinite(v) for v in trained.history["d_loss"] + trained.history["g_loss"])
    path = save_trained(tmp_path / "m.pt", trained, data="toy")
    model = load_model(path)
    assert model.energy_kind == LOSSES[loss].energy_kind
    energy = model.energy()
    z = torch.randn(5, 8, generator=make_generator(1))
    e = energy(z)
    assert e.shape == (5,) and torch.isfinite(e).all()
    assert energy.decode(z).shape == (5, 1, 16, 16)
    # E = -log N(z) - score(D(G(z))): check against the networks directly
    with torch.no_grad():
        out = model.discriminator.eval()(model.generator.eval()(z))
    from ddls.sampling.energy import SCORES

    expected = 0.5 * z.pow(2).sum(1) + 4 * math.log(2 * math.pi) - SCORES[model.energy_kind](out)
    torch.testing.assert_close(e.detach(), expected, rtol=1e-4, atol=1e-4)


def test_weight_clipping_holds_every_critic_weight_in_range():
    cfg = TrainConfig(data="gmm25", loss="wgan", steps=5, batch_size=16, hidden=16, depth=2, clip=0.02, lr_d=0.1)
    d = train(cfg, get_dataset("gmm25").sample, 2).discriminator
    assert max(p.abs().max().item() for p in d.parameters()) <= 0.02 + 1e-7
    assert any(p.abs().max().item() > 0.019 for p in d.parameters())  # clipping is active, not trivial


def test_sngan_discriminator_layers_have_unit_spectral_norm():
    cfg = TrainConfig(data="toy", loss="sngan", steps=30, batch_size=8, z_dim=8, arch="dcgan", width=4)
    d = train(cfg, noise_images, (1, 16, 16)).discriminator.eval()
    convs = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs
    for m in convs:
        w = m.weight.detach().flatten(1)  # the normalised weight in eval mode
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_began_keeps_k_in_range_and_records_its_convergence_measure(tmp_path):
    cfg = TrainConfig(data="toy", loss="began", steps=12, batch_size=8, z_dim=8, arch="dcgan", width=4,
                      lambda_k=0.5, log_every=1)
    h = train(cfg, noise_images, (1, 16, 16)).history
    assert len(h["k"]) == len(h["m_global"]) == 12
    assert all(0.0 <= k <= 1.0 for k in h["k"]) and max(h["k"]) > 0
    assert all(m > 0 for m in h["m_global"])


def test_began_moves_k_by_began_k_update_once_per_critic_step(monkeypatch):
    import ddls.training.losses as losses

    calls = []

    def k_update(k, real_loss, fake_loss, gamma, lambda_k):
        calls.append((gamma, lambda_k))
        return k + 0.125  # a known path: k after step t is 0.125 * n_critic * t

    monkeypatch.setattr(losses, "began_k_update", k_update)
    cfg = TrainConfig(data="toy", loss="began", steps=3, batch_size=8, z_dim=8, arch="dcgan", width=4, n_critic=2,
                      gamma=0.4, lambda_k=0.2, log_every=1)
    h = train(cfg, noise_images, (1, 16, 16)).history
    assert h["k"] == [0.25, 0.5, 0.75]
    assert calls == [(0.4, 0.2)] * 6


def test_ebgan_pulling_away_term_is_part_of_its_generator_loss():
    """With D's codes all parallel the term is 1 (see test_losses): the G loss rises by pt_weight exactly."""
    from ddls.training.losses import LossParams

    class ParallelCodes(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1).pow(2).mean(1)

        def forward_with_code(self, x):
            return self(x), torch.ones(len(x), 3)

    fake = torch.randn(4, 1, 2, 2, generator=make_generator(0))
    family = LOSSES["ebgan"]
    plain = family.generator_loss(ParallelCodes(), fake, LossParams(TrainConfig(data="toy", loss="ebgan")))
    pulled = family.generator_loss(ParallelCodes(), fake,
                                   LossParams(TrainConfig(data="toy", loss="ebgan", pt_weight=0.3)))
    torch.testing.assert_close(plain, fake.flatten(1).pow(2).mean())
    torch.testing.assert_close(pulled, plain + 0.3)


@pytest.mark.parametrize("loss", ["began", "ebgan", "sngan"])
def test_resume_through_a_resume_file_matches_the_uninterrupted_run(loss, tmp_path):
    cfg = TrainConfig(data="toy", loss=loss, steps=6, batch_size=8, z_dim=8, arch="dcgan", width=4, pt_weight=0.1,
                      lambda_k=0.3, log_every=1)
    full = train(cfg, noise_images, (1, 16, 16))
    saved = tmp_path / "r.pt"
    identity = {"config": json.loads(cfg.to_json())}

    def save(p):
        if p.step == 3:
            save_train_progress(saved, identity, p)

    train(cfg, noise_images, (1, 16, 16), save=save, save_every=1)
    resumed = train(cfg, noise_images, (1, 16, 16), start=load_train_progress(saved, identity))
    for a, b in ((full.generator, resumed.generator), (full.discriminator, resumed.discriminator)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(va, vb), k
    assert full.history == resumed.history


def test_read_idx_round_trip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)
    (tmp_path / "b").write_bytes(raw[:-1])
    with pytest.raises(DDLSError, match="header promises 24"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DDLSError, match="not an IDX file"):
        read_idx(tmp_path / "c")


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLS_FASHION_MNIST_DIR", str(tmp_path))
    line = one_line_error(invoke("train", "--data", "fashion-mnist", "--steps", 1, "--out", tmp_path / "run"))
    assert line.startswith(f"Error: Fashion-MNIST file {tmp_path}/") and "apt-get install dataset-fashion-mnist" in line


@pytest.mark.skipif(not (load_fashion_mnist.__module__ and __import__("os").path.exists(
    "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_is_read_from_the_debian_package():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and sorted(set(y.tolist())) == list(range(10))
    data = get_image_data("fashion-mnist", split="test", size=32)
    batch = data.sample(4, make_generator(0))
    assert batch.shape == (4, 1, 32, 32) and batch.min() >= -1 and batch.max() <= 1
    assert (batch[:, :, :2] == -1).all()  # padded with black


def _png_folder(folder, n=6, size=16):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_train_on_a_folder_writes_outputs_and_samples_without_flags(tmp_path):
    pngs = _png_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    r = invoke("train", "--data", f"folder:{pngs}", "--loss", "ebgan", "--steps", 4, "--width", 4, "--z-dim", 8,
               "--batch-size", 4, "--sample-every", 2, "--out", run)
    assert r.exit_code == 0, r.output
    for name in ("model.pt", "config.json", "history.csv", "losses.png", "samples/step_000002.png",
                 "samples/step_000004.png"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["loss"] == "ebgan"
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", run / "model.pt", "--steps", 2, "--n", 3, "--eps", 1e-3, "--device", "cpu",
               "--out", out, "--grid", tmp_path / "g.png")
    assert r.exit_code == 0, r.output
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (2 * 18 + 2, 2 * 18 + 2)  # 3 samples: 2x2 tiles of 16 + 2 px
    with np.load(out) as f:
        assert f["x"].shape == (3, 3, 16, 16)
        assert json.loads(str(f["meta"]))["energy"] == "ae"


def test_train_errors_are_one_line(tmp_path):
    line = one_line_error(invoke("train", "--data", "gmm25", "--loss", "lsgan2", "--steps", 1, "--out", tmp_path / "a.pt"))
    assert line.startswith("Error: unknown loss 'lsgan2'; choose one of gan, ns, lsgan,")
    (tmp_path / "empty").mkdir()
    assert one_line_error(invoke("train", "--data", f"folder:{tmp_path / 'empty'}", "--steps", 1, "--out",
                                 tmp_path / "b")).startswith("Error: no images")
    assert "use the dcgan or resnet architecture" in one_line_error(invoke(
        "train", "--data", f"folder:{_png_folder(tmp_path / 'imgs')}", "--arch", "mlp", "--steps", 1,
        "--out", tmp_path / "c"))


def test_resume_with_another_family_or_config_is_refused(tmp_path):
    pngs = _png_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    args = ["train", "--data", f"folder:{pngs}", "--steps", 4, "--width", 4, "--z-dim", 8, "--batch-size", 4,
            "--out", run]
    cfg = TrainConfig(data=f"folder:{pngs}", loss="ebgan", steps=4, batch_size=4, z_dim=8, arch="dcgan", width=4,
                      lr_g=2e-4, lr_d=2e-4)
    # an interrupted EBGAN run's progress file, as `ddls train` leaves it
    save_train_progress(run / "model.pt.resume.pt", {"config": json.loads(cfg.to_json()), "device": "cpu"},
                        _progress_of(cfg, pngs))
    line = one_line_error(invoke(*args, "--loss", "sngan", "--resume"))
    assert "belongs to a different run" in line and "config.loss='ebgan' (now 'sngan')" in line
    line = one_line_error(invoke(*args, "--loss", "ebgan", "--lr", "1e-3", "--resume"))
    assert "config.lr_d=0.0002 (now 0.001)" in line


def test_resume_may_extend_a_run_but_not_cut_it_short(tmp_path):
    """The step count only says where a run ends: 6 steps resumed to 9 equal 9 uninterrupted steps."""
    from dataclasses import replace

    cfg6 = TrainConfig(data="toy", loss="ns", steps=6, batch_size=8, z_dim=8, arch="dcgan", width=4, log_every=1)
    cfg9 = replace(cfg6, steps=9)
    saved = tmp_path / "r.pt"

    def save(p):
        if p.step == 4:
            save_train_progress(saved, {"config": json.loads(cfg6.to_json())}, p)

    train(cfg6, noise_images, (1, 16, 16), save=save, save_every=1)
    resumed = train(cfg9, noise_images, (1, 16, 16),
                    start=load_train_progress(saved, {"config": json.loads(cfg9.to_json())}))
    full = train(cfg9, noise_images, (1, 16, 16))
    for a, b in ((full.generator, resumed.generator), (full.discriminator, resumed.discriminator)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(va, vb), k

    pngs = _png_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    cfg = TrainConfig(data=f"folder:{pngs}", loss="ebgan", steps=4, batch_size=4, z_dim=8, arch="dcgan", width=4,
                      lr_g=2e-4, lr_d=2e-4)
    save_train_progress(run / "model.pt.resume.pt", {"config": json.loads(cfg.to_json()), "device": "cpu"},
                        _progress_of(cfg, pngs))  # at step 2
    line = one_line_error(invoke("train", "--data", f"folder:{pngs}", "--steps", 1, "--width", 4, "--z-dim", 8,
                            "--batch-size", 4, "--loss", "ebgan", "--out", run, "--resume"))
    assert "is at step 2, past the 1 steps asked for" in line


def _progress_of(cfg, pngs):
    data = get_image_data(cfg.data)
    got = []
    train(cfg, data.sample, data.shape, save=got.append, save_every=2)
    return got[0]


def test_cifar10_is_read_through_torchvision_in_its_real_layout(tmp_path, monkeypatch):
    # CIFAR-10 cannot be downloaded here: write its python-pickle batches with made-up pixels and skip
    # only torchvision's md5 check, which real files pass
    import pickle

    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar" / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        batches[name] = data
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": [1, 2, 3, 4]}, fh)
    with open(folder / CIFAR10.meta["filename"], "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    from ddls.data.images import load_cifar10

    x, y = load_cifar10("train", root=tmp_path / "cifar")
    assert x.shape == (20, 32, 32, 3) and y.tolist() == [1, 2, 3, 4] * 5
    np.testing.assert_array_equal(x[0], batches["data_batch_1"][0].reshape(3, 32, 32).transpose(1, 2, 0))
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: False)
    monkeypatch.setattr(CIFAR10, "download", lambda self: (_ for _ in ()).throw(OSError("no network")))
    with pytest.raises(DDLSError, match="CIFAR-10 could not be loaded into .*download it on a machine with internet"):
        load_cifar10("train", root=tmp_path / "nowhere")


def test_resnet_sngan_trains_on_grayscale_32x32_and_refuses_other_sizes(tmp_path):
    cfg = TrainConfig(data="toy", loss="sngan", steps=1, batch_size=4, z_dim=8, arch="resnet", width=4)
    trained = train(cfg, lambda n, g: noise_images(n, g, size=32), (1, 32, 32))
    model = load_model(save_trained(tmp_path / "r.pt", trained, data="toy"))
    assert model.energy_kind == "wgan"
    assert model.energy().decode(torch.zeros(2, 8)).shape == (2, 1, 32, 32)
    with pytest.raises(DDLSError, match="set the image size to 32"):
        cfg.model_specs((1, 28, 28))
