"""`--fast auto`: the registry, the probe (with an injected clock on the CPU), the precision gate,
and what a run records; the GPU switches refused on the CPU by every method."""
import json
import time

import numpy as np
import pytest
import torch

from conftest import invoke, one_line_error
from test_fastpath import _energy


from ddls.posthoc import METHODS
from ddls.sampling.autofast import PATHS, PathSpec, choose, resolve, wall_measure
from ddls.sampling.driver import RunConfig
from ddls.sampling.fastpath import FastPath

BIG = RunConfig(n=4000, steps=500, eps=0.05, chunk_size=8)  # long enough to pay for a probe


def _paths(**precisions):
    """CPU-runnable paths: plain plus bf16 ones named as given (name -> precision)."""
    out = {"plain": PATHS["plain"]}
    for name, prec in precisions.items():
        out[name] = PathSpec(name, FastPath(autocast="bf16"), lambda e: True, prec)
    return out


def fake_measure(seconds: dict):
    calls = []

    def measure(name, run):
        calls.append(name)
        return seconds[name]
    measure.calls = calls
    return measure


def test_on_the_cpu_auto_takes_the_plain_path_without_probing():
    measure = fake_measure({})
    choice = choose(_energy("cpu"), BIG, measure=measure)
    assert (choice.path, choice.fast, measure.calls) == ("plain", FastPath(), [])
    assert "only path on cpu" in choice.reason


def test_the_fastest_path_that_passed_its_precision_check_wins():
    measure = fake_measure({"plain": 2.0, "fast_bf16": 0.5})
    gate_calls = []

    def gate(precision):
        gate_calls.append(precision)
        return True, {"passed": True}
    choice = choose(_energy("cpu"), BIG, paths=_paths(fast_bf16="bf16"), measure=measure, precision_ok=gate)
    assert choice.path == "fast_bf16" and choice.fast == FastPath(autocast="bf16")
    assert choice.probe == {"plain": 8 / 2.0, "fast_bf16": 8 / 0.5}  # sample-steps/s at chunk 8
    assert gate_calls == ["bf16"] and choice.precision == {"bf16": {"passed": True}}


def test_a_failed_precision_check_keeps_reduced_precision_out_even_when_faster():
    measure = fake_measure({"plain": 2.0, "a": 0.1, "b": 0.2})
    gate_calls = []

    def gate(precision):
        gate_calls.append(precision)
        return False, {"passed": False}
    choice = choose(_energy("cpu"), BIG, paths=_paths(a="bf16", b="bf16"), measure=measure, precision_ok=gate)
    assert choice.path == "plain" and measure.calls == ["plain"]
    assert gate_calls == ["bf16"]  # checked once per precision, not per path
    assert "precision check failed" in choice.reason
    # No check at all (no reference for the model): reduced precision is not tried either.
    choice = choose(_energy("cpu"), BIG, paths=_paths(a="bf16"), measure=fake_measure({"plain": 1.0}))
    assert choice.path == "plain" and "not tried" in choice.reason


def test_a_short_run_is_not_probed():
    choice = choose(_energy("cpu"), RunConfig(n=8, steps=10, eps=0.05, chunk_size=8), paths=_paths(a="fp32"),
                    measure=fake_measure({}))
    assert choice.path == "plain" and "too short" in choice.reason


def test_a_path_that_cannot_run_is_left_out_and_named():
    def measure(name, run):
        if name == "broken":
            raise RuntimeError("no compiler")
        return 1.0
    paths = {"plain": PATHS["plain"], "broken": PathSpec("broken", FastPath(channels_last=True), lambda e: True)}
    choice = choose(_energy("cpu"), BIG, paths=paths, measure=measure)
    assert choice.path == "plain" and "broken: RuntimeError" in choice.reason


def test_the_wall_clock_probe_times_real_steps():
    """A path whose energy sleeps 50 ms per call measures near 50 ms per step (at least half, whatever the
    machine's load does to one of the two timings); plain far below."""
    class Sleepy:
        def __init__(self, energy):
            self.energy = energy

        def __call__(self, z):
            time.sleep(0.05)
            return self.energy(z)

    class SleepySpec(PathSpec):
        def build(self, energy):
            return Sleepy(energy)

    paths = {"plain": PATHS["plain"], "sleepy": SleepySpec("sleepy", FastPath(channels_last=True), lambda e: True)}
    choice = choose(_energy("cpu"), BIG, paths=paths, measure=wall_measure(torch.device("cpu"), steps=3))
    assert choice.path == "plain"
    assert 8 / choice.probe["sleepy"] >= 0.025
    assert choice.probe["plain"] > 2 * choice.probe["sleepy"]


def test_hand_set_switches_override_auto_and_off_is_plain():
    energy = _energy("cpu")
    manual = resolve("auto", FastPath(autocast="bf16"), energy, BIG)
    assert (manual.mode, manual.path, manual.fast) == ("manual", "bf16", FastPath(autocast="bf16"))
    off = resolve("off", FastPath(), energy, BIG)
    assert (off.mode, off.path) == ("off", "plain")
    assert FastPath(compile=True, autocast="bf16", channels_last=True).name == "compile+bf16+channels_last"


def test_adding_a_path_is_one_registry_entry(monkeypatch):
    monkeypatch.setitem(PATHS, "everywhere", PathSpec("everywhere", FastPath(channels_last=True), lambda e: True))
    choice = choose(_energy("cpu"), BIG, measure=fake_measure({"plain": 1.0, "everywhere": 0.5}))
    assert choice.path == "everywhere"
    cuda_only = [n for n, s in PATHS.items() if n not in ("plain", "everywhere")]
    assert cuda_only and not any(PATHS[n].applies(_energy("cpu")) for n in cuda_only)


def test_sample_records_the_choice_in_meta_and_progress_line(tmp_path):
    out = tmp_path / "s.npz"
    result = invoke("sample", "--ckpt", "pretrained/gmm25_wgangp.pt", "-n", 16, "--steps", 3, "--device", "cpu",
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert "fast path: plain" in result.output
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["fast"]["path"] == "plain" and meta["fast"]["mode"] == "auto"
    result = invoke("sample", "--ckpt", "pretrained/gmm25_wgangp.pt", "-n", 16, "--steps", 3, "--device", "cpu",
                    "--out", out, "--autocast", "bf16")
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["fast"]["mode"] == "manual" and meta["fast"]["fast"]["autocast"] == "bf16"
    assert "(bf16 path)" in result.output


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("switch,message", [(["--cuda-graphs"], "CUDA graphs need a CUDA device"),
                                            (["--autocast", "fp16"], "fp16 autocast needs a CUDA device")])
def test_gpu_switches_are_refused_on_the_cpu_by_every_method(tmp_path, method, switch, message):
    result = invoke("sample", "--ckpt", "pretrained/gmm25_wgangp.pt", "-n", 8, "--steps", 2, "--device", "cpu",
                    "--method", method, "--out", tmp_path / "x.npz", *switch)
    assert message in one_line_error(result)
    assert not (tmp_path / "x.npz").exists()
