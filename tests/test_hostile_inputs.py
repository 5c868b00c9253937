"""Regression tests for the findings of a hostile run (issue 15): every bad input ends in one
line, and nothing is lost or silently wrong."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _hostile import bad_checkpoint_payloads, write_bad_checkpoints, write_bad_samples
from conftest import SUBPROCESS_ENV, invoke, one_line_error
from ddls.cli import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    r = invoke("train", "--data", "gmm25", "--steps", "5", "--hidden", "8", "--depth", "1", "--batch-size", "8",
               "--out", d / "real.pt")
    assert r.exit_code == 0, r.output
    write_bad_checkpoints(d / "real.pt", d)
    write_bad_samples(d)
    return d


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def refused(result, code=1):
    """The single error line of a refused command (exit `code`, no traceback)."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0]


# --- data loss: an output that is an input --------------------------------------------------------------

@pytest.mark.parametrize("command", [["sample", "--n", "4", "--steps", "1"], ["export"], ["calibrate", "--steps", "1"]])
def test_output_that_is_the_input_is_refused(files, tmp_path, command):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes((files / "real.pt").read_bytes())
    before = ckpt.read_bytes()
    out = ckpt if command[0] != "export" else tmp_path / "model.safetensors"
    if command[0] == "export":
        os.link(ckpt, out)  # the same file under another name
    line = refused(run(*command, "--ckpt", ckpt, "--out", out))
    assert "is the input" in line
    assert ckpt.read_bytes() == before


def test_empty_and_overlong_output_names(files, tmp_path):
    assert "empty" in refused(run("sample", "--ckpt", files / "real.pt", "--out", ""))
    long_name = tmp_path / ("a" * 240 + ".npz")
    line = refused(run("sample", "--ckpt", files / "real.pt", "--n", "2", "--steps", "1", "--out", long_name))
    assert "give a shorter name" in line
    assert not list(tmp_path.iterdir())


# --- silent corruption: resume without its parts ---------------------------------------------------------

def _interrupted(files, out, monkeypatch):
    """A run of 2 chunks stopped after its first chunk, as by Ctrl-C: resume file and spool remain."""
    from ddls.sampling import stream

    real_add = stream.SampleWriter.add
    calls = []

    def add(self, chunk):
        calls.append(chunk.index)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_add(self, chunk)

    monkeypatch.setattr(stream.SampleWriter, "add", add)
    args = ["sample", "--ckpt", files / "real.pt", "--n", "8", "--chunk-size", "4", "--steps", "3",
            "--checkpoint-every", "1", "--out", out]
    r = run(*args)
    assert r.exit_code == 130  # interrupted: progress saved, resume to finish
    monkeypatch.setattr(stream.SampleWriter, "add", real_add)
    assert Path(f"{out}.resume.pt").is_file() and Path(f"{out}.parts").is_dir()
    return args


@pytest.mark.parametrize("damage", ["deleted", "truncated", "one_array_gone"])
def test_resume_refuses_a_missing_or_damaged_spool(files, tmp_path, monkeypatch, damage):
    import shutil

    out = tmp_path / "s.npz"
    args = _interrupted(files, out, monkeypatch)
    spool = Path(f"{out}.parts")
    if damage == "deleted":
        shutil.rmtree(spool)
    elif damage == "truncated":
        with open(spool / "x.npy", "r+b") as fh:
            fh.truncate(100)
    else:
        (spool / "z.npy").unlink()
    line = refused(run(*args, "--resume"))
    assert "start over" in line
    assert not out.exists() and Path(f"{out}.resume.pt").is_file()


def test_resume_with_its_spool_gives_the_whole_run(files, tmp_path, monkeypatch):
    out = tmp_path / "s.npz"
    args = _interrupted(files, out, monkeypatch)
    r = run(*args, "--resume")
    assert r.exit_code == 0, r.output
    whole = tmp_path / "whole.npz"
    assert run(*[a if a != out else whole for a in args]).exit_code == 0
    with np.load(out) as a, np.load(whole) as b:
        assert np.array_equal(a["x"], b["x"]) and (np.abs(a["x"]).sum(axis=1) > 0).all()


# --- numeric bounds ----------------------------------------------------------------------------------

BIG = str(10 ** 20)
BOUNDS = [
    (["sample", "--eps", "1e39"], "--eps"), (["sample", "--eps", "1e300"], "--eps"),
    (["sample", "--eps", "1e-320"], "--eps"), (["sample", "--eps", "nan"], "--eps"),
    (["sample", "--eps", "1e39", "--on-nan", "restart"], "--eps"),
    (["sample", "-n", BIG], "'-n'"), (["sample", "-n", str(2 ** 62)], "'-n'"),
    (["sample", "--record-every", BIG], "--record-every"), (["sample", "--steps", str(10 ** 23)], "--steps"),
    (["sample", "--seed", str(2 ** 64)], "--seed"), (["sample", "--seed", "-1"], "--seed"),
    (["sample", "--chunk-size", BIG], "--chunk-size"), (["sample", "--temperature", "inf"], "--temperature"),
    (["sample", "--sigma", "1e-320"], "--sigma"),
    (["sweep", "--eps", "1e39"], "--eps"), (["sweep", "--n", BIG], "--n"),
    (["calibrate", "--lr", "1e300"], "--lr"), (["calibrate", "--batch-size", BIG], "--batch-size"),
    (["compare", "--dot-lr", "1e300"], "--dot-lr"), (["compare", "--drs-pilot", BIG], "--drs-pilot"),
    (["compare", "--dgflow-gamma", "nan"], "--dgflow-gamma"),
]
TRAIN_BOUNDS = [(["--batch-size", BIG], "--batch-size"), (["--z-dim", BIG], "--z-dim"),
                (["--hidden", str(10 ** 30)], "--hidden"), (["--steps", str(10 ** 23)], "--steps"),
                (["--lr", "1e300"], "--lr"), (["--gamma", "nan"], "--gamma"), (["--width", str(10 ** 9)], "--width")]


@pytest.mark.parametrize("args,option", BOUNDS, ids=[" ".join(a) for a, _ in BOUNDS])
def test_out_of_range_values_are_refused_with_the_range(files, tmp_path, args, option):
    line = refused(run(*args, "--ckpt", files / "real.pt", "--out", tmp_path / "o"), code=2)
    assert option in line and ("range" in line or "allowed" in line), line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args,option", TRAIN_BOUNDS, ids=[" ".join(a) for a, _ in TRAIN_BOUNDS])
def test_out_of_range_training_values(tmp_path, args, option):
    line = refused(run("train", "--data", "gmm25", *args, "--out", tmp_path / "t.pt"), code=2)
    assert option in line and ("range" in line or "allowed" in line)


def test_values_from_the_environment_are_bounded_too(files, tmp_path):
    line = refused(run("sample", "--ckpt", files / "real.pt", "--out", tmp_path / "o.npz",
                       env={"DDLS_SAMPLE_EPS": "1e300"}), code=2)
    assert "--eps" in line


def test_absurd_model_sizes_are_refused_before_allocating(tmp_path):
    line = refused(run("train", "--data", "gmm25", "--hidden", "65536", "--depth", "256", "--steps", "1",
                       "--out", tmp_path / "t.pt"))
    assert "more than this machine's" in line and "TB" in line


def test_runs_that_cannot_finish_or_fit_are_refused_unless_forced(files, tmp_path):
    from ddls.sampling.budget import allow_oversize, check_chunks
    from ddls.sampling.driver import RunConfig

    line = refused(run("sample", "--ckpt", files / "real.pt", "-n", str(10 ** 9), "--chunk-size", "10",
                       "--steps", "1", "--out", tmp_path / "o.npz"))
    assert "100,000,000 chunks" in line and "force" in line
    assert not list(tmp_path.iterdir())  # no spool, no lock
    config = RunConfig(n=10 ** 9, steps=1, chunk_size=10, eps=0.1)
    with allow_oversize():
        check_chunks(config, 2, (2,))  # forced: no refusal
    line = refused(run("sample", "--ckpt", files / "real.pt", "-n", str(10 ** 9), "--chunk-size", str(10 ** 7),
                       "--steps", "3", "--record-every", "1", "--out", tmp_path / "o.npz"))
    assert ("memory" in line or "disk" in line) and "force" in line


# --- structured-bad files ------------------------------------------------------------------------------

BAD_CKPTS = sorted(f"bad_{n}.pt" for n in bad_checkpoint_payloads(torch.load(
    Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt", weights_only=True))) + ["bad_text.pt"]
FEW = ["bad_config_not_json.pt", "bad_generator_a_str.pt", "bad_latent_negative.pt", "bad_hidden_huge_d.pt",
       "bad_generator_complex.pt", "bad_text.pt"]


@pytest.mark.parametrize("name", BAD_CKPTS)
def test_bad_checkpoint_is_one_line(files, tmp_path, name):
    for command in (["inspect"], ["sample", "--n", "2", "--steps", "1", "--out", tmp_path / "s.npz"]):
        line = refused(run(*command, "--ckpt", files / name))
        assert str(files / name) in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", FEW)
@pytest.mark.parametrize("command", ["sweep", "calibrate", "compare", "export"])
def test_bad_checkpoint_in_every_command(files, tmp_path, name, command):
    out = {"sweep": "sw", "compare": "cmp", "calibrate": "c.pt", "export": "e.safetensors"}[command]
    extra = {"sweep": ["--n", "2", "--steps", "1"], "calibrate": ["--steps", "1"],
             "compare": ["--n", "2", "--steps", "1"], "export": []}[command]
    refused(run(command, "--ckpt", files / name, "--out", tmp_path / out, *extra))
    assert not list(tmp_path.iterdir())  # no half-made folder, no lock


def test_bad_checkpoint_fields_are_named(files):
    cases = {"bad_config_not_json.pt": "'config'", "bad_extra_an_int.pt": "'extra'",
             "bad_generator_a_list.pt": "'generator'", "bad_latent_missing.pt": "latent_shape",
             "bad_hidden_negative.pt": "model.generator.hidden", "bad_generator_int64.pt": "int64",
             "bad_generator_nan.pt": "NaN", "bad_latent_wrong.pt": "z_dim", "bad_text.pt": "not a readable"}
    for name, field in cases.items():
        assert field in refused(run("inspect", "--ckpt", files / name)), name


@pytest.mark.parametrize("name", [
    "bad_complex.npz", "bad_bool.npz", "bad_object_free_str.npz", "bad_empty.npz", "bad_rank3.npz",
    "bad_meta_list.npz", "bad_meta_int.npz", "bad_meta_array.npz", "bad_meta_number.npz", "bad_data_int.npz",
    "bad_huge.npz"])
def test_bad_samples_file_is_one_line(files, name):
    line = refused(run("eval", "--samples", files / name))
    assert str(files / name) in line


# --- concurrency: one run per output ---------------------------------------------------------------------

def test_second_run_on_the_same_output_is_refused(files, tmp_path):
    out = tmp_path / "s.npz"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        Path(f"{out}.lock").write_text(f"{holder.pid}\n")
        line = refused(run("sample", "--ckpt", files / "real.pt", "--n", "2", "--steps", "1", "--out", out))
        assert "another ddls run" in line and str(holder.pid) in line
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead: its lock is stale and taken over; the lock is gone after the run
    r = run("sample", "--ckpt", files / "real.pt", "--n", "2", "--steps", "1", "--out", out)
    assert r.exit_code == 0, r.output
    assert out.exists() and not Path(f"{out}.lock").exists()


# --- disk full -------------------------------------------------------------------------------------------

FULL_DISK = r"""
import json, resource, signal, sys
from click.testing import CliRunner
from ddls.cli import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
results = []
for args in json.loads(sys.argv[2]):
    r = CliRunner().invoke(cli, args)
    results.append({"code": r.exit_code, "output": r.output,
                    "exception": None if r.exception is None or isinstance(r.exception, SystemExit)
                    else repr(r.exception)})
print(json.dumps(results))
"""


def _commands(files, tmp_path, d, group):
    real = str(files / "real.pt")
    if group == "sample":
        return [["sample", "--ckpt", real, "--n", "4000", "--steps", "1", "--out", str(d / "s.npz")],
                ["sample", "--ckpt", real, "--n", "4000", "--steps", "1", "--checkpoint-every", "0",
                 "--out", str(d / "s0.npz")],
                ["export", "--ckpt", real, "--out", str(d / "e.safetensors")],
                ["calibrate", "--ckpt", real, "--steps", "1", "--batch-size", "4", "--out", str(d / "c.pt")]]
    train = ["train", "--data", "gmm25", "--steps", "2", "--hidden", "256", "--depth", "3", "--batch-size", "8"]
    return [[*train, "--out", str(d / "t.pt")], [*train, "--out", str(d / "tfolder")],
            ["sweep", "--ckpt", real, "--n", "100", "--steps", "1", "--eps", "0.1", "--out", str(d / "sw")]]


@pytest.mark.parametrize("group", ["sample", pytest.param("train", marks=pytest.mark.slow)])
def test_full_disk_is_one_line_and_leaves_no_temporary_files(files, tmp_path, group):
    """Every write past 500 bytes fails (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC)."""
    d = tmp_path / "out"
    d.mkdir()
    commands = _commands(files, tmp_path, d, group)
    p = subprocess.run([sys.executable, "-c", FULL_DISK, "500", json.dumps(commands)], capture_output=True,
                       text=True, env=SUBPROCESS_ENV, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for args, res in zip(commands, json.loads(p.stdout)):
        assert res["exception"] is None, (args, res)
        assert res["code"] == 1, (args, res["output"])
        errors = [ln for ln in res["output"].splitlines() if ln.startswith("Error")]
        assert len(errors) == 1 and "no space left" in errors[0], (args, res["output"])
    left = sorted(p.name for p in d.rglob("*"))
    assert not [n for n in left if n.endswith((".tmp", ".lock")) or ".parts" in n], left
    assert "sw" not in left and "tfolder" not in left, left  # no half-made folders


# --- environment -----------------------------------------------------------------------------------------

def test_environment_names_follow_the_readme_rule(files, tmp_path):
    from ddls.cli import ENVVARS

    for name in ("DDLS_SAMPLE_EPS", "DDLS_SWEEP_EPS", "DDLS_EVAL_SAMPLES", "DDLS_SAMPLE_N", "DDLS_TRAIN_BATCH_SIZE",
                 "DDLS_INCEPTION_INSTALL_FROM", "DDLS_COMPARE_DOT_LR"):
        assert name in ENVVARS, name
    assert "DDLS_SWEEP_EPS_VALUES" not in ENVVARS and "DDLS_EVAL_SAMPLES_PATH" not in ENVVARS
    line = refused(run("sweep", "--ckpt", files / "real.pt", "--out", tmp_path / "sw",
                       env={"DDLS_SWEEP_EPS": "1e39"}), code=2)
    assert "--eps" in line
    r = run("eval", env={"DDLS_EVAL_SAMPLES": str(files / "bad_bool.npz")})
    assert "bool" in refused(r)


def test_unknown_ddls_variable_draws_a_warning(files):
    r = run("inspect", "--ckpt", files / "real.pt", env={"DDLS_SWEEP_EPS_VALUES": "0.1", "DDLS_TEST_DEVICE": "cpu"})
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.output.splitlines() if ln.startswith("warning")]
    assert len(warnings) == 1 and "DDLS_SWEEP_EPS_VALUES" in warnings[0] and "DDLS_SWEEP_EPS?" in warnings[0]


# --- flags the post-hoc branch would ignore --------------------------------------------------------------

@pytest.mark.parametrize("flag", [["--cuda-graphs"], ["--autocast", "bf16"], ["--compile"], ["--on-nan", "restart"],
                                  ["--checkpoint-every", "7"], ["--distributed"], ["--channels-last"],
                                  ["--steps", "9"], ["--eps", "0.5"], ["--noise-scale", "0.5"]])
def test_posthoc_methods_refuse_flags_they_ignore(files, tmp_path, flag):
    line = refused(run("sample", "--ckpt", files / "real.pt", "--method", "drs", "--n", "2", "--drs-pilot", "4",
                       "--device", "cpu", *flag, "--out", tmp_path / "d.npz"))
    if flag == ["--cuda-graphs"]:  # refused before the method is looked at: no GPU here
        assert "CUDA graphs need a CUDA device" in line
    else:
        assert flag[0] in line and "--method drs" in line
    assert not list(tmp_path.iterdir())


def test_posthoc_methods_accept_those_flags_at_their_defaults(files, tmp_path):
    r = run("sample", "--ckpt", files / "real.pt", "--method", "drs", "--n", "2", "--drs-pilot", "4",
            "--on-nan", "stop", "--checkpoint-every", "50", "--autocast", "off", "--out", tmp_path / "d.npz")
    assert r.exit_code == 0, r.output


# --- library -------------------------------------------------------------------------------------------

def test_run_config_refuses_a_zero_check_interval():
    from ddls.errors import DDLSError
    from ddls.sampling.driver import RunConfig

    with pytest.raises(DDLSError, match="check_every"):
        RunConfig(n=4, steps=2, eps=0.1, check_every=0)
    with pytest.raises(DDLSError, match="eps"):
        RunConfig(n=4, steps=2, eps=float("inf"))


def test_sample_with_a_sampler_records_its_eps(files):
    from ddls.io.checkpoint import load_model
    from ddls.sampling.driver import RunConfig, sample
    from ddls.sampling.samplers import make_sampler

    energy = load_model(files / "real.pt").energy()
    sampler = make_sampler("ula", 0.05, 1.0)
    result = sample(energy, RunConfig(n=3, steps=2), sampler=sampler, progress=True)
    assert result.config.eps == 0.05
    again = sample(energy, RunConfig(n=3, steps=2, eps=0.05))
    assert torch.equal(result.samples, again.samples)


def test_tune_guards_its_output_and_bounds_its_lists(files, tmp_path):
    """`ddls tune` came later than the rest: its output is guarded and its lists bounded like every command's."""
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes((files / "real.pt").read_bytes())
    before = ckpt.read_bytes()
    line = refused(run("tune", "--ckpt", ckpt, "--out", ckpt, "--budget", "2s"))
    assert "is the input" in line and ckpt.read_bytes() == before
    assert "empty" in refused(run("tune", "--ckpt", ckpt, "--out", "", "--budget", "2s"))
    line = refused(run("tune", "--ckpt", ckpt, "--out", tmp_path / "t.pt", "--budget", "2s", "--eps", "1e300"))
    assert "must be in [1e-30, 1e+30]" in line
    line = refused(run("tune", "--ckpt", ckpt, "--out", tmp_path / "t.pt", "--budget", "2s", "--temperatures", "1e-320"))
    assert "must be in [1e-30, 1e+30]" in line
    assert not (tmp_path / "t.pt").exists()
