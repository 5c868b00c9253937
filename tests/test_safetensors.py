"""ddls checkpoints as .safetensors: same samples as the .pt, one-line errors for bad files."""
from pathlib import Path

import numpy as np
import torch

from ddls.io.checkpoint import load_model
from conftest import invoke, one_line_error

CKPT = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"


def test_export_then_sample_gives_the_same_samples(tmp_path):
    st = tmp_path / "m.safetensors"
    assert invoke("export", "--ckpt", CKPT, "--out", st).exit_code == 0
    a, b = load_model(CKPT), load_model(st)
    for k, v in a.generator.state_dict().items():
        assert torch.equal(v, b.generator.state_dict()[k])
    assert (b.energy_kind, b.data, b.latent_shape) == (a.energy_kind, a.data, a.latent_shape)
    for src, out in ((CKPT, "a.npz"), (st, "b.npz")):
        assert invoke("sample", "--ckpt", src, "--steps", 3, "--n", 8, "--device", "cpu",
                      "--out", tmp_path / out).exit_code == 0
    with np.load(tmp_path / "a.npz") as x, np.load(tmp_path / "b.npz") as y:
        np.testing.assert_array_equal(x["x"], y["x"])


def test_truncated_and_foreign_safetensors_are_one_line(tmp_path):
    st = tmp_path / "m.safetensors"
    invoke("export", "--ckpt", CKPT, "--out", st)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(st.read_bytes()[:1000])
    assert "is not a readable .safetensors file" in one_line_error(invoke("sample", "--ckpt", cut))
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, str(foreign))
    assert "has no ddls metadata" in one_line_error(invoke("sample", "--ckpt", foreign))


def test_export_refuses_a_wrong_suffix_and_foreign_input(tmp_path):
    line = one_line_error(invoke("export", "--ckpt", CKPT, "--out", tmp_path / "x.pt"))
    assert "--out must end in .safetensors" in line
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(1)}, other)
    line = one_line_error(invoke("export", "--ckpt", other, "--out", tmp_path / "y.safetensors"))
    assert "is not a ddls checkpoint" in line
    assert not (tmp_path / "y.safetensors").exists()
