"""`ddls sample --method ...` and `ddls compare` end to end on the shipped 2-D model, with few samples."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import invoke, one_line_error


@pytest.fixture(scope="module")
def ckpt():
    # the shipped 25-Gaussian model: small, and it names its data
    return Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"


@pytest.mark.parametrize("method, extra", [
    ("drs", ["--drs-pilot", 50, "--drs-gamma-percentile", "none"]),
    ("mhgan", ["--mh-chain-length", 4, "--calibration", "isotonic", "--calibration-n", 100]),
    ("dot", ["--dot-steps", 3, "--dot-optimizer", "adam"]),
    ("dgflow", ["--dgflow-steps", 3, "--dgflow-f", "JS", "--calibration", "logistic", "--calibration-n", 100]),
])
def test_sample_with_each_posthoc_method(ckpt, tmp_path, method, extra):
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", ckpt, "--method", method, "--n", 40, "--out", out, *extra)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        assert npz["x"].shape == (40, 2) and npz["z"].shape == (40, 2)
        meta = json.loads(str(npz["meta"]))
    assert meta["method"] == method and meta["data"] == "gmm25"
    assert meta["evaluations"] > 0 and "calibration" in meta


def test_sample_method_ddls_is_the_default_and_mala_equals_the_flag(ckpt, tmp_path):
    outs = {}
    for name, args in {"default": [], "ddls": ["--method", "ddls"], "flag": ["--mala"],
                       "mala": ["--method", "mala"]}.items():
        r = invoke("sample", "--ckpt", ckpt, "--steps", 5, "--n", 20, "--out", tmp_path / f"{name}.npz", *args)
        assert r.exit_code == 0, r.output
        with np.load(tmp_path / f"{name}.npz") as npz:
            outs[name] = npz["x"]
    np.testing.assert_array_equal(outs["default"], outs["ddls"])
    np.testing.assert_array_equal(outs["flag"], outs["mala"])
    assert not np.array_equal(outs["ddls"], outs["mala"])


def test_compare_writes_table_json_and_figure(ckpt, tmp_path):
    out = tmp_path / "cmp"
    r = invoke("compare", "--ckpt", ckpt, "--methods", "ddls,drs,mhgan,dot,dgflow,sir", "--n", 60, "--steps", 5,
               "--drs-pilot", 50, "--mh-chain-length", 4, "--dot-steps", 3, "--dgflow-steps", 3, "--sir-pool-factor", 3, "--out", out,
               "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert [row["method"] for row in rows] == ["generator", "ddls", "drs", "mhgan", "dot", "dgflow", "sir"]
    by = {row["method"]: row for row in rows}
    # network evaluations per kept sample, by hand: 2 per Langevin/flow step (+2 at the start for Langevin)
    assert by["generator"]["evals_per_sample"] == 1
    assert by["ddls"]["evals_per_sample"] == 2 * 6
    assert by["mhgan"]["evals_per_sample"] == 4 + 1
    assert by["sir"]["evals_per_sample"] == 3 + 1
    assert by["dgflow"]["evals_per_sample"] == 2 * 3
    assert by["dot"]["evals_per_sample"] == pytest.approx(2 * 3 + 2 * 100 / 60, abs=0.01)
    assert all(np.isfinite(row["emd"]) and row["modes"] is not None for row in rows)
    assert (out / "compare.csv").read_text().splitlines()[0] == \
        ("method,emd,modes,hq,emd_lo,emd_hi,precision,recall,density,coverage,seconds,evals_per_sample,acceptance,"
         "precision_lo,precision_hi,recall_lo,recall_hi,density_lo,density_hi,coverage_lo,coverage_hi")
    assert all(0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 for row in rows)
    assert (out / "compare.png").stat().st_size > 0
    assert json.loads((out / "compare.json").read_text())["rows"][2]["settings"]["pilot"] == 50


@pytest.mark.parametrize("args, message", [
    (["compare", "--methods", "ddls,nope"], "unknown method(s) nope"),
    (["sample", "--method", "dot", "--resume"], "--resume, --record-every, --mala and --label each are for"),
    (["sample", "--method", "dot", "--calibration", "isotonic", "--calibration-n", 50], "isotonic calibration has none"),
])
def test_one_line_errors(ckpt, tmp_path, args, message):
    r = invoke(*args, "--ckpt", ckpt, "--n", 10, "--out", tmp_path / "o")
    assert r.exit_code == 1, r.output
    assert message in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("args, env, flag, owner", [
    (["sample", "--method", "drs", "--dot-steps", 5], {}, "--dot-steps", "dot"),
    (["sample", "--method", "ddls", "--mh-chain-length", 5], {}, "--mh-chain-length", "mhgan"),
    (["sample", "--method", "drs"], {"DDLS_SAMPLE_DGFLOW_ETA": "0.2"}, "--dgflow-eta", "dgflow"),
    (["sample", "--method", "dot", "--calibration-n", 50], {}, "--calibration-n", "--calibration platt/isotonic"),
    (["sample", "--method", "dot", "--calibration", "platt", "--calibration-steps", 5], {}, "--calibration-steps",
     "--calibration finetune"),
    (["compare", "--methods", "ddls,drs", "--dot-lr", 0.1], {}, "--dot-lr", "dot"),
])
def test_an_option_of_a_method_not_run_is_refused(ckpt, tmp_path, monkeypatch, args, env, flag, owner):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = invoke(*args, "--ckpt", ckpt, "--n", 10, "--out", tmp_path / "o")
    line = one_line_error(r)
    assert line.startswith(f"Error: {flag} is an option of {owner}") and "drop it" in line
    assert not (tmp_path / "o").exists()


def test_an_option_of_the_method_run_is_accepted_even_at_its_default(ckpt, tmp_path):
    from ddls.posthoc.registry import get

    pilot = get("drs").default(get("drs").settings[0])  # given explicitly, equal to the default
    r = invoke("sample", "--ckpt", ckpt, "--method", "drs", "--drs-pilot", pilot, "--n", 10, "--out", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output


def test_image_checkpoint_without_real_data_is_one_line():
    from ddls.data.real import real_source
    from ddls.io.checkpoint import Model
    from ddls.posthoc import make_target
    from ddls.errors import DDLSError
    from conftest import Linear
    from ddls.sampling.energy import LatentEnergy

    model = Model(Linear([[1.0, 0.0]], [0.0]), Linear([[1.0]], [0.0]), (2,), "gan", data=None)
    assert real_source(model) is None
    energy = LatentEnergy(model.generator, model.discriminator, 2)
    with pytest.raises(DDLSError, match="names no data source"):
        make_target(energy, "logistic", real_source(model))


@pytest.mark.parametrize("method, extra, steps", [
    ("mhgan", ["--mh-chain-length", 7], 7), ("dot", ["--dot-steps", 6], 6), ("dgflow", ["--dgflow-steps", 5], 5)])
def test_long_posthoc_methods_show_progress(ckpt, tmp_path, method, extra, steps):
    # two chunks of `steps` steps each: the bar counts chunk-steps, as the Langevin driver's does
    r = invoke("sample", "--ckpt", ckpt, "--method", method, "--n", 20, "--chunk-size", 10, "--out",
               tmp_path / "o.npz", *extra)
    assert r.exit_code == 0, r.output
    assert f"{method}: " in r.stderr and f"/{2 * steps} " in r.stderr


@pytest.mark.parametrize("name, method, calibration, warned", [
    ("gmm25_wgangp_raw.pt", "drs", "raw", True),  # a WGAN-GP critic, read as a logit by exp(d)
    ("gmm25_wgangp_raw.pt", "mhgan", "raw", True),
    ("gmm25_wgangp_raw.pt", "drs", "platt", False),  # calibrated to a logit first
    ("gmm25_wgangp_raw.pt", "dgflow", "raw", False),  # follows gradients, not exp(d)
    ("gmm25_wgangp.pt", "drs", "raw", False),  # fine-tuned: its energy is already a logit ('gan')
])
def test_rejection_methods_on_a_raw_critic_warn(tmp_path, name, method, calibration, warned):
    ckpt = Path(__file__).resolve().parents[1] / "pretrained" / name
    extra = ["--calibration", calibration, "--calibration-n", 100] if calibration != "raw" else []
    extra += ["--mh-chain-length", 3] if method == "mhgan" else []
    extra += ["--dgflow-steps", 2] if method == "dgflow" else []
    r = invoke("sample", "--ckpt", ckpt, "--method", method, "--n", 10, "--out", tmp_path / "o.npz", *extra)
    assert r.exit_code == 0, r.output
    assert ("is not a log-ratio" in r.stderr) == warned
    r = invoke("compare", "--ckpt", ckpt, "--methods", method, "--n", 10, "--out", tmp_path / "c", *extra)
    assert r.exit_code == 0, r.output
    assert ("is not a log-ratio" in r.stderr) == warned
