"""`ddls train`'s speed switches (ddls/training/fastpath.py): autocast, channels_last, compile.

On the CPU: bf16 autocast and channels_last train tiny models a few steps against the plain path;
fp16 is refused; a compiler that cannot work is one line. DDLS_TEST_DEVICE=cuda adds fp16 and a
real compile on the GPU.
"""
import json
import math
from dataclasses import replace

import pytest
import torch

import ddls.training.fastpath as fastpath
import ddls.training.trainer as trainer
from ddls._torch import make_generator
from ddls.data.toy2d import get_dataset
from ddls.training.resume import load_train_progress, save_train_progress
from ddls.training.trainer import TrainConfig, build_models, train
from conftest import DEVICE, invoke, one_line_error

GPU = pytest.mark.skipif(DEVICE.type != "cuda", reason="GPU-only: run with DDLS_TEST_DEVICE=cuda")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def images(n, gen, c=1, size=8):
    return torch.rand(n, c, size, size, generator=gen, device=gen.device) * 2 - 1


def mlp(**kw):
    base = dict(data="gmm25", loss="ns", steps=3, batch_size=16, hidden=16, depth=2, seed=0, log_every=1)
    return TrainConfig(**{**base, **kw})


def dcgan(**kw):
    base = dict(data="toy", loss="ns", steps=3, batch_size=8, z_dim=8, arch="dcgan", width=4, seed=0, log_every=1)
    return TrainConfig(**{**base, **kw})


def run(cfg, device=DEVICE, **kw):
    if cfg.arch == "mlp":
        return train(cfg, get_dataset(cfg.data).sample, 2, device=device, **kw)
    return train(cfg, images, (1, 8, 8), device=device, **kw)


def weights(trained):
    return {f"{net}.{k}": v for net in ("generator", "discriminator")
            for k, v in getattr(trained, net).state_dict().items() if v.is_floating_point()}


# --- autocast ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [mlp(), dcgan(loss="sngan")], ids=["mlp", "dcgan"])
def test_bf16_autocast_trains_near_fp32_and_keeps_float32_state(cfg):
    plain, bf16 = run(cfg), run(replace(cfg, autocast="bf16"))
    a, b = weights(plain), weights(bf16)
    assert all(torch.isfinite(v).all() for v in b.values())
    assert any(not torch.equal(a[k], b[k]) for k in a)  # bf16 really ran
    for key in ("d_loss", "g_loss"):  # step 1: the same weights, so only rounding tells them apart
        assert bf16.history[key][0] == pytest.approx(plain.history[key][0], rel=2e-2, abs=2e-2), key
    assert all(v.dtype == torch.float32 for v in b.values())
    for opt in (bf16.opt_g, bf16.opt_d):
        assert all(t.dtype == torch.float32 for s in opt.state.values() for t in s.values() if t.is_floating_point())


def test_gradient_penalty_runs_in_float32_under_autocast(monkeypatch):
    """WGAN-GP's penalty under bf16 is the float32 penalty of D at the same interpolates."""
    cfg = mlp(loss="wgan-gp", n_critic=2, autocast="bf16")
    g, d, _, _ = build_models(cfg, 2)
    real_penalty, seen = trainer.gradient_penalty, []

    def spy(discriminator, real, fake, generator):
        state = generator.get_state()
        got = real_penalty(discriminator, real, fake, generator)
        again = make_generator(0)
        again.set_state(state)
        with torch.autocast("cpu", enabled=False):
            expected = real_penalty(d, real.float(), fake.float(), again)
        seen.append((got, expected))
        return got

    monkeypatch.setattr(trainer, "gradient_penalty", spy)
    train(cfg, get_dataset("gmm25").sample, 2, networks=(g, d))
    assert len(seen) == cfg.steps * cfg.critic_steps
    for got, expected in seen:
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_fp16_grad_scaler_state_survives_a_resume(tmp_path, monkeypatch):
    """fp16's GradScalers (CUDA-only in use; here on the CPU with the device check lifted) are saved with the
    progress and restored by a resume, which then ends with the uninterrupted run's weights."""
    monkeypatch.setattr(fastpath, "check_device", lambda fast, device: None)
    cfg = dcgan(steps=5, autocast="fp16")
    identity = {"config": json.loads(cfg.to_json())}
    saved, scalers = tmp_path / "r.pt", {}

    def save(p):  # written at once: the progress holds the live weights
        scalers[p.step] = p.scalers
        if p.step == 2:
            save_train_progress(saved, identity, p)

    whole = run(cfg, device="cpu", save=save, save_every=1)
    assert scalers[4]["d"]["_growth_tracker"] == 4 and scalers[4]["d"]["scale"] > 0
    expected, scalers = scalers[4], {}
    resumed = run(cfg, device="cpu", start=load_train_progress(saved, identity), save=save, save_every=1)
    assert sorted(scalers) == [3, 4] and scalers[4] == expected
    ours = weights(resumed)
    for k, v in weights(whole).items():
        assert torch.equal(v, ours[k]), k


# --- channels_last ----------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_channels_last_follows_the_plain_path_and_hands_back_the_default_layout(loss):
    cfg = dcgan(loss=loss, n_critic=1)
    layouts = []

    def snapshot(step, generator):  # the networks as they train
        layouts.extend(p.is_contiguous(memory_format=torch.channels_last) for p in generator.parameters()
                       if p.dim() == 4)

    plain = run(cfg, device="cpu")  # the CPU: on CUDA, cuDNN's TF32 convolutions round more than this allows
    fast = run(replace(cfg, channels_last=True), device="cpu", snapshot=snapshot, snapshot_every=1)
    assert layouts and all(layouts)
    a, b = weights(plain), weights(fast)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=2e-5, msg=k)
        assert b[k].is_contiguous(), k
    for key in ("d_loss", "g_loss"):
        torch.testing.assert_close(torch.tensor(fast.history[key]), torch.tensor(plain.history[key]),
                                   rtol=1e-5, atol=1e-6)


def test_channels_last_on_vectors_is_refused_in_one_line(tmp_path):
    line = one_line_error(invoke("train", "--data", "gmm25", "--steps", 1, "--channels-last", "--device", "cpu",
                                 "--out", tmp_path / "run"))
    assert line == "Error: channels_last is a layout of images; gmm25 holds vectors, train without it"
    assert not (tmp_path / "run").exists()


# --- fp16 and compile on the CPU ---------------------------------------------------------------

def test_fp16_autocast_is_refused_on_the_cpu_in_one_line(tmp_path):
    line = one_line_error(invoke("train", "--data", "gmm25", "--steps", 1, "--autocast", "fp16", "--device", "cpu",
                                 "--out", tmp_path / "run"))
    assert line == "Error: fp16 autocast needs a CUDA device; use bf16 autocast on the CPU"
    assert not (tmp_path / "run").exists()
    with pytest.raises(Exception, match="autocast must be one of bf16, fp16"):
        mlp(autocast="fp8")


def test_compile_wraps_both_forward_passes(monkeypatch):
    compiled = []

    def fake_compile(fn):
        compiled.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    cfg = mlp()
    plain, fast = run(cfg, device="cpu"), run(replace(cfg, compile=True), device="cpu")
    assert len(compiled) == 2  # G's forward and D's
    for k, v in weights(plain).items():
        assert torch.equal(v, weights(fast)[k]), k


def test_a_compiler_that_cannot_work_is_one_line(tmp_path, monkeypatch):
    from torch._dynamo.exc import TorchDynamoException

    def broken(*args):
        raise TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found\n\nSet TORCHDYNAMO_VERBOSE=1")

    monkeypatch.setattr(torch, "compile", lambda fn: broken)
    line = one_line_error(invoke("train", "--data", "gmm25", "--steps", 2, "--hidden", 8, "--depth", 1,
                                 "--batch-size", 8, "--compile", "--device", "cpu", "--out", tmp_path / "t.pt"))
    assert line == ("Error: torch.compile does not work here (InvalidCxxCompiler: No working C++ compiler found); "
                    "train without compile")


@pytest.mark.slow
def test_compiled_training_follows_the_plain_path_on_the_cpu():
    pytest.importorskip("torch._dynamo")
    cfg = mlp()
    plain, fast = run(cfg, device="cpu"), run(replace(cfg, compile=True), device="cpu")
    for k, v in weights(plain).items():
        torch.testing.assert_close(weights(fast)[k], v, rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.slow
def test_a_missing_c_compiler_is_one_line(tmp_path):
    """A real compiler failure (CXX names no compiler, nothing cached), through `python -m ddls`."""
    import subprocess
    import sys

    from conftest import SUBPROCESS_ENV

    env = {**SUBPROCESS_ENV, "CXX": str(tmp_path / "no-such-c++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    args = ["train", "--data", "gmm25", "--steps", 2, "--hidden", 8, "--depth", 1, "--batch-size", 8, "--compile",
            "--device", "cpu", "--out", tmp_path / "t.pt"]
    r = subprocess.run([sys.executable, "-m", "ddls", *map(str, args)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: torch.compile does not work here (") and "compiler" in last, last
    assert not (tmp_path / "t.pt").exists()


# --- the checkpoint and resume ----------------------------------------------------------------------

def test_switches_are_recorded_and_a_resume_with_other_switches_is_refused(tmp_path, no_train_metrics):
    args = ["train", "--data", "gmm25", "--steps", 4, "--hidden", 8, "--depth", 1, "--batch-size", 8,
            "--device", "cpu", "--checkpoint-every", 2]
    out = tmp_path / "t.pt"
    r = invoke(*args, "--autocast", "bf16", "--out", out)
    assert r.exit_code == 0, r.output
    config = json.loads(torch.load(out, weights_only=True)["config"])
    assert config["autocast"] == "bf16" and "channels_last" not in config and "compile" not in config
    assert "autocast" not in mlp().to_json()  # off: a plain run's config reads as before the switches existed

    # an interrupted bf16 run, as `ddls train` leaves it
    cfg = TrainConfig(data="gmm25", steps=4, batch_size=8, hidden=8, depth=1, lr_g=1e-4, lr_d=1e-4, z_dim=2,
                      autocast="bf16")
    resume_file = tmp_path / "u.pt.resume.pt"
    identity = {"config": json.loads(cfg.to_json()), "device": "cpu"}
    train(cfg, get_dataset("gmm25").sample, 2, save=lambda p: save_train_progress(resume_file, identity, p),
          save_every=2)  # at step 2
    line = one_line_error(invoke(*args, "--out", tmp_path / "u.pt", "--resume"))
    assert "belongs to a different run" in line and "config.autocast='bf16' (now None)" in line
    r = invoke(*args, "--autocast", "bf16", "--out", tmp_path / "u.pt", "--resume")
    assert r.exit_code == 0, r.output
    assert "resuming from" in r.output and not resume_file.exists()
    for k, v in torch.load(out, weights_only=True)["generator"].items():  # the same run, interrupted or not
        assert torch.equal(v, torch.load(tmp_path / "u.pt", weights_only=True)["generator"][k]), k


# --- on a GPU ------------------------------------------------------------------------------------------

@GPU
@pytest.mark.parametrize("autocast", ["fp16", "bf16"])
def test_reduced_precision_trains_near_fp32_on_the_gpu(autocast):
    cfg = dcgan(loss="wgan-gp", steps=5)
    plain, fast = run(cfg), run(replace(cfg, autocast=autocast, channels_last=True))
    assert all(torch.isfinite(v).all() for v in weights(fast).values())
    for key in ("d_loss", "g_loss"):
        assert math.isclose(fast.history[key][0], plain.history[key][0], rel_tol=2e-2, abs_tol=2e-2), key


@GPU
def test_compiled_training_follows_the_plain_path_on_the_gpu():
    cfg = dcgan(steps=3)
    plain, fast = run(cfg), run(replace(cfg, compile=True))
    for key in ("d_loss", "g_loss"):  # step 1: the same weights; TF32 and other kernels round differently
        assert math.isclose(fast.history[key][0], plain.history[key][0], rel_tol=1e-3, abs_tol=1e-4), key
    ours = weights(fast)
    for k, v in weights(plain).items():  # Adam moves a weight by up to lr per step, whatever the rounding
        torch.testing.assert_close(ours[k], v, rtol=1e-3, atol=2 * cfg.lr_g * cfg.steps, msg=k)
