"""A post-hoc method registered from outside ddls (here, in the test) is everywhere at once:
`ddls.posthoc.run`, `default_config`, METHODS, `ddls sample --method` with its own option, and
`ddls compare --methods`, without touching the CLI."""
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
import pytest
import torch

from conftest import invoke, one_line_error
from ddls import posthoc
from ddls._torch import seeded_chunks
from ddls.errors import DDLSError
from ddls.posthoc.target import PosthocResult

CKPT = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"


@dataclass(frozen=True)
class ShiftConfig:
    by: float = 0.25
    chunk_size: int = 5000

    def to_dict(self):
        return asdict(self)


def shifted(target, n, config, *, seed=0):
    """The generator's own prior latents (same streams), each coordinate moved by `config.by`."""
    zs = [target.prior_sample(c.size, c.generator) + config.by
          for c in seeded_chunks(n, config.chunk_size, seed, target.device)]
    z = torch.cat(zs)
    with torch.no_grad():
        return PosthocResult(target.decode(z).cpu(), z.cpu(), n, {})


@pytest.fixture
def shift_method():
    posthoc.register("shift", ShiftConfig, "prior latents moved by a constant", shared={"chunk_size": "chunk_size"},
                     settings=[posthoc.Setting("--shift-by", "by", click.FloatRange(min=0), "Shift: how far.")])(shifted)
    yield "shift"
    posthoc.unregister("shift")


def test_a_registered_method_runs_through_the_library(shift_method):
    assert "shift" in posthoc.METHODS
    assert posthoc.default_config("shift", shift_by=0.5, chunk_size=7, drs_pilot=3) == ShiftConfig(0.5, 7)
    assert posthoc.default_config("shift") == ShiftConfig()
    with pytest.raises(TypeError, match="shift_byy"):
        posthoc.default_config("shift", shift_byy=0.5)
    with pytest.raises(DDLSError, match="already registered"):
        posthoc.register("shift", ShiftConfig, "again")(shifted)


def test_a_registered_method_is_a_choice_of_sample_and_compare(shift_method, tmp_path):
    help_text = " ".join(invoke("sample", "--help").output.split()).replace("- ", "-")  # unwrapped, unhyphenated
    assert "|shift]" in help_text and "--shift-by FLOAT RANGE Shift: how far. [default: 0.25" in help_text
    assert "shift: prior latents moved by a constant (--shift-by)" in help_text
    assert "shift: prior latents moved by a constant" in " ".join(invoke("compare", "--help").output.split())
    base, moved = tmp_path / "g.npz", tmp_path / "s.npz"
    assert invoke("sample", "--ckpt", CKPT, "--steps", 0, "--n", 30, "--chunk-size", 16, "--out", base).exit_code == 0
    r = invoke("sample", "--ckpt", CKPT, "--method", "shift", "--shift-by", 0.5, "--n", 30, "--chunk-size", 16,
               "--out", moved)
    assert r.exit_code == 0, r.output
    with np.load(base) as a, np.load(moved) as b:
        # the same prior latents as the generator alone, moved by 0.5
        np.testing.assert_allclose(b["z"], a["z"] + 0.5, rtol=0, atol=1e-6)
        assert '"by": 0.5' in str(b["meta"])
    r = invoke("compare", "--ckpt", CKPT, "--methods", "shift,drs", "--n", 30, "--drs-pilot", 20, "--json",
               "--out", tmp_path / "cmp")
    assert r.exit_code == 0, r.output
    assert '"method": "shift"' in r.output and '"method": "drs"' in r.output


def test_tune_refuses_a_registered_method_it_has_no_candidates_for_in_one_line(shift_method, tmp_path):
    r = invoke("tune", "--ckpt", CKPT, "--methods", "ddls,shift", "--budget", "1e4evals", "--out", tmp_path / "t.pt")
    assert "tune has no candidates for method 'shift'" in one_line_error(r)
    assert not (tmp_path / "t.pt").exists()


def test_an_unregistered_method_is_gone(tmp_path):
    posthoc.register("shift", ShiftConfig, "prior latents moved by a constant")(shifted)
    posthoc.unregister("shift")
    assert "shift" not in posthoc.METHODS
    r = invoke("sample", "--ckpt", CKPT, "--method", "shift", "--out", tmp_path / "x.npz")
    assert r.exit_code == 2 and "'shift' is not one of ddls, mala" in r.output
    assert "unknown method(s) shift" in one_line_error(invoke("compare", "--ckpt", CKPT, "--methods", "shift"))


def test_the_package_exports_the_chain_runner_and_the_posthoc_entry():
    import ddls
    from ddls.sampling.driver import run_chain

    assert {"posthoc", "run_chain"} <= set(ddls.__all__)
    assert all(isinstance(name, str) and hasattr(ddls, name) for name in ddls.__all__)
    assert ddls.posthoc.run is posthoc.run and ddls.run_chain is run_chain


def test_a_setting_must_name_a_config_field_with_a_default():
    with pytest.raises(DDLSError, match="--shift-far name no field of ShiftConfig"):
        posthoc.register("far", ShiftConfig, "x", settings=[posthoc.Setting("--shift-far", "far")])(shifted)
    with pytest.raises(DDLSError, match="--drs-pilot are already taken"):
        posthoc.register("far", ShiftConfig, "x", settings=[posthoc.Setting("--drs-pilot", "by")])(shifted)
    assert "far" not in posthoc.METHODS
