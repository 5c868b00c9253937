"""A checkpoint from a stranger must never run code: pickle payloads are refused, unexecuted."""
import subprocess
import sys
import os
from pathlib import Path

import pytest
import torch

from conftest import SUBPROCESS_ENV, invoke, one_line_error

ROOT = Path(__file__).resolve().parents[1]
# no DDLS_* settings in the child: a warning about one would be a second line
CLEAN_ENV = {k: v for k, v in SUBPROCESS_ENV.items() if not k.startswith("DDLS_")}


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
    env = CLEAN_ENV
    p = subprocess.run([sys.executable, "-m", "ddls", "sample", "--ckpt", str(path), "--steps", "1", "--n", "2",
                        "--out", str(tmp_path / "s.npz")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0], p.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_a_factory_naming_a_program_is_one_line_in_a_real_process(tmp_path):
    """A `ddls.save` file whose factory is numpy.f2py.__main__ (importing it runs f2py, which exits 0):
    exit code 1 and one line, never a silent success, with or without --trust-factory."""
    import ddls

    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from own_gan_factory import make_gan
    finally:
        sys.path.remove(str(ROOT / "tests"))
    ddls.save(ddls.wrap(*make_gan(hidden=4)), tmp_path / "valid.pt")
    payload = torch.load(tmp_path / "valid.pt", weights_only=True)
    torch.save({**payload, "factory": "numpy.f2py.__main__:main"}, tmp_path / "f2py.pt")
    env = CLEAN_ENV
    p = subprocess.run([sys.executable, "-m", "ddls", "inspect", "--ckpt", str(tmp_path / "f2py.pt"),
                        "--trust-factory"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert p.returncode == 1 and not p.stdout, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "never imports" in lines[0], p.stderr
