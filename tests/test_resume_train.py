"""`ddls train` killed with SIGKILL, then `--resume`, ends with the uninterrupted run's weights bit for bit."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SUBPROCESS_ENV

ROOT = Path(__file__).resolve().parents[1]
ENV = SUBPROCESS_ENV


def train_args(out, *extra):
    return [sys.executable, "-m", "ddls", "train", "--data", "gmm25", "--steps", "1500", "--hidden", "16",
            "--depth", "2", "--batch-size", "32", "--checkpoint-every", "25", "--out", str(out), *extra]


def _step_of(path):
    try:
        return int(torch.load(path, weights_only=True)["step"])
    except Exception:
        return -1


def _assert_same(a, b):
    a, b = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for part in ("optim_g", "optim_d"):
        for pid, st in a[part]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, b[part]["state"][pid][k]), (part, pid, k)
    assert a["step"] == b["step"] and a["config"] == b["config"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_kill_then_resume_train_equals_uninterrupted(tmp_path, loss):
    ref, out = tmp_path / "ref.pt", tmp_path / "out.pt"
    r = subprocess.run(train_args(ref, "--loss", loss), env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    resume_file = Path(f"{out}.resume.pt")
    p = subprocess.Popen(train_args(out, "--loss", loss), env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _step_of(resume_file) < 100:
            assert p.poll() is None, "training finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    assert not out.exists()
    r = subprocess.run(train_args(out, "--loss", loss, "--lr", "2e-4", "--resume"), env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1 and "different run" in r.stderr.strip().splitlines()[-1]
    r = subprocess.run(train_args(out, "--loss", loss, "--resume"), env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr and not resume_file.exists()
    _assert_same(ref, out)
