"""The command line, end to end on tiny models, and its one-line errors."""
import json

import numpy as np
import pytest
import torch

from conftest import invoke, one_line_error

pytestmark = pytest.mark.usefixtures("no_train_metrics")  # train only to get checkpoints


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    r = invoke("train", "--data", "gmm25", "--loss", "ns", "--steps", 20, "--hidden", 16, "--depth", 2,
               "--batch-size", 32, "--out", path)
    assert r.exit_code == 0, r.output
    return path


def test_sample_writes_npz_with_meta_and_trajectory(ckpt, tmp_path):
    out = tmp_path / "s.npz"
    r = invoke("sample", "--ckpt", ckpt, "--steps", 10, "--eps", 0.01, "--n", 30, "--record-every", 5,
               "--out", out)
    assert r.exit_code == 0, r.output
    with np.load(out) as npz:
        assert npz["x"].shape == (30, 2) and npz["z"].shape == (30, 2)
        assert npz["trajectory"].shape == (3, 30, 2)
        assert npz["record_steps"].tolist() == [0, 5, 10]
        np.testing.assert_array_equal(npz["trajectory"][-1], npz["x"])
        meta = json.loads(str(npz["meta"]))
    assert meta["data"] == "gmm25" and meta["run"]["eps"] == 0.01 and meta["run"]["steps"] == 10


def test_same_seed_same_file_contents(ckpt, tmp_path):
    outs = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        invoke("sample", "--ckpt", ckpt, "--steps", 5, "--n", 20, "--seed", seed, "--mala",
               "--out", tmp_path / f"{name}.npz")
        with np.load(tmp_path / f"{name}.npz") as npz:
            outs.append((npz["x"], npz["acceptance"]))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    assert not np.array_equal(outs[0][0], outs[2][0])
    assert ((outs[0][1] >= 0) & (outs[0][1] <= 1)).all()


def test_eval_prints_metrics_json(ckpt, tmp_path):
    out = tmp_path / "s.npz"
    invoke("sample", "--ckpt", ckpt, "--steps", 0, "--n", 40, "--out", out)
    r = invoke("eval", "--samples", out, "--json")
    metrics = json.loads(r.stdout)
    assert metrics["data"] == "gmm25" and metrics["n"] == 40
    assert metrics["emd"] > 0 and 0 <= metrics["modes"] <= 25 and 0 <= metrics["hq"] <= 100
    assert metrics["emd_lo"] < metrics["emd"] < metrics["emd_hi"]


def test_sweep_json_table_csv_and_plot(ckpt, tmp_path):
    out = tmp_path / "sw"
    r = invoke("sweep", "--ckpt", ckpt, "--eps", 1e-2, "--eps", 1e-3, "--steps", 5, "--n", 50, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["eps"] for row in rows] == [None, 0.01, 0.001]
    assert all({"emd", "modes", "hq"} <= set(row) for row in rows)
    assert (out / "sweep.csv").read_text().splitlines()[0].startswith("eps,steps,emd,modes,hq")
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    # the generator row is the sampler's starting point: steps 0
    assert rows[0]["steps"] == 0


def test_sweep_plain_table(ckpt, tmp_path):
    r = invoke("sweep", "--ckpt", ckpt, "--eps", 1e-3, "--steps", 2, "--n", 20, "--out", tmp_path / "t")
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:5] == ["eps", "steps", "emd", "modes", "hq"]
    assert lines[1].split()[0] == "generator" and lines[2].split()[0] == "0.001"


def test_missing_checkpoint(tmp_path):
    line = one_line_error(invoke("sample", "--ckpt", tmp_path / "nope.pt"))
    assert line == f"Error: checkpoint not found: {tmp_path / 'nope.pt'}"


def test_garbage_and_truncated_checkpoints(ckpt, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    assert "is not a readable PyTorch checkpoint" in one_line_error(invoke("sample", "--ckpt", junk))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ckpt.read_bytes()[:500])
    assert "is not a readable PyTorch checkpoint" in one_line_error(invoke("sample", "--ckpt", cut))


def test_foreign_checkpoint_is_named(tmp_path):
    other = tmp_path / "classifier.pt"
    torch.save({"fc.weight": torch.zeros(10, 4)}, other)
    line = one_line_error(invoke("sample", "--ckpt", other))
    assert "no checkpoint format ddls knows" in line and "fc.weight" in line and "ddls train" in line


@pytest.mark.parametrize("eps", ["0", "-0.1"])
def test_eps_must_be_positive(ckpt, eps):
    line = one_line_error(invoke("sample", "--ckpt", ckpt, "--eps", eps), code=2)
    assert "--eps" in line and "1e-30<=x<=1e+30" in line


def test_steps_must_be_at_least_one_for_sweep_and_train(ckpt, tmp_path):
    assert "--steps" in one_line_error(invoke("sweep", "--ckpt", ckpt, "--steps", 0), code=2)
    assert "--steps" in one_line_error(invoke("train", "--data", "gmm25", "--steps", 0, "--out", tmp_path / "x.pt"),
                                       code=2)


def test_unknown_data_name(tmp_path):
    line = one_line_error(invoke("train", "--data", "mnist3d", "--steps", 1, "--out", tmp_path / "x.pt"))
    assert line == ("Error: unknown data 'mnist3d'; use gmm25, ring8, swissroll, a .npy of your own points (N, d), "
                    "fashion-mnist, cifar10 or folder:PATH")
    assert not (tmp_path / "x.pt").exists()


def test_diverging_chains_name_eps_and_step(ckpt, tmp_path):
    out = tmp_path / "never.npz"
    line = one_line_error(invoke("sample", "--ckpt", ckpt, "--eps", 1e6, "--steps", 200, "--n", 10, "--out", out))
    assert line.startswith("Error: energy became NaN or inf by step ")
    assert "eps=1e+06" in line and "smaller eps" in line
    assert not out.exists()


def test_failed_run_keeps_the_previous_output(ckpt, tmp_path):
    out = tmp_path / "keep.npz"
    invoke("sample", "--ckpt", ckpt, "--steps", 1, "--n", 5, "--out", out)
    before = out.read_bytes()
    one_line_error(invoke("sample", "--ckpt", ckpt, "--eps", 1e6, "--steps", 200, "--n", 5, "--out", out))
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.npz"]


def test_eval_refuses_nan_samples(tmp_path):
    from ddls.io.outputs import write_npz

    path = tmp_path / "nan.npz"
    x = np.zeros((10, 2))
    x[[2, 7], 1] = np.nan
    write_npz(path, {"x": x}, {"data": "gmm25"})
    line = one_line_error(invoke("eval", "--samples", path))
    assert line == f"Error: {path}: 2 of 10 samples are NaN or inf; sample again with a smaller eps"


def test_an_interrupted_run_is_named_in_library_and_command_line_terms(ckpt, tmp_path):
    """The library says to resume the run; the command line names its own flag for that."""
    from ddls.errors import UnfinishedRun
    from ddls.sampling.driver import RunConfig
    from ddls.sampling.run import SampleJob, run_sampling

    out = tmp_path / "s.npz"
    (tmp_path / "s.npz.resume.pt").write_bytes(b"saved work")
    with pytest.raises(UnfinishedRun, match="holds an interrupted run; resume it to finish it") as info:
        run_sampling(SampleJob(ckpt=str(ckpt), out=str(out), run=RunConfig(n=4, steps=2, eps=0.01), device="cpu"))
    assert "--" not in str(info.value).replace(str(tmp_path), "")
    line = one_line_error(invoke("sample", "--ckpt", ckpt, "--steps", 2, "--n", 4, "--out", out))
    assert line.endswith("s.npz.resume.pt holds an interrupted run; add --resume to finish it, or delete it to start over")
    assert (tmp_path / "s.npz.resume.pt").read_bytes() == b"saved work" and not out.exists()
