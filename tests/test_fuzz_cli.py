"""Property-based: random option values and random or broken files never give a traceback,
always exit 0, 1 or 2 with at most one error line, and never damage an output already there."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import invoke, one_line_error

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

EDGE_FLOATS = ["nan", "inf", "-inf", "0", "-0.0", "-1", "1e-3", "1e-320", "1e308", "1e30", "3.4e38"]
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=True, allow_infinity=True).map(repr))
small_ints = st.integers(min_value=-3, max_value=12)
texts = st.text(max_size=12)
values = {
    "float": st.one_of(floats, floats, texts, small_ints.map(str)),
    "int": st.one_of(small_ints.map(str), small_ints.map(str), texts, floats, st.just("99999999999999999999999")),
    "text": st.one_of(texts, st.sampled_from(["gmm25", "ring8", "ns", "wgan-gp", "gan", "wgan", "ae", "cpu",
                                              "auto", "cuda", "cuda:7", "meta", "xla", "mps", "cpu:1", "stop", "restart"])),
}
OPTIONS = {
    "sample": {"--steps": "int", "--eps": "float", "--record-every": "int", "--noise-scale": "float",
               "--n": "int", "--seed": "int", "--chunk-size": "int", "--temperature": "float", "--sigma": "float",
               "--energy": "text", "--device": "text", "--on-nan": "text", "--checkpoint-every": "int"},
    "sweep": {"--eps": "float", "--steps": "int", "--n": "int", "--seed": "int", "--chunk-size": "int",
              "--noise-scale": "float", "--temperature": "float", "--sigma": "float", "--energy": "text",
              "--device": "text"},
    "train": {"--data": "text", "--loss": "text", "--steps": "int", "--seed": "int", "--batch-size": "int",
              "--z-dim": "int", "--hidden": "int", "--depth": "int", "--lr": "float", "--n-critic": "int",
              "--gp-weight": "float", "--device": "text", "--checkpoint-every": "int"},
    "calibrate": {"--steps": "int", "--batch-size": "int", "--lr": "float", "--seed": "int", "--device": "text"},
    "eval": {"--data": "text"},
}
# numbers kept small where they set the amount of work, so each example runs in well under a second
SAFE = {"--steps": "2", "--n": "4", "--hidden": "4", "--depth": "1", "--batch-size": "4", "--z-dim": "2",
        "--n-critic": "1", "--chunk-size": "3"}


@st.composite
def invocations(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    args = [command]
    if command == "eval":
        args += ["--samples", draw(st.one_of(st.just("ok.npz"), st.sampled_from(NPZS)))]
    elif command in ("sample", "sweep", "calibrate"):
        args += ["--ckpt", draw(st.one_of(st.just("real.pt"), st.sampled_from(CKPTS)))]  # half reach the sampler
    if command == "train":
        args += ["--data", "gmm25"]
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONS[command])), unique=True, max_size=3))
    for opt in sorted(OPTIONS[command]):
        if opt in chosen:
            value = draw(values[OPTIONS[command][opt]])
            if opt in SAFE and re.fullmatch(r"-?[0-9]+", value) and abs(int(value)) > 12:
                value = SAFE[opt]
            args += [opt, value]
        elif opt in SAFE:
            args += [opt, SAFE[opt]]
    if command == "sample" and draw(st.booleans()):
        args.append("--mala")
    if command in ("sample", "train") and draw(st.booleans()):
        args.append("--resume")
    return args


def _run_in(folder: Path, args: list[str]):
    out = {"sample": "out.npz", "train": "out.pt", "calibrate": "out.pt", "sweep": "sw"}.get(args[0])
    if out == "sw":
        (folder / "sw").mkdir(exist_ok=True)
        guarded = folder / "sw" / "sweep.csv"
    elif out:
        guarded = folder / out
    else:
        guarded = None
    if guarded is not None:
        guarded.write_bytes(EXISTING)
        args = args + ["--out", str(folder / out)]
    args = [str(folder / a) if a in CKPTS + NPZS else a for a in args]
    result = invoke(*args, catch_exceptions=True)
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


def _fuzz(files, args):
    folder = files / "run"
    folder.mkdir(exist_ok=True)
    for f in folder.glob("*.resume.pt"):
        f.unlink()
    result, guarded = _run_in(folder, args)
    check(result, guarded, args)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=invocations())
def test_cli_never_tracebacks(files, args):
    _fuzz(files, args)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=invocations())
def test_cli_never_tracebacks_long(files, args):
    _fuzz(files, args)


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
