"""What a new user's install must do whatever click, torch and numpy pip resolves: every method samples
through `ddls sample` and `ddls compare` with only the required options, every shipped tuned file samples
without flags, and "was this option given" does not depend on how click stores an option's default."""
import json
from pathlib import Path

import click
import numpy as np
import pytest

from conftest import invoke
from ddls.cli.common import refuse_unused, was_given
from ddls.errors import DDLSError
from ddls.posthoc.registry import names

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
CKPT = PRETRAINED / "gmm25_wgangp.pt"


def _tuned_files() -> list[Path]:
    from ddls.tuning.recipe import read_recipe

    return [p for p in sorted(PRETRAINED.glob("*.pt")) if read_recipe(p) is not None]


@pytest.mark.parametrize("method", names())
def test_every_method_samples_with_only_the_required_options(method, tmp_path):
    # --n only keeps it fast: it is no method option, so it cannot trip the unused-option check
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", CKPT, "--method", method, "--n", 64, "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        x, meta = f["x"], json.loads(str(f["meta"]))
    assert x.shape == (64, 2) and np.isfinite(x).all()
    # chains record their kernel under "run" (ddls: ula, mala: mala); the other methods name themselves
    kernel = {"ula": "ddls", "mala": "mala"}
    assert (meta["method"] if "method" in meta else kernel[meta["run"]["method"]]) == method


def test_compare_runs_every_method_with_only_the_required_options(tmp_path):
    r = invoke("compare", "--ckpt", CKPT, "--methods", ",".join(names()), "--n", 64, "--json",
               "--out", tmp_path / "cmp")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert {row["method"] for row in rows} == {"generator", *names()}
    assert all(np.isfinite(row["emd"]) for row in rows)


def test_the_project_ships_a_tuned_file():
    assert _tuned_files(), "no shipped TUNED file found: the next test would check nothing"


@pytest.mark.parametrize("path", _tuned_files(), ids=lambda p: p.name)
def test_every_shipped_tuned_file_samples_without_flags(path, tmp_path):
    from ddls.tuning.recipe import read_recipe

    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", path, "--n", 6, "--device", "cpu", "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["method"] == read_recipe(path).method


class _Sentinel:
    """What click >= 8.3 keeps as a flag's `Option.default`: neither False nor None."""

    def __repr__(self):
        return "Sentinel.UNSET"


@pytest.mark.parametrize("flag_default", ["value", "sentinel"])
@pytest.mark.parametrize("argv, refused", [([], False), (["--mala"], True), (["--steps", "3"], True),
                                           (["--steps", "10"], False), (["--kind", "a"], False),
                                           (["--kind", "b"], True)])
def test_option_given_is_the_same_whichever_way_click_stores_defaults(flag_default, argv, refused, monkeypatch):
    # typed at its default (`--steps 10`) an option counts as given (it overrides a tuned recipe) but changes
    # nothing, so it is not refused as unused
    seen = {}

    @click.command()
    @click.option("--mala", is_flag=True)
    @click.option("--steps", type=int, default=10)
    @click.option("--kind", type=click.Choice(["a", "b"]), default="a")
    def cmd(**kwargs):
        if flag_default == "sentinel":  # click >= 8.3: the attribute is a sentinel, get_default the value
            ctx = click.get_current_context()
            for p in ctx.command.params:
                value = p.get_default(ctx)
                p.default = _Sentinel()
                p.get_default = lambda ctx, call=True, _value=value: _value
        seen["given"] = {name: was_given(name) for name in kwargs}
        try:
            refuse_unused(("mala", "steps", "kind"), "this mode")
        except DDLSError as exc:
            seen["error"] = str(exc)

    cmd.main(argv, standalone_mode=False)
    assert ("error" in seen) == refused
    assert seen["given"] == {"mala": "--mala" in argv, "steps": "--steps" in argv, "kind": "--kind" in argv}


def test_an_option_from_the_environment_counts_as_given(monkeypatch):
    seen = {}

    @click.command(context_settings={"auto_envvar_prefix": "DDLS_T"})
    @click.option("--mala", is_flag=True)
    def cmd(mala):
        seen["given"] = was_given("mala")

    monkeypatch.setenv("DDLS_T_MALA", "1")
    cmd.main([], standalone_mode=False)
    assert seen["given"] is True
    monkeypatch.delenv("DDLS_T_MALA")
    cmd.main([], standalone_mode=False)
    assert seen["given"] is False


@pytest.mark.slow
@pytest.mark.parametrize("method", names())
def test_every_method_samples_with_nothing_but_ckpt_method_and_out(method, tmp_path):
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", CKPT, "--method", method, "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as f:
        assert np.isfinite(f["x"]).all()
