"""Ctrl-C in `ddls sample` and `ddls train`: the run stops between steps, saves its progress, says how to
finish in one line (exit code 130), and `--resume` then gives the uninterrupted result."""
import signal

import numpy as np
import pytest
import torch

from conftest import DEVICE, invoke
from ddls.sampling.energy import LatentEnergy

SAMPLE = ["--steps", "30", "--n", "20", "--chunk-size", "10", "--record-every", "5", "--eps", "0.01", "--seed", "3",
          "--device", str(DEVICE)]
TRAIN = ["--data", "gmm25", "--steps", "12", "--hidden", "8", "--depth", "1", "--batch-size", "16", "--seed", "1",
         "--device", str(DEVICE)]


def ctrl_c():
    signal.raise_signal(signal.SIGINT)  # what the terminal sends


def raw_interrupt():
    raise KeyboardInterrupt  # lands mid-step: only a periodic save can be resumed


pytestmark = pytest.mark.usefixtures("no_train_metrics", "ctrl_c_delivered")


@pytest.fixture
def ctrl_c_delivered():
    """Python's own Ctrl-C handler for the test: a shell that starts pytest in the background (`cmd &`)
    ignores SIGINT, and ddls then rightly leaves it ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    r = invoke("train", *TRAIN, "--out", path)
    assert r.exit_code == 0, r.output
    return path


def _on_call(monkeypatch, owner, name, at, action):
    """Replace owner.name by a wrapper that runs `action` at its `at`-th call (counting from 1)."""
    original, calls = getattr(owner, name), [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            action()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def _interrupted(result):
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("action, every, call", [(ctrl_c, 1000, 13), (ctrl_c, 1000, 45), (raw_interrupt, 5, 26)],
                         ids=["ctrl-c-chunk-0", "ctrl-c-chunk-1", "raw-after-a-periodic-save"])
def test_interrupted_sample_resumes_to_the_uninterrupted_file(ckpt, tmp_path, monkeypatch, action, every, call):
    flags = [*SAMPLE, "--checkpoint-every", every]
    ref, out = tmp_path / "ref.npz", tmp_path / "out.npz"
    assert invoke("sample", "--ckpt", ckpt, *flags, "--out", ref).exit_code == 0
    with monkeypatch.context() as m:
        # 31 energy evaluations per chunk, one at its start and one per step: call 13 is step 12 of chunk 0
        _on_call(m, LatentEnergy, "__call__", call, action)
        line = _interrupted(invoke("sample", "--ckpt", ckpt, *flags, "--out", out))
    assert f"progress saved in {out}.resume.pt; run the same command with --resume" in line
    assert not out.exists()
    saved = torch.load(f"{out}.resume.pt", weights_only=True)
    # Ctrl-C: saved at the end of the step it came in, not at a periodic save
    expected = divmod(call - 1, 31) if action is ctrl_c else (0, 20)
    assert (saved["chunk"], saved["chain"]["step"]) == expected
    r = invoke("sample", "--ckpt", ckpt, *flags, "--out", out, "--resume")
    assert r.exit_code == 0, r.output
    with np.load(ref) as a, np.load(out) as b:
        for key in ("x", "z", "trajectory"):
            np.testing.assert_array_equal(a[key], b[key])


def test_interrupted_sample_with_saving_off_says_nothing_was_saved(ckpt, tmp_path, monkeypatch):
    _on_call(monkeypatch, LatentEnergy, "__call__", 5, ctrl_c)
    line = _interrupted(invoke("sample", "--ckpt", ckpt, *SAMPLE, "--checkpoint-every", 0, "--out", tmp_path / "o.npz"))
    assert line == "interrupted before any progress was saved"


@pytest.mark.parametrize("action, every", [(ctrl_c, 1000), (raw_interrupt, 4)], ids=["ctrl-c", "raw"])
def test_interrupted_train_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, action, every):
    import ddls.training.run as train_run

    flags = [*TRAIN, "--checkpoint-every", every]
    ref, out = tmp_path / "ref.pt", tmp_path / "out.pt"
    assert invoke("train", *flags, "--out", ref).exit_code == 0
    real = train_run.training_data

    def interrupting(config):  # the 8th draw of real data opens step 8 (one critic step per step)
        draw, shape, dataset = real(config)
        calls = [0]

        def draw_once(n, gen):
            calls[0] += 1
            if calls[0] == 8:
                action()
            return draw(n, gen)

        return draw_once, shape, dataset

    with monkeypatch.context() as m:
        m.setattr(train_run, "training_data", interrupting)
        line = _interrupted(invoke("train", *flags, "--out", out))
    assert f"progress saved in {out}.resume.pt; run the same command with --resume" in line
    saved = torch.load(f"{out}.resume.pt", weights_only=True)
    assert saved["step"] == (8 if action is ctrl_c else 4)  # Ctrl-C finishes step 8, then stops
    r = invoke("train", *flags, "--out", out, "--resume")
    assert r.exit_code == 0, r.output
    a, b = torch.load(ref, weights_only=True), torch.load(out, weights_only=True)
    for net in ("generator", "discriminator"):
        for key in a[net]:
            torch.testing.assert_close(a[net][key], b[net][key], rtol=0, atol=0)


def test_a_second_ctrl_c_stops_at_once_and_the_handler_is_restored():
    from ddls._interrupt import deferred_interrupt, stop_requested

    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            ctrl_c()
            assert stop_requested()  # the first press only asks
            ctrl_c()
            pytest.fail("the second Ctrl-C did not stop the run")
    assert not stop_requested()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
