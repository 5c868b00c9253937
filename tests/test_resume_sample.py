"""`ddls sample` killed with SIGKILL, then `--resume`, gives the uninterrupted run's file bit for bit."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DEVICE, SUBPROCESS_ENV, invoke

pytestmark = pytest.mark.usefixtures("no_train_metrics")  # train only to get checkpoints

ROOT = Path(__file__).resolve().parents[1]
ENV = SUBPROCESS_ENV
RUN = ["--steps", "1500", "--n", "200", "--chunk-size", "100", "--record-every", "100", "--eps", "0.01",
       "--checkpoint-every", "20", "--seed", "3"]


def ddls(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ddls", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300, **kw)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    r = invoke("train", "--data", "gmm25", "--steps", "20", "--hidden", "16", "--depth", "2", "--batch-size", "32",
               "--out", path)
    assert r.exit_code == 0, r.output
    return path


def _chunk_of(resume_file: Path) -> int:
    try:
        return int(torch.load(resume_file, weights_only=True)["chunk"])
    except Exception:  # not there yet
        return -1


def kill_when(args, resume_file: Path, chunk: int) -> None:
    """Start `ddls sample`, SIGKILL it once its resume file reaches `chunk`."""
    p = subprocess.Popen([sys.executable, "-m", "ddls", *map(str, args)], env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _chunk_of(resume_file) < chunk:
            assert p.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()


@pytest.mark.slow
@pytest.mark.parametrize("mala", [False, True], ids=["ula", "mala"])
@pytest.mark.parametrize("kill_chunk", [0, 1], ids=["kill-in-chunk-0", "kill-in-chunk-1"])
def test_kill_then_resume_equals_uninterrupted(ckpt, tmp_path, mala, kill_chunk):
    flags = [*RUN, *(["--mala"] if mala else [])]
    ref, out = tmp_path / "ref.npz", tmp_path / "out.npz"
    r = ddls("sample", "--ckpt", ckpt, *flags, "--out", ref)
    assert r.returncode == 0, r.stderr
    resume_file = tmp_path / "out.npz.resume.pt"
    kill_when(["sample", "--ckpt", ckpt, *flags, "--out", out], resume_file, kill_chunk)
    assert not out.exists(), "killed run left an output"
    assert resume_file.exists()

    again = ddls("sample", "--ckpt", ckpt, *flags, "--out", out)  # without --resume: refused, nothing lost
    assert again.returncode == 1 and "--resume" in again.stderr.strip().splitlines()[-1]
    assert resume_file.exists()

    r = ddls("sample", "--ckpt", ckpt, *flags, "--out", out, "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr
    assert not resume_file.exists()
    with np.load(ref) as a, np.load(out) as b:
        keys = ["x", "z", "trajectory", "record_steps"] + (["acceptance"] if mala else [])
        assert set(keys) <= set(a.files) and set(a.files) == set(b.files)
        for k in keys:
            assert np.array_equal(a[k], b[k]), k


def test_resume_refuses_a_changed_config(ckpt, tmp_path):
    out = tmp_path / "out.npz"
    resume_file = tmp_path / "out.npz.resume.pt"
    kill_when(["sample", "--ckpt", ckpt, *RUN, "--out", out], resume_file, 0)
    r = ddls("sample", "--ckpt", ckpt, *RUN, "--seed", "4", "--out", out, "--resume")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "different run" in lines[-1] and "seed=3" in lines[-1]
    assert resume_file.exists() and not out.exists()


def test_in_process_resume_api_matches(ckpt):
    """The library path: save every 7 steps, resume from each saved point, same result."""
    from ddls.io.checkpoint import load_model
    from ddls.sampling.driver import RunConfig, sample

    energy = load_model(ckpt, DEVICE).energy()
    config = RunConfig(n=30, steps=40, eps=0.01, method="mala", chunk_size=16, record_every=10, seed=1)
    saved = []
    full = sample(energy, config, save=lambda p: saved.append(_snapshot(p)), save_every=7)
    assert len(saved) > 5
    for p in saved:
        res = sample(energy, config, resume=p)
        for a, b in [(full.samples, res.samples), (full.latents, res.latents), (full.acceptance, res.acceptance),
                     (full.trajectory, res.trajectory)]:
            assert torch.equal(a, b)


def _snapshot(p):
    import copy

    return copy.deepcopy(p)
