"""The claims of docs/results.md on the shipped 2-D checkpoints, re-run end to end."""
import json
from pathlib import Path

import pytest

from ddls.sampling.sweep import best_row
from conftest import invoke

ROOT = Path(__file__).resolve().parents[1]


def run_sweep(ckpt, tmp_path, *extra):
    r = invoke("sweep", "--ckpt", ROOT / "pretrained" / ckpt, "--out", tmp_path, "--json", *extra)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.slow
def test_ddls_improves_the_shipped_25_gaussian_model(tmp_path):
    # The README's first command, with its defaults: eps 1e-2..1e-5, 1000 steps, 5000 chains.
    rows = run_sweep("gmm25_wgangp.pt", tmp_path)
    generator, best = rows[0], best_row(rows, "emd")
    assert generator["eps"] is None and best["eps"] is not None
    assert best["modes"] >= generator["modes"]
    assert best["hq"] >= generator["hq"] + 10
    assert best["emd"] < generator["emd"]
