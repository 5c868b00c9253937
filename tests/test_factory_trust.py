"""A checkpoint names its model factory as data: no code runs because a file says so.

Planted modules write a marker file when their top-level code runs. A `ddls.save` file (or a
TUNED.pt naming one) that points at them, in every form a factory can be named, is refused by
every command and by `ddls.load_any` before anything is imported, in one line naming the flag.
With `--trust-factory`, DDLS_TRUST_FACTORY or `--model`, the user's own factory loads and samples.
"""
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ddls
from conftest import SUBPROCESS_ENV, invoke, one_line_error
from ddls.errors import DDLSError
from ddls.models.factory import TRUST_VARIABLE, Trust, current_trust

_ids = itertools.count()

FACTORY_SOURCE = '''
import pathlib
import sys
pathlib.Path({marker!r}).write_text("ran")
from torch import nn
import ddls

{exit}

@ddls.factory
def make(hidden=8):
    return (nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
            nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1)))
'''
BARE = {"G": {"w": torch.zeros(1)}, "D": {"w": torch.zeros(1)}}  # state dicts that no factory is asked to fit
SAMPLE = ["--n", "6", "--steps", "3", "--eps", "0.01", "--seed", "2", "--device", "cpu"]


@pytest.fixture(autouse=True)
def no_trust_from_outside(monkeypatch):
    monkeypatch.delenv(TRUST_VARIABLE, raising=False)


def plant(path: Path, markers: Path, *, exits: bool = False) -> Path:
    """A module at `path` that writes markers/<its name> when imported (and exits the process if `exits`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = markers / f"{path.parent.name}.{path.name}.ran"
    path.write_text(FACTORY_SOURCE.format(marker=str(marker), exit="sys.exit(0)" if exits else ""))
    return marker


def own_payload(tmp_path: Path) -> dict:
    """A valid `ddls.save` payload (2-D networks, hidden 8), to point elsewhere."""
    from own_gan_factory import make_gan

    g, d = make_gan(hidden=8)
    ddls.save(ddls.wrap(g, d), tmp_path / "valid.pt")
    return torch.load(tmp_path / "valid.pt", weights_only=True)


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """(markers folder, {form: factory spec}, the folder to run in): one planted module per form."""
    markers = tmp_path / "markers"
    markers.mkdir()
    uid = next(_ids)
    code = tmp_path / "code"
    work = tmp_path / "work"
    plant(code / "evil_abs.py", markers)
    plant(work / "evil_rel.py", markers)
    plant(work / f"evil_cwd_{uid}.py", markers)  # a bare module name that only the current folder holds
    plant(code / f"evil_mod_{uid}.py", markers)
    plant(code / f"evilpkg_{uid}" / "__init__.py", markers)
    plant(code / f"evilpkg_{uid}" / "__main__.py", markers, exits=True)
    (code / "link.py").symlink_to(code / f"evilpkg_{uid}" / "__main__.py")
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.chdir(work)
    forms = {
        "absolute": f"{code / 'evil_abs.py'}:make",
        "relative": "evil_rel.py:make",
        "relative_up": "../code/evil_abs.py:make",
        "module_in_cwd": f"evil_cwd_{uid}:make",
        "module_on_path": f"evil_mod_{uid}:make",
        "package_main": f"evilpkg_{uid}.__main__:make",
        "package_main_file": f"{code / f'evilpkg_{uid}' / '__main__.py'}:make",
        "link_to_main": f"{code / 'link.py'}:make",
        "numpy_f2py_main": "numpy.f2py.__main__:x",
        "tqdm_main": "tqdm.__main__:x",
        "ddls_main": "ddls.__main__:x",
    }
    return markers, forms, work


def hostile_files(tmp_path, forms) -> dict[str, Path]:
    payload = own_payload(tmp_path)
    files = {}
    for form, spec in forms.items():
        files[form] = tmp_path / f"hostile_{form}.pt"
        torch.save({**payload, "factory": spec}, files[form])
    return files


MAIN_FORMS = ("package_main", "package_main_file", "link_to_main", "numpy_f2py_main", "tqdm_main", "ddls_main")


def assert_refused(line: str, spec: str, form: str = "") -> None:
    if form in MAIN_FORMS:  # no flag makes ddls import a program's __main__
        assert "__main__ module" in line and "never imports" in line, line
    else:
        assert f"names its model factory {spec}" in line, line
        assert "add --trust-factory" in line and f"--model {spec}" in line, line


COMMANDS = {
    "inspect": lambda ckpt, out: ["inspect", "--ckpt", ckpt],
    "sample": lambda ckpt, out: ["sample", "--ckpt", ckpt, "--n", "2", "--steps", "1", "--out", out / "s.npz"],
    "sample_drs": lambda ckpt, out: ["sample", "--ckpt", ckpt, "--method", "drs", "--n", "2", "--out", out / "d.npz"],
    "tune": lambda ckpt, out: ["tune", "--ckpt", ckpt, "--budget", "5s", "--out", out / "tuned.pt"],
    "sweep": lambda ckpt, out: ["sweep", "--ckpt", ckpt, "--steps", "1", "--n", "2", "--out", out / "sweep"],
    "calibrate": lambda ckpt, out: ["calibrate", "--ckpt", ckpt, "--steps", "1", "--out", out / "cal.pt"],
    "compare": lambda ckpt, out: ["compare", "--ckpt", ckpt, "--methods", "ddls", "--steps", "1", "--n", "2",
                                  "--out", out / "cmp"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_runs_the_code_a_checkpoint_names(planted, tmp_path, command):
    markers, forms, _ = planted
    out = tmp_path / "out"
    out.mkdir()
    for form, ckpt in hostile_files(tmp_path, forms).items():
        r = invoke(*COMMANDS[command](ckpt, out))
        assert not list(markers.iterdir()), f"{form}: the planted module ran"
        assert_refused(one_line_error(r), forms[form], form)
        assert len(r.output.strip().splitlines()) == 1, (form, r.output)
    assert not list(out.iterdir()), "a refused command wrote something"


def test_load_any_and_a_tuned_file_run_nothing(planted, tmp_path):
    from ddls.tuning.recipe import Recipe, write_tuned

    markers, forms, _ = planted
    for form, ckpt in hostile_files(tmp_path, forms).items():
        with pytest.raises(DDLSError) as caught:
            ddls.load_any(ckpt)
        assert_refused(str(caught.value), forms[form], form)
        tuned = tmp_path / f"tuned_{form}.pt"
        assert write_tuned(ckpt, tuned, Recipe("ddls", options={"steps": 1}), {}) == "reference"
        for args in (["inspect", "--ckpt", tuned], ["sample", "--ckpt", tuned, "--out", tmp_path / "t.npz"]):
            line = one_line_error(invoke(*args))
            assert_refused(line, forms[form], form)
            assert str(ckpt) in line or form in MAIN_FORMS
        with pytest.raises(DDLSError):
            ddls.load_any(tuned)
        assert not list(markers.iterdir()), f"{form}: the planted module ran"
    assert not (tmp_path / "t.npz").exists()


def test_main_modules_are_never_imported_even_when_trusted_or_named(planted, tmp_path):
    markers, forms, _ = planted
    files = hostile_files(tmp_path, forms)
    weights = tmp_path / "weights.pt"
    torch.save(BARE, weights)
    for form in MAIN_FORMS:
        for args in (["inspect", "--ckpt", files[form], "--trust-factory"],
                     ["inspect", "--ckpt", weights, "--model", forms[form]]):
            r = invoke(*args)
            line = one_line_error(r)  # exit code 1, not a silent 0 from a program's sys.exit
            assert "__main__ module" in line and "never imports" in line, line
        with pytest.raises(DDLSError, match="never imports"):
            ddls.load_any(files[form], trust_factory=True)
    assert not list(markers.iterdir())


@pytest.mark.parametrize("spec", ["evil\n.py:make", "evil\x00.py:make", "x" * 20000 + ":make", 123, ["a:b"],
                                  "", ":make", "evil.py:"])
def test_a_hostile_factory_name_is_one_line_even_when_trusted(tmp_path, spec):
    payload = own_payload(tmp_path)
    torch.save({**payload, "factory": spec}, tmp_path / "odd.pt")
    line = one_line_error(invoke("inspect", "--ckpt", tmp_path / "odd.pt", "--trust-factory"))
    assert len(line) < 600 and ("model factory" in line or "factory" in line), line


# --- the user's own factory: trusted, allowed or named, it loads and samples -------------------------------

@pytest.fixture
def legit(tmp_path, monkeypatch):
    """A marked factory in its own module (on sys.path), a `ddls.save` file naming it, and the marker
    its import writes; the module is imported afresh by each test."""
    uid = next(_ids)
    name = f"goodgan_{uid}"
    code, markers = tmp_path / "legit", tmp_path / "legit_markers"
    markers.mkdir()
    marker = plant(code / f"{name}.py", markers)
    monkeypatch.syspath_prepend(str(code))
    module = __import__(name)
    model = ddls.wrap(*module.make(hidden=8))
    ckpt = tmp_path / "mine.pt"
    ddls.save(model, ckpt)
    marker.unlink()
    del sys.modules[name]
    yield {"name": name, "spec": f"{name}:make", "ckpt": ckpt, "marker": marker, "model": model, "code": code}
    sys.modules.pop(name, None)


def _expected(model) -> np.ndarray:
    run = ddls.RunConfig(n=6, steps=3, eps=0.01, seed=2)
    return ddls.sample(model.energy(), run).samples.cpu().numpy()


def _samples(path) -> np.ndarray:
    with np.load(path) as f:
        return f["x"]


def test_without_trust_the_users_own_file_is_refused_and_not_imported(legit, tmp_path, monkeypatch):
    monkeypatch.setenv("DDLS_SAMPLE_TRUST_FACTORY", "1")  # trust has one variable, not one per command
    line = one_line_error(invoke("sample", "--ckpt", legit["ckpt"], *SAMPLE, "--out", tmp_path / "s.npz"))
    assert_refused(line, legit["spec"])
    assert not legit["marker"].exists() and legit["name"] not in sys.modules


@pytest.mark.parametrize("how", ["flag", "env", "env_prefix", "model"])
def test_trusted_or_named_the_factory_samples_what_python_samples(legit, tmp_path, monkeypatch, how):
    extra = {"flag": ["--trust-factory"], "model": ["--model", legit["spec"]]}.get(how, [])
    if how == "env":
        monkeypatch.setenv(TRUST_VARIABLE, "1")
    if how == "env_prefix":
        monkeypatch.setenv(TRUST_VARIABLE, f"nothing_here,{legit['name']}")
    r = invoke("sample", "--ckpt", legit["ckpt"], *extra, *SAMPLE, "--out", tmp_path / "s.npz")
    assert r.exit_code == 0, r.output
    assert legit["marker"].exists()  # the factory's module was imported: it ran because the user said so
    np.testing.assert_allclose(_samples(tmp_path / "s.npz"), _expected(legit["model"]), rtol=0, atol=1e-6)
    r = invoke("inspect", "--ckpt", legit["ckpt"], *extra, "--json")
    assert r.exit_code == 0 and f'"factory": "{legit["spec"]}"' in r.output, r.output


@pytest.mark.parametrize("field, value, message", [
    ("model", "[]", "field 'model' must hold a JSON object"),
    ("model", '{"energy": "gan"}', "model.latent_shape must be a list"),
    ("model", '{"latent_shape": [2], "energy": 5}', "model.energy must be an energy kind"),
    ("model", '{"latent_shape": [2], "energy": "gan", "num_classes": "ten"}', "must be whole numbers"),
    ("factory_kwargs", "[1]", "field 'factory_kwargs' must hold a JSON object"),
    ("extra", 7, "field 'extra' must be a JSON string"),
])
def test_a_broken_description_is_refused_before_the_factory_runs(legit, tmp_path, field, value, message):
    payload = torch.load(legit["ckpt"], weights_only=True)
    torch.save({**payload, field: value}, tmp_path / "broken.pt")
    for extra in (["--trust-factory"], ["--model", legit["spec"]]):
        assert message in one_line_error(invoke("inspect", "--ckpt", tmp_path / "broken.pt", *extra))
    assert not legit["marker"].exists()


def test_trust_lasts_one_command(legit, tmp_path):
    assert invoke("inspect", "--ckpt", legit["ckpt"], "--trust-factory").exit_code == 0
    assert "add --trust-factory" in one_line_error(invoke("inspect", "--ckpt", legit["ckpt"]))
    assert ddls.load_any(legit["ckpt"], trust_factory=True).meta["factory"] == legit["spec"]
    assert current_trust() == Trust()
    with pytest.raises(DDLSError, match="add --trust-factory"):
        ddls.load_any(legit["ckpt"])


def test_the_variable_trusts_prefixes_and_folders_and_python_overrides_it(legit, tmp_path, monkeypatch):
    ckpt, name = legit["ckpt"], legit["name"]
    # a prefix is a whole module name: goodgan does not cover goodgan_7
    for refused in ("0", "goodgan", f"{name}x", f"{name}.sub", "./elsewhere/"):
        monkeypatch.setenv(TRUST_VARIABLE, refused)
        with pytest.raises(DDLSError, match="add --trust-factory"):
            ddls.load_any(ckpt)
    monkeypatch.setenv(TRUST_VARIABLE, "yes")
    assert ddls.load_any(ckpt).meta["factory"] == legit["spec"]
    with pytest.raises(DDLSError, match="add --trust-factory"):
        ddls.load_any(ckpt, trust_factory=False)  # said in code, it wins over the environment
    monkeypatch.delenv(TRUST_VARIABLE)
    assert ddls.load_any(ckpt, trust_factory=[name]).meta["factory"] == legit["spec"]
    with pytest.raises(DDLSError, match=rf"only other\.pkg are trusted"):
        ddls.load_any(ckpt, trust_factory="other.pkg")
    # a file-named factory is trusted by its folder (or the file itself)
    payload = torch.load(ckpt, weights_only=True)
    file_spec = f"{legit['code'] / (name + '.py')}:make"
    torch.save({**payload, "factory": file_spec}, tmp_path / "by_file.pt")
    for allowed, ok in ((str(legit["code"]) + "/", True), (str(legit["code"] / f"{name}.py"), True),
                        (str(tmp_path / "other") + "/", False), (name, False)):
        monkeypatch.setenv(TRUST_VARIABLE, allowed)
        if ok:
            assert ddls.load_any(tmp_path / "by_file.pt").meta["factory"] == file_spec
        else:
            with pytest.raises(DDLSError, match="add --trust-factory"):
                ddls.load_any(tmp_path / "by_file.pt")
    with pytest.raises(DDLSError, match="trust_factory takes True, False"):
        ddls.load_any(ckpt, trust_factory=3)


def test_a_tuned_file_of_your_own_samples_when_trusted_or_named(legit, tmp_path):
    from ddls.tuning.recipe import Recipe, write_tuned

    tuned = tmp_path / "TUNED.pt"
    write_tuned(legit["ckpt"], tuned, Recipe("ddls", options={"steps": 3, "eps": 0.01}), {})
    assert "add --trust-factory" in one_line_error(invoke("sample", "--ckpt", tuned, "--out", tmp_path / "x.npz"))
    for i, extra in enumerate((["--trust-factory"], ["--model", legit["spec"]])):
        out = tmp_path / f"t{i}.npz"
        r = invoke("sample", "--ckpt", tuned, *extra, "--n", "6", "--seed", "2", "--device", "cpu", "--out", out)
        assert r.exit_code == 0, r.output
        np.testing.assert_allclose(_samples(out), _expected(legit["model"]), rtol=0, atol=1e-6)


def _weights_and_module(folder: Path, name: str) -> Path:
    """folder/<name>.py with a marked factory, and folder/weights.pt with the state dicts it fits."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = plant(folder / f"{name}.py", folder)
    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    d = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    torch.save({"G": g.state_dict(), "D": d.state_dict()}, folder / "weights.pt")
    return marker


def test_model_finds_a_module_in_the_current_folder(tmp_path, monkeypatch):
    """The `ddls` console script does not put the current folder on sys.path; --model looks there too."""
    name = f"cwdgan_{next(_ids)}"
    marker = _weights_and_module(tmp_path / "here", name)
    monkeypatch.chdir(tmp_path / "here")
    cwd = os.getcwd()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", cwd)])
    before = list(sys.path)
    try:
        r = invoke("sample", "--ckpt", "weights.pt", "--model", f"{name}:make", *SAMPLE, "--out", "s.npz")
        assert r.exit_code == 0, r.output
        assert marker.exists() and _samples("s.npz").shape == (6, 2)
        assert sys.path == before  # the current folder was on the path for the import alone
    finally:
        sys.modules.pop(name, None)


def test_a_module_that_exits_is_one_line_not_a_silent_exit(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    plant(folder / "quits.py", folder, exits=True)
    (folder / "quits_later.py").write_text("import sys\n\ndef make():\n    sys.exit(3)\n")
    torch.save(BARE, tmp_path / "w.pt")
    monkeypatch.chdir(folder)
    for spec, what in (("quits.py:make", "loading model factory file quits.py failed: SystemExit"),
                       ("quits_later.py:make", "model factory quits_later.py:make failed: SystemExit: 3")):
        assert what in one_line_error(invoke("inspect", "--ckpt", tmp_path / "w.pt", "--model", spec))
        with pytest.raises(DDLSError, match="SystemExit"):
            ddls.load_any(tmp_path / "w.pt", factory=spec)


@pytest.mark.slow
def test_a_real_process_runs_nothing_and_finds_the_users_module(tmp_path):
    """The installed `ddls` script, in a folder holding evil.py and mygan.py: the checkpoint naming
    evil.py:make is refused in one line, and --model mygan:make finds mygan.py there."""
    script = Path(sys.executable).with_name("ddls")
    if not script.exists():
        pytest.skip("no ddls console script next to this Python")
    folder = tmp_path / "work"
    marker = _weights_and_module(folder, "mygan")
    evil_marker = plant(folder / "evil.py", tmp_path)
    torch.save({**own_payload(tmp_path), "factory": "evil.py:make"}, folder / "hostile.pt")
    env = {k: v for k, v in SUBPROCESS_ENV.items() if not k.startswith("DDLS_")}  # no warnings, no trust
    env["PYTHONPATH"] = os.pathsep.join(p for p in env["PYTHONPATH"].split(os.pathsep)
                                        if p and Path(p).resolve() != folder.resolve())
    p = subprocess.run([str(script), "inspect", "--ckpt", "hostile.pt"], cwd=folder, capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "add --trust-factory" in p.stderr and not evil_marker.exists()
    p = subprocess.run([str(script), "sample", "--ckpt", "weights.pt", "--model", "mygan:make", *SAMPLE,
                        "--out", "s.npz"], cwd=folder, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert marker.exists() and _samples(folder / "s.npz").shape == (6, 2)
