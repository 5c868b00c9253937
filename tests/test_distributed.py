"""`torchrun --nproc_per_node=2 -m ddls sample` (gloo, CPU) writes the single-process run's arrays exactly."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SUBPROCESS_ENV, invoke, one_line_error

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "pretrained" / "gmm25_wgangp.pt"
# 5 chunks over 2 ranks: rank 0 runs chunks 0, 2, 4 and rank 1 chunks 1, 3; the last chunk is short.
RUN = ["-n", "45", "--chunk-size", "10", "--steps", "6", "--eps", "0.01", "--mala", "--record-every", "3",
       "--seed", "11", "--device", "cpu"]


@pytest.mark.slow
def test_two_gloo_processes_write_the_single_process_arrays(tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    r = subprocess.run([sys.executable, "-m", "ddls", "sample", "--ckpt", str(CKPT), *RUN, "--out", str(one)],
                       capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "ddls", "sample", "--ckpt", str(CKPT), *RUN, "--out", str(two)],
                       capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "on 2 processes" in r.stderr
    with np.load(one, allow_pickle=False) as a, np.load(two, allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files) == ["acceptance", "meta", "record_steps", "trajectory", "x", "z"]
        for key in ("x", "z", "acceptance", "trajectory", "record_steps"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a["x"].shape == (45, 2) and a["trajectory"].shape == (3, 45, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npz", "two.npz"]  # no spool, no resume file left


def test_distributed_flag_outside_torchrun_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    r = invoke("sample", "--ckpt", CKPT, "-n", "4", "--steps", "1", "--distributed", "--out", tmp_path / "x.npz")
    assert one_line_error(r) == (
        "Error: a distributed run needs several processes; start it with torchrun: "
        "torchrun --nproc_per_node=K -m ddls sample ...")


def test_rank_chunks_cover_the_run_once():
    from ddls.sampling.distributed import Group, rank_chunks
    from ddls.sampling.driver import RunConfig

    config = RunConfig(n=45, steps=1, chunk_size=10)
    got = [list(rank_chunks(config, Group(r, 3, None, "gloo"))) for r in range(3)]
    assert got == [[0, 3], [1, 4], [2]]
