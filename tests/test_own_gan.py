"""Your own GAN end to end: a factory (tests/own_gan_factory.py), ddls.train, ddls.save, and every command
through `--model` or the factory recorded in the checkpoint (run only with --trust-factory, see
tests/test_factory_trust.py); each mistake is one line."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ddls
from ddls.errors import DDLSError
from conftest import SUBPROCESS_ENV, invoke, one_line_error
from own_gan_factory import make_gan

FACTORY_FILE = Path(__file__).with_name("own_gan_factory.py")
SAMPLE = ["--steps", "4", "--eps", "0.01", "--n", "12", "--seed", "3"]
TRUST = "--trust-factory"  # the factory a file records runs only when the user says so


@pytest.fixture(autouse=True)
def no_trust_from_outside(monkeypatch):
    monkeypatch.delenv("DDLS_TRUST_FACTORY", raising=False)


def _train(device, steps=6, seed=0):
    g, d = make_gan(hidden=8)
    return ddls.train(g, d, "gmm25", loss="ns", steps=steps, seed=seed, batch_size=16, device=device)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained model saved with ddls.save, and the same weights as a bare {'G', 'D'} state-dict file."""
    from conftest import DEVICE

    folder = tmp_path_factory.mktemp("own")
    model = _train(DEVICE)
    ddls.save(model, folder / "mine.pt")
    torch.save({"G": model.generator.state_dict(), "D": model.discriminator.state_dict()}, folder / "weights.pt")
    return model, folder


def _samples(path):
    with np.load(path) as f:
        return f["x"]


def test_train_changes_the_networks_and_repeats_with_the_seed(device):
    before = [p.detach().clone() for p in make_gan(hidden=8)[0].parameters()]
    a, b = _train(device), _train(device)
    after = list(a.generator.parameters())
    assert any(not torch.equal(x.to(device), y) for x, y in zip(before, after))
    for x, y in zip(after, b.generator.parameters()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert a.energy_kind == "gan" and a.data == "gmm25" and a.meta["step"] == 6


def test_save_then_cli_sample_with_and_without_model_gives_the_python_samples(saved, device, tmp_path):
    model, folder = saved
    expected = ddls.sample(model.energy(), ddls.RunConfig(n=12, steps=4, eps=0.01, seed=3)).samples.cpu().numpy()
    runs = {"recorded": [TRUST], "module": ["--model", "own_gan_factory:make_gan"],
            "file": ["--model", f"{FACTORY_FILE}:make_gan"]}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.npz"
        r = invoke("sample", "--ckpt", folder / "mine.pt", *extra, *SAMPLE, "--device", device, "--out", out)
        assert r.exit_code == 0, r.output
        np.testing.assert_allclose(_samples(out), expected, rtol=0, atol=1e-6)


def test_a_bare_state_dict_file_needs_the_factory(saved, device, tmp_path):
    model, folder = saved
    r = invoke("sample", "--ckpt", folder / "weights.pt", *SAMPLE, "--out", tmp_path / "x.npz")
    line = one_line_error(r)
    assert "found [D, G]" in line and "model factory" in line
    # the bare file records no factory arguments: the factory's defaults must build the trained shapes
    r = invoke("sample", "--ckpt", folder / "weights.pt", "--model", "own_gan_factory:make_unmarked", *SAMPLE,
               "--out", tmp_path / "x.npz")
    assert "generator weights do not fit" in one_line_error(r)
    torch.save({"generator": make_gan()[0].state_dict(), "discriminator": make_gan()[1].state_dict()},
               tmp_path / "default.pt")
    r = invoke("sample", "--ckpt", tmp_path / "default.pt", "--model", f"{FACTORY_FILE}:make_unmarked", *SAMPLE,
               "--device", device, "--out", tmp_path / "d.npz")
    assert r.exit_code == 0, r.output
    assert _samples(tmp_path / "d.npz").shape == (12, 2)


def test_sweep_compare_inspect_and_calibrate_take_the_model(saved, tmp_path):
    model, folder = saved
    ckpt = folder / "mine.pt"
    r = invoke("inspect", "--ckpt", folder / "weights.pt", "--model", "own_gan_factory:make_unmarked", "--json")
    assert r.exit_code == 1  # make_unmarked builds hidden=16; the weights are hidden=8
    r = invoke("inspect", "--ckpt", ckpt, TRUST, "--json")
    assert r.exit_code == 0, r.output
    assert '"format": "own"' in r.output and '"factory": "own_gan_factory:make_gan"' in r.output
    r = invoke("sweep", "--ckpt", ckpt, "--model", "own_gan_factory:make_gan", "--steps", "2", "--n", "50",
               "--eps", "0.01", "--device", "cpu", "--out", tmp_path / "sw", "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sw" / "sweep.csv").exists()
    r = invoke("compare", "--ckpt", ckpt, TRUST, "--methods", "ddls", "--steps", "2", "--n", "40", "--device", "cpu",
               "--out", tmp_path / "cmp", "--json")
    assert r.exit_code == 0, r.output
    r = invoke("calibrate", "--ckpt", ckpt, TRUST, "--steps", "3", "--batch-size", "8", "--out", tmp_path / "cal.pt")
    assert r.exit_code == 0, r.output
    calibrated = ddls.load_any(tmp_path / "cal.pt", trust_factory=True)
    assert calibrated.meta["format"] == "own" and calibrated.meta["config"]["calibration"]["steps"] == 3
    assert not torch.equal(calibrated.discriminator.net[0].weight, model.discriminator.net[0].weight.cpu())
    torch.testing.assert_close(calibrated.generator.net[0].weight, model.generator.net[0].weight.cpu())
    # head: only D's last layer is refitted, and the file is again one of your own
    r = invoke("calibrate", "--ckpt", ckpt, TRUST, "--method", "head", "--n", "300", "--n-heldout", "100",
               "--out", tmp_path / "head.pt")
    assert r.exit_code == 0, r.output
    head = ddls.load_any(tmp_path / "head.pt", trust_factory=True)
    assert head.meta["format"] == "own" and head.meta["config"]["calibration"]["kind"] == "head"
    torch.testing.assert_close(head.discriminator.net[0].weight, model.discriminator.net[0].weight.cpu())
    assert head.meta["config"]["calibration"]["improved"] != torch.equal(
        head.discriminator.net[2].weight, model.discriminator.net[2].weight.cpu())
    # platt: the map is stored in the file and the loaded energy applies it
    r = invoke("calibrate", "--ckpt", ckpt, TRUST, "--method", "platt", "--n", "300", "--out", tmp_path / "platt.pt")
    assert r.exit_code == 0, r.output
    platt = ddls.load_any(tmp_path / "platt.pt", trust_factory=True)
    assert platt.meta["format"] == "own" and platt.score_map.kind == "platt" and platt.energy_kind == "gan"
    rec = platt.meta["config"]["calibration"]
    assert (platt.score_map.a, platt.score_map.b) == (rec["a"], rec["b"])
    x = torch.randn(5, 2)
    raw = model.discriminator.cpu()(x).reshape(-1)
    torch.testing.assert_close(platt.energy().score(x), rec["a"] * raw + rec["b"])


def test_save_keeps_a_calibration_map_and_refuses_a_function_of_your_own(saved, tmp_path):
    from ddls.calibration.maps import Calibration
    from ddls.errors import DDLSError

    model, _ = saved
    energy = model.energy().replaced(score_map=Calibration("platt", a=2.5, b=-1.0))
    ddls.save(energy, tmp_path / "e.pt")
    back = ddls.load_any(tmp_path / "e.pt", trust_factory=["own_gan_factory"])
    assert back.score_map == Calibration("platt", a=2.5, b=-1.0)
    x = torch.randn(4, 2)
    torch.testing.assert_close(back.energy().score(x), energy.score(x))
    with pytest.raises(DDLSError, match="score maps made by ddls's calibrations only"):
        ddls.save(model.energy().replaced(score_map=lambda s: 2 * s), tmp_path / "f.pt")


def test_factories_may_return_a_model_or_wrap_arguments(tmp_path):
    for name in ("make_wrapped", "make_kwargs"):
        model = ddls.load_any(_default_weights(tmp_path), factory=f"own_gan_factory:{name}")
        assert model.energy_kind == "wgan" and model.meta["factory"] == f"own_gan_factory:{name}"


def _default_weights(tmp_path):
    path = tmp_path / "default.pt"
    if not path.exists():
        g, d = make_gan()
        torch.save({"G": g.state_dict(), "D": d.state_dict()}, path)
    return path


@pytest.mark.parametrize("factory, message", [
    ("no_such_module_here:make", "model factory module 'no_such_module_here' not found"),
    ("tests/no_such_file.py:make", "model factory file tests/no_such_file.py not found"),
    ("own_gan_factory:make_nothing", "has no model factory 'make_nothing'"),
    ("own_gan_factory:NOT_CALLABLE", "is not callable (int)"),
    ("own_gan_factory:make_wrong", "returned int; it must return (generator, discriminator)"),
    ("own_gan_factory:make_one", "returned a tuple of TwoLayerD; it must return"),
    ("own_gan_factory:make_broken", "failed: RuntimeError: no GPU here"),
    ("own_gan_factory", "is named module:function or path/to/file.py:function"),
])
def test_factory_mistakes_are_one_line(factory, message, tmp_path):
    r = invoke("sample", "--ckpt", _default_weights(tmp_path), "--model", factory, *SAMPLE,
               "--out", tmp_path / "x.npz")
    assert message in one_line_error(r)
    assert not (tmp_path / "x.npz").exists()


def test_a_checkpoint_only_names_marked_factories(saved, tmp_path):
    model, folder = saved
    payload = torch.load(folder / "mine.pt", weights_only=True)
    for spec, trusted, untrusted in [
            ("own_gan_factory:make_unmarked", "is not marked @ddls.factory", "add --trust-factory"),
            ("subprocess:run", "a standard-library module", "a standard-library module")]:
        torch.save({**payload, "factory": spec}, tmp_path / "named.pt")
        r = invoke("sample", "--ckpt", tmp_path / "named.pt", TRUST, *SAMPLE, "--out", tmp_path / "x.npz")
        assert trusted in one_line_error(r)
        r = invoke("sample", "--ckpt", tmp_path / "named.pt", *SAMPLE, "--out", tmp_path / "x.npz")
        assert untrusted in one_line_error(r)
    # given by the user, the unmarked factory runs
    r = invoke("sample", "--ckpt", tmp_path / "named.pt", "--model", "own_gan_factory:make_gan", *SAMPLE,
               "--device", "cpu", "--out", tmp_path / "x.npz")
    assert r.exit_code == 0, r.output


def test_library_mistakes_are_one_line(tmp_path):
    from own_gan_factory import make_unmarked

    g, d = make_unmarked()
    with pytest.raises(DDLSError, match="marked @ddls.factory"):
        ddls.save(ddls.wrap(g, d), tmp_path / "x.pt")
    with pytest.raises(DDLSError, match="unknown training option.*n_critc"):
        ddls.train(g, d, "gmm25", steps=1, n_critc=2)
    with pytest.raises(DDLSError, match=r"makes samples of shape \(2,\), the data has \(3,\)"):
        ddls.train(g, d, torch.zeros(10, 3), steps=1)
    with pytest.raises(DDLSError, match="ddls.save takes a Model"):
        ddls.save((g, d), tmp_path / "x.pt")


def test_train_on_a_tensor_of_real_samples(device):
    g, d = make_gan(hidden=8)
    real = torch.tensor([[1.0, -1.0]]).repeat(64, 1)
    model = ddls.train(g, d, real, loss="wgan-gp", steps=3, batch_size=8, device=device, n_critic=2)
    assert model.energy_kind == "wgan" and model.data is None and model.meta["config"]["n_critic"] == 2


def test_saved_checkpoint_samples_in_a_fresh_process(saved, tmp_path):
    """`python -m ddls sample --ckpt mine.pt`: nothing imported in advance, the factory found on PYTHONPATH
    and trusted by DDLS_TRUST_FACTORY."""
    _, folder = saved
    env = dict(SUBPROCESS_ENV, PYTHONPATH=f"{SUBPROCESS_ENV['PYTHONPATH']}:{FACTORY_FILE.parent}",
               DDLS_TRUST_FACTORY="own_gan_factory")
    p = subprocess.run([sys.executable, "-m", "ddls", "sample", "--ckpt", str(folder / "mine.pt"), *SAMPLE,
                        "--device", "cpu", "--out", str(tmp_path / "s.npz")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert _samples(tmp_path / "s.npz").shape == (12, 2)
