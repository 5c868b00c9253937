"""Property-based: random option values and random or broken files never give a traceback,
always exit 0, 1 or 2 with at most one error line, and never damage an output already there."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings, strategies as st

from conftest import invoke, one_line_error
from ddls.cli import cli

pytestmark = pytest.mark.usefixtures("no_train_metrics")  # train only to get checkpoints


EXISTING = b"precious earlier result\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    ckpt = d / "real.pt"
    r = invoke("train", "--data", "gmm25", "--steps", "5", "--hidden", "8", "--depth", "1", "--batch-size", "8",
               "--out", ckpt)
    assert r.exit_code == 0, r.output
    blob = ckpt.read_bytes()
    (d / "truncated.pt").write_bytes(blob[: len(blob) // 2])
    (d / "flipped.pt").write_bytes(blob[:200] + bytes(b ^ 0xFF for b in blob[200:260]) + blob[260:])
    (d / "random.pt").write_bytes(np.random.default_rng(0).bytes(3000))
    (d / "empty.pt").write_bytes(b"")
    (d / "folder.pt").mkdir()
    np.savez(d / "wrong.npz", y=np.zeros(3))
    np.savez(d / "flat.npz", x=np.zeros(5))
    np.savez(d / "nanx.npz", x=np.full((4, 2), np.nan), meta=np.array('{"data": "gmm25"}'))
    np.savez(d / "badmeta.npz", x=np.zeros((4, 2)), meta=np.array("{not json"))
    np.savez(d / "listmeta.npz", x=np.zeros((4, 2)), meta=np.array("[1, 2]"))
    np.savez(d / "strx.npz", x=np.array(["a", "b"]), meta=np.array('{"data": "gmm25"}'))
    np.savez(d / "emptyx.npz", x=np.zeros((0, 2)), meta=np.array('{"data": "gmm25"}'))
    (d / "truncated.npz").write_bytes((d / "nanx.npz").read_bytes()[:100])
    (d / "random.npz").write_bytes(np.random.default_rng(1).bytes(500))
    (d / "empty.npz").write_bytes(b"")
    r = invoke("sample", "--ckpt", ckpt, "--steps", "2", "--n", "6", "--out", d / "ok.npz")
    assert r.exit_code == 0, r.output
    return d


CKPTS = ["real.pt", "truncated.pt", "flipped.pt", "random.pt", "empty.pt", "folder.pt", "missing.pt", "wrong.npz"]
NPZS = ["ok.npz", "wrong.npz", "flat.npz", "nanx.npz", "badmeta.npz", "listmeta.npz", "strx.npz", "emptyx.npz",
        "truncated.npz", "random.npz", "empty.npz", "missing.npz", "real.pt", "folder.pt"]

EDGE_FLOATS = ["nan", "inf", "-inf", "0", "-0.0", "-1", "1e-3", "1e-320", "1e308", "1e30", "3.4e38", "1e39", "1e-31"]
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=True, allow_infinity=True).map(repr))
small_ints = st.integers(min_value=-3, max_value=12)
huge_ints = st.sampled_from([str(10 ** 20), str(2 ** 62), str(2 ** 63), str(2 ** 64), str(10 ** 30), "1e20",
                             str(2 ** 31), str(-(2 ** 63))])
texts = st.text(max_size=12)
values = {
    "float": st.one_of(floats, floats, texts, small_ints.map(str)),
    "int": st.one_of(small_ints.map(str), small_ints.map(str), texts, floats, huge_ints),
    "text": st.one_of(texts, st.sampled_from(["gmm25", "ring8", "ns", "wgan-gp", "gan", "wgan", "ae", "cpu",
                                              "auto", "cuda", "cuda:7", "meta", "xla", "mps", "cpu:1", "stop", "restart",
                                              "fashion-mnist", "folder:/nonexistent", "domain", "inception"])),
}
SAMPLE = {"--steps": "int", "--eps": "float", "--record-every": "int", "--noise-scale": "float",
          "--n": "int", "--seed": "int", "--chunk-size": "int", "--temperature": "float", "--sigma": "float",
          "--energy": "text", "--device": "text", "--on-nan": "text", "--checkpoint-every": "int",
          "--method": "text", "--label": "text", "--calibration": "text", "--drs-pilot": "int",
          "--drs-gamma-percentile": "float", "--mh-chain-length": "int", "--dot-steps": "int", "--dot-lr": "float",
          "--dgflow-steps": "int", "--dgflow-eta": "float", "--dgflow-gamma": "float", "--autocast": "text"}
OPTIONS = {
    "sample": SAMPLE,
    "sweep": {"--eps": "float", "--steps": "int", "--n": "int", "--seed": "int", "--chunk-size": "int",
              "--noise-scale": "float", "--temperature": "float", "--sigma": "float", "--energy": "text",
              "--device": "text", "--features": "text", "--ref-n": "int", "--grid-chains": "int"},
    "train": {"--data": "text", "--loss": "text", "--steps": "int", "--seed": "int", "--batch-size": "int",
              "--z-dim": "int", "--hidden": "int", "--depth": "int", "--lr": "float", "--n-critic": "int",
              "--gp-weight": "float", "--device": "text", "--checkpoint-every": "int", "--arch": "text",
              "--width": "int", "--clip": "float", "--margin": "float", "--gamma": "float", "--lr-d": "float"},
    "calibrate": {"--steps": "int", "--batch-size": "int", "--lr": "float", "--seed": "int", "--device": "text"},
    "eval": {"--data": "text", "--features": "text", "--ref-n": "int", "--device": "text"},
    "inspect": {},
    "export": {},
    "compare": {"--methods": "text", "--steps": "int", "--eps": "float", "--n": "int", "--seed": "int",
                "--chunk-size": "int", "--device": "text", "--calibration": "text", "--calibration-n": "int",
                "--drs-pilot": "int", "--mh-chain-length": "int", "--dot-steps": "int", "--dot-pairs": "int",
                "--dgflow-steps": "int", "--dgflow-eta": "float", "--dgflow-f": "text"},
    "stats": {"--data": "text", "--split": "text", "--n": "int", "--features": "text", "--device": "text"},
    "classifier": {"--epochs": "int", "--batch-size": "int", "--lr": "float", "--seed": "int", "--threads": "int"},
    "inception status": {},
    "inception install": {},
    "tune": {"--methods": "text", "--temperatures": "text", "--eps": "text", "--steps": "int", "--n-start": "int",
             "--n-max": "int", "--n-report": "int", "--seed": "int", "--device": "text", "--bootstrap": "int",
             "--chunk-size": "int"},
}
# numbers kept small where they set the amount of work, so each example runs in well under a second
SAFE = {"--steps": "2", "--n": "4", "--hidden": "4", "--depth": "1", "--batch-size": "4", "--z-dim": "2",
        "--n-critic": "1", "--chunk-size": "3", "--drs-pilot": "4", "--mh-chain-length": "2", "--dot-steps": "2",
        "--dot-pairs": "2", "--dgflow-steps": "2", "--calibration-n": "4", "--calibration-steps": "2",
        "--ref-n": "4", "--grid-chains": "2", "--width": "4", "--record-every": "0", "--checkpoint-every": "1",
        "--n-start": "32", "--n-max": "32", "--n-report": "32", "--bootstrap": "2"}
INVALID_EPOCHS = ["0", "-1", "x", "1e9", "nan", "99999999999", ""]  # `classifier` trains for minutes when valid
OUT = {"sample": "out.npz", "train": "out.pt", "calibrate": "out.pt", "sweep": "sw", "compare": "cmp", "tune": "tuned.pt",
       "export": "out.safetensors", "stats": "st.npz", "classifier": "cl.pt"}
GUARDED = {"sweep": "sw/sweep.csv", "compare": "cmp/compare.csv"}


def _files_for(command):
    if command in ("sample", "sweep", "calibrate", "inspect", "export", "compare", "tune"):
        return "--ckpt", CKPTS
    if command == "eval":
        return "--samples", NPZS
    if command == "inception install":
        return "--from", CKPTS + NPZS
    return None, None


@st.composite
def invocations(draw, bad_files=()):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    args = command.split()
    flag, pool = _files_for(command)
    if flag:
        pool = pool + [f for f in bad_files if f.endswith(".npz" if command == "eval" else ".pt")]
        first = "ok.npz" if command == "eval" else "real.pt"
        args += [flag, draw(st.one_of(st.just(first), st.sampled_from(pool)))]  # half reach the work
    if command == "train":
        args += ["--data", "gmm25", "--sample-every", "0"]
    if command == "stats":
        args += ["--data", "fashion-mnist"]
    if command == "classifier":
        args += ["--epochs", draw(st.sampled_from(INVALID_EPOCHS))]
    if command == "tune":
        args += ["--budget", "2s"]  # its budget's own refusals are tested in test_tune
    if command == "compare" and draw(st.booleans()):
        args += ["--methods", ",".join(draw(st.lists(st.sampled_from(["ddls", "drs", "mhgan", "dot", "dgflow", "mala",
                                                                       "bogus", ""]), min_size=1, max_size=3)))]
    opts = {k: v for k, v in OPTIONS[command].items() if k not in args}
    chosen = draw(st.lists(st.sampled_from(sorted(opts)), unique=True, max_size=3)) if opts else []
    for opt in sorted(opts):
        if opt in chosen:
            value = draw(values[opts[opt]])
            # a valid but large amount of work would only be slow: out-of-range values stay to be refused
            if opt in SAFE and re.fullmatch(r"-?[0-9]+", value) and 12 < abs(int(value)) < 10 ** 10:
                value = SAFE[opt]
            args += [opt, value]
        elif opt in SAFE:
            args += [opt, SAFE[opt]]
    if command == "sample" and draw(st.booleans()):
        args.append("--mala")
    if command in ("sample", "train") and draw(st.booleans()):
        args.append("--resume")
    env = {}
    if draw(st.integers(0, 4)) == 0:  # an option from the environment, or a misspelt variable
        from ddls.cli import ENVVARS

        name = draw(st.sampled_from(sorted(k for k in ENVVARS if k.startswith(f"DDLS_{command.split()[0].upper()}_"))
                                    + ["DDLS_SWEEP_EPS_VALUES", "DDLS_BOGUS"]))
        # a real environment cannot hold a NUL byte (the OS refuses to set one)
        env[name] = draw(st.one_of(values["float"], values["int"]).filter(lambda v: "\x00" not in v))
    return args, env


def _run_in(folder: Path, args: list[str], env: dict | None = None):
    command = args[0]
    out = OUT.get(command)
    guarded = None
    if out:
        guarded = folder / GUARDED.get(command, out)
        guarded.parent.mkdir(exist_ok=True)
        guarded.write_bytes(EXISTING)
        args = args + ["--out", str(folder / out)]
    args = [str(folder / a) if a in CKPTS + NPZS or a.startswith("bad_") else a for a in args]
    result = CliRunner().invoke(cli, args, catch_exceptions=True, env=env)
    return result, guarded


def check(result, guarded, args):
    shown = " ".join(args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        shown, "".join(__import__("traceback").format_exception(result.exception)))
    assert result.exit_code in (0, 1, 2), (shown, result.output)
    assert "Traceback" not in result.output, (shown, result.output)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error")]
    if result.exit_code:
        assert len(errors) == 1, (shown, result.output)
        if guarded is not None and guarded.is_file():
            assert guarded.read_bytes() == EXISTING, (shown, "an existing output was damaged")
        assert not Path(str(guarded) + ".resume.pt").exists() or "--resume" in shown
    if guarded is not None:
        out = guarded if args[0] not in GUARDED else guarded.parent
        assert not Path(f"{out}.lock").exists(), (shown, "a lock was left behind")


def _fuzz(files, args, env=None):
    folder = files / "run"
    folder.mkdir(exist_ok=True)
    for f in folder.glob("*.resume.pt"):
        f.unlink()
    for name in set(CKPTS + NPZS) | {f.name for f in files.glob("bad_*")}:
        if (files / name).exists() and not (folder / name).exists():
            (folder / name).symlink_to(files / name)
    result, guarded = _run_in(folder, args, env)
    event(f"{args[0]}: exit {result.exit_code}")  # --hypothesis-show-statistics tallies them
    check(result, guarded, args)


@pytest.fixture(scope="module")
def bad_files(files):
    from _hostile import write_bad_checkpoints, write_bad_samples

    return tuple(write_bad_checkpoints(files / "real.pt", files) + write_bad_samples(files))


def _bad_names():
    """The structured-bad files' names (the same for every run; files written by the fixture)."""
    import torch
    from _hostile import bad_checkpoint_payloads

    payload = torch.load(Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt", weights_only=True)
    npz = ["complex", "bool", "object_free_str", "empty", "rank3", "meta_list", "meta_int", "meta_array",
           "meta_number", "data_int", "huge"]
    return tuple([f"bad_{n}.pt" for n in bad_checkpoint_payloads(payload)] + ["bad_text.pt"]
                 + [f"bad_{n}.npz" for n in npz])


BAD_NAMES = _bad_names()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=invocations(BAD_NAMES))
def test_cli_never_tracebacks(files, bad_files, case):
    _fuzz(files, *case)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("DDLS_FUZZ_EXAMPLES", 1000)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=invocations(BAD_NAMES))
def test_cli_never_tracebacks_long(files, bad_files, case):
    _fuzz(files, *case)


@pytest.mark.parametrize("name", ["truncated", "random", "empty", "flipped"])
def test_broken_resume_file_is_one_line(files, tmp_path, name):
    """A resume file cut short by a crash or a full disk: one line, and the file is left for the user."""
    out = tmp_path / "out.npz"
    src = {"truncated": files / "truncated.pt", "random": files / "random.pt", "empty": files / "empty.pt",
           "flipped": files / "flipped.pt"}[name]
    Path(f"{out}.resume.pt").write_bytes(src.read_bytes())
    r = invoke("sample", "--ckpt", files / "real.pt", "--steps", "3", "--n", "4", "--out", out, "--resume")
    assert "delete it to start over" in one_line_error(r)
    assert Path(f"{out}.resume.pt").exists() and not out.exists()
