"""A checkpoint from a stranger must never run code: pickle payloads are refused, unexecuted."""
import subprocess
import sys
import os
from pathlib import Path

import pytest
import torch

from conftest import SUBPROCESS_ENV, invoke, one_line_error

ROOT = Path(__file__).resolve().parents[1]


class Planted:
    """Unpickling this calls open(marker, 'w'): the file appears if the payload runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"format": "ddls", "generator": Planted(marker)}, path)
    return path, marker


@pytest.mark.parametrize("command", [["sample", "--steps", "1", "--n", "2"], ["calibrate", "--steps", "1"]])
def test_pickle_payload_is_refused_and_never_runs(evil, tmp_path, command):
    path, marker = evil
    out = tmp_path / "out.file"
    r = invoke(*command, "--ckpt", path, "--out", out)
    assert "refused" in one_line_error(r)
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not marker.exists(), "the checkpoint's payload ran"
    assert not out.exists()


def test_pickle_payload_refused_in_a_real_process(evil, tmp_path):
    """Same through `python -m ddls`: a fresh interpreter, nothing imported in advance."""
    path, marker = evil
    env = SUBPROCESS_ENV
    p = subprocess.run([sys.executable, "-m", "ddls", "sample", "--ckpt", str(path), "--steps", "1", "--n", "2",
                        "--out", str(tmp_path / "s.npz")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0], p.stderr
    assert not marker.exists()
