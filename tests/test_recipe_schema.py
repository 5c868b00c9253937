"""A TUNED.pt's recipe is held to the types and ranges of the `ddls sample` options it becomes, and to the
sampling driver's time limit: every field is fuzzed, and each outcome is a recipe `ddls sample` would
take as options or one line naming the file and saying to rerun `ddls tune`; never a traceback or a hang.

The fuzz's oracle is the command line itself: a single-field mutation to a number or a choice is
accepted exactly when `ddls sample <flag> <value>` parses (or is refused as running for days, checked
against the time forecast), text where a number belongs and containers are always refused."""
import functools
import json
import random
import signal
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
import pytest
import torch

from conftest import invoke, one_line_error
from ddls.errors import DDLSError
from ddls.io.checkpoint import read_checkpoint
from ddls.io.resume import file_digest
from ddls.tuning.recipe import REFERENCE_FORMAT, Recipe
from ddls.tuning.runnable import read_runnable

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"
DAYS = 10 ** 8  # ddls.sampling.budget.MAX_SEQUENTIAL_STEPS, restated as the known answer

# one small valid recipe per method, holding every setting the method reads
BASES = {
    "generator": {"method": "generator", "temperature": 1.0, "options": {}, "calibration": "raw", "tuning": {"by": "hand"}},
    "ddls": {"method": "ddls", "temperature": 0.5, "options": {"steps": 2, "eps": 1e-3, "noise_scale": 1.0}, "tuning": {},
             "calibration": "raw"},
    "mala": {"method": "mala", "temperature": 1.0, "options": {"steps": 2, "eps": 1e-3}, "calibration": "raw"},
    "drs": {"method": "drs", "temperature": 1.0, "options": {"drs_pilot": 50, "drs_gamma_percentile": 95.0},
            "calibration": "raw"},
    "mhgan": {"method": "mhgan", "temperature": 1.0, "options": {"mh_chain_length": 2}, "calibration": "raw"},
    "dot": {"method": "dot", "temperature": 1.0,
            "options": {"dot_steps": 2, "dot_lr": 0.01, "dot_optimizer": "sgd", "dot_pairs": 20},
            "calibration": "raw"},
    "dgflow": {"method": "dgflow", "temperature": 1.0,
               "options": {"dgflow_steps": 2, "dgflow_eta": 0.01, "dgflow_gamma": 0.01, "dgflow_f": "KL"},
               "calibration": "raw"},
    "sir": {"method": "sir", "temperature": 2.0, "options": {"sir_pool_factor": 2}, "calibration": "raw"},
}
FLAGS = {"temperature": "--temperature", "calibration": "--calibration", "steps": "--steps", "eps": "--eps",
         "noise_scale": "--noise-scale", "drs_pilot": "--drs-pilot", "drs_gamma_percentile": "--drs-gamma-percentile",
         "mh_chain_length": "--mh-chain-length", "dot_steps": "--dot-steps", "dot_lr": "--dot-lr",
         "dot_optimizer": "--dot-optimizer", "dot_pairs": "--dot-pairs", "dgflow_steps": "--dgflow-steps",
         "dgflow_eta": "--dgflow-eta", "dgflow_gamma": "--dgflow-gamma", "dgflow_f": "--dgflow-f",
         "sir_pool_factor": "--sir-pool-factor"}
NUMBERS = [0, 1, 2, -1, 7, 100, 2 ** 31 - 1, 2 ** 31, 10 ** 9, 10 ** 15, 10 ** 400, 0.0, 0.5, 1.0, 2.5, 1e-3, 1e-30,
           1e-31, 1e-320, 1e30, 1e31, 1e300, -1e300, -0.5, 1e15, 5.0, float("nan"), float("inf"), float("-inf")]
TEXTS = ["", "abc", "200", "50", "1e-3", "none", "NaN", "inf", "raw", "platt", "finetune", "sgd", "adam", "KL",
         "logD", "x" * 10_000, "1,2", "ddls", "generator", "\n"]
OTHERS = [None, True, False, [], [1], {}, {"a": 1}, [[[[[[[[[[1]]]]]]]]]], {"steps": 2}]


def nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@contextmanager
def deadline(seconds):
    """Fail instead of hanging: a refused recipe must be refused before anything runs."""
    def expire(*_):
        raise TimeoutError(f"no answer within {seconds} s")

    before = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


@pytest.fixture(scope="module")
def shipped_payload():
    return read_checkpoint(SHIPPED)


def write_copy(payload, path, recipe):
    """A TUNED.pt of the copy form: the shipped checkpoint with `recipe` (any JSON value) in its extra."""
    extra = json.loads(payload.get("extra") or "{}")
    torch.save({**payload, "extra": json.dumps({**extra, "recipe": recipe})}, path)


@functools.lru_cache(maxsize=1)
def shipped_digest():
    return file_digest(SHIPPED)


def reference_fields(recipe):
    """A TUNED.pt of the reference form, naming the shipped checkpoint, with `recipe` as its JSON."""
    return {"format": REFERENCE_FORMAT, "format_version": 1, "ckpt": str(SHIPPED), "ckpt_sha256": shipped_digest(),
            "disc": None, "disc_sha256": None, "recipe": json.dumps(recipe)}


@functools.lru_cache(maxsize=None)
def sample_option(flag):
    from ddls.cli import cli

    command = cli.commands["sample"]
    ctx = click.Context(command)
    return ctx, next(p for p in command.get_params(ctx) if flag in p.opts)


def cli_accepts(flag, value) -> bool:
    """Whether `ddls sample` takes `flag value`, the value written as a user would type it."""
    ctx, param = sample_option(flag)
    try:
        param.type_cast_value(ctx, value if isinstance(value, str) else repr(value))
    except click.BadParameter:
        return False
    return True


CLI = "as the command line"  # accepted exactly when `ddls sample` parses it, unless it would run for days
ANY = "any"  # several fields at once: only the invariants


def expected(field, value):
    """True: must be accepted, False: must be refused, CLI: as `ddls sample` parses it (or refused as running
    for days)."""
    if isinstance(value, (bool, list, dict)):
        return False
    if value is None:
        return field == "drs_gamma_percentile"  # 'none': exact rejection sampling
    numeric = field not in ("calibration", "dot_optimizer", "dgflow_f", "drs_gamma_percentile")
    if isinstance(value, str) and numeric:
        return False  # a number stored as text is a damaged file, whatever the text says
    if isinstance(value, (int, float)) and not numeric and field != "drs_gamma_percentile":
        return False
    return CLI if cli_accepts(FLAGS[field], value) else False


def cases(seed=0):
    """(name, how to build the stored recipe or reference file, expectation) for every recipe field."""
    out = []
    for method, base in BASES.items():
        for key in base["options"]:
            for value in NUMBERS + TEXTS + OTHERS:
                out.append((f"{method}.options.{key}={value!r:.30}", method, ("option", key, value),
                            expected(key, value)))
    for field in ("temperature", "calibration"):
        for value in NUMBERS + TEXTS + OTHERS:
            out.append((f"{field}={value!r:.30}", "ddls", ("field", field, value), expected(field, value)))
    for value in ["generator", "ddls", "mala", "drs", "mhgan", "dot", "dgflow", "sir", "DDLS", "nope", "", None, 3,
                  ["ddls"], {"m": 1}]:
        known = value in BASES if isinstance(value, str) else False
        out.append((f"method={value!r}", "generator", ("field", "method", value), known))
    for field, value in (("options", None), ("options", []), ("options", "steps=2"), ("options", 3),
                         ("tuning", None), ("tuning", []), ("tuning", "x"), ("tuning", {"any": [1, {"x": None}]})):
        out.append((f"{field}={value!r}", "ddls", ("field", field, value), field == "tuning" and value == {"any": [1, {"x": None}]}))
    for field in ("method", "temperature", "options", "calibration", "tuning"):
        out.append((f"missing {field}", "ddls", ("missing", field, None), field != "method"))
    for key in ("extra", "Method", "steps", ""):
        out.append((f"extra field {key!r}", "ddls", ("field", key, 1), False))
    for key in ("chunk_size", "seed", "n", "unknown", "drs_pilot", "mh_chain_length", "dgflow_f"):
        out.append((f"ddls with option {key}", "ddls", ("option", key, 5), False))
    out.append(("generator with steps", "generator", ("option", "steps", 0), False))
    for value in (None, [1, 2], 5, "ddls", 1.5, nested(50), nested(500)):
        out.append((f"whole recipe {value!r:.30}", "ddls", ("whole", None, value), False))
    for key, value in (("format_version", 2), ("format_version", 0), ("format_version", "1"),
                       ("format_version", 1.0), ("format_version", True), ("format_version", None),
                       ("format_version", [1]), ("ckpt", None), ("ckpt", 123), ("ckpt", ""), ("ckpt", ["a"]),
                       ("ckpt", "x" * 5000), ("ckpt_sha256", None), ("ckpt_sha256", "abc"), ("ckpt_sha256", "g" * 64),
                       ("ckpt_sha256", 123), ("disc", "/nowhere/d.pt"), ("disc_sha256", "0" * 64),
                       ("recipe", "not json"), ("recipe", "[1, 2]"), ("recipe", "5"), ("recipe", 5), ("recipe", None),
                       ("recipe", ""), ("recipe", "{" * 100_000), ("extra", 1), ("format_version", 1)):
        ok = key == "format_version" and value == 1 and type(value) is int
        out.append((f"reference {key}={value!r:.30}", "ddls", ("reference", key, value), ok))
    rng = random.Random(seed)  # several fields at once: the invariants only
    pool = NUMBERS + TEXTS + OTHERS
    for i in range(120):
        method = rng.choice(sorted(BASES))
        changes = [(k, rng.choice(pool)) for k in rng.sample(sorted(BASES[method]["options"]) + ["temperature"],
                                                             k=min(2, len(BASES[method]["options"]) + 1))]
        out.append((f"combo {i}", method, ("combo", changes, None), ANY))
    return out


def build(base, mutation):
    """(the stored recipe, reference-file field changes) for a mutation of `base`."""
    recipe = json.loads(json.dumps(base))
    kind, key, value = mutation
    fields = {}
    if kind == "option":
        recipe["options"][key] = value
    elif kind == "field":
        recipe[key] = value
    elif kind == "missing":
        del recipe[key]
    elif kind == "whole":
        recipe = value
    elif kind == "reference":
        fields = {key: value}
    elif kind == "combo":
        for k, v in key:
            if k == "temperature":
                recipe[k] = v
            else:
                recipe["options"][k] = v
    return recipe, fields


def check_outcome(path, outcome, expect, name):
    if isinstance(outcome, DDLSError):
        line = str(outcome)
        assert "\n" not in line and "Traceback" not in line, name
        assert str(path) in line and "ddls tune" in line, (name, line)
        assert expect is not True, (name, line)
        if expect == CLI:  # the command line takes it: only the time forecast may refuse it
            assert "would run for days" in line, (name, line)
        return
    assert isinstance(outcome, Recipe), name
    assert expect is not False, (name, outcome)
    # whatever was accepted, `ddls sample` takes as its options, and it finishes
    from ddls.tuning.grid import evaluations_per_sample

    for key, value in outcome.sample_options().items():
        if key in FLAGS and value is not None:
            assert cli_accepts(FLAGS[key], value), (name, key, value)
    assert evaluations_per_sample(outcome, 1) <= DAYS, name


def test_every_recipe_field_fuzzed_gives_a_recipe_or_one_line(tmp_path, shipped_payload):
    all_cases = cases()
    assert len(all_cases) >= 500
    refused = accepted = 0
    with deadline(120):
        for i, (name, method, mutation, expect) in enumerate(all_cases):
            recipe, fields = build(BASES[method], mutation)
            path = tmp_path / f"t{i}.pt"
            if mutation[0] == "reference" or i % 4:  # both forms of TUNED.pt (the copy, slower to write, less)
                payload = reference_fields(recipe)
                payload.update(fields)
                torch.save(payload, path)
            else:
                write_copy(shipped_payload, path, recipe)
            try:
                outcome = read_runnable(path)
            except DDLSError as exc:
                outcome = exc
            check_outcome(path, outcome, expect, name)
            refused += isinstance(outcome, DDLSError)
            accepted += isinstance(outcome, Recipe)
            path.unlink()
    assert refused > 300 and accepted > 100  # both sides of the schema were reached


def _describe(kind):
    """What a click type accepts, comparably: its class and bounds, or its choices as a set."""
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        return type(kind).__name__, kind.min, kind.max, kind.min_open, kind.max_open
    if isinstance(kind, click.Choice):
        return "choice", frozenset(kind.choices)
    return type(kind).__name__


def test_every_recipe_field_has_the_type_of_its_sample_option():
    """The recipe's table and `ddls sample`'s options are built from the same ranges and registry: held
    here to agree, field by field, so neither can drift from the other."""
    from ddls.cli import cli
    from ddls.tuning.schema import option_keys, recipe_options

    command = cli.commands["sample"]
    params = {p.name: p for p in command.get_params(click.Context(command))}
    table = recipe_options()
    assert set(table) == option_keys() | {"temperature", "calibration"}
    for key, (flag, kind) in table.items():
        assert flag in params[key].opts, key
        assert _describe(kind) == _describe(params[key].type), key


def test_a_reference_file_is_checked_when_loaded_too(tmp_path):
    """`ddls.load_any` (inspect, the Python API) reads the reference file's own fields by the same rules before
    it loads the files named; the recipe's values are checked where a recipe is read (read_recipe)."""
    from ddls.formats import load_any
    from ddls.tuning import read_recipe

    good = tmp_path / "good.pt"
    torch.save(reference_fields(BASES["ddls"]), good)
    assert load_any(good).meta["recipe"]["method"] == "ddls"
    for key, value in (("format_version", 2), ("ckpt", None), ("ckpt", 123), ("recipe", "[1]")):
        path = tmp_path / f"{key}.pt"
        torch.save({**reference_fields(BASES["ddls"]), key: value}, path)
        with pytest.raises(DDLSError) as exc:
            load_any(path)
        assert "\n" not in str(exc.value) and str(path) in str(exc.value) and key in str(exc.value)
    bad = tmp_path / "bad_recipe.pt"
    torch.save(reference_fields({**BASES["ddls"], "temperature": "hot"}), bad)
    with pytest.raises(DDLSError, match="recipe field temperature is 'hot'"):
        read_recipe(bad)


# --- through `ddls sample --ckpt TUNED.pt` ---------------------------------------------------------------

REFUSED = [  # (what the file holds, words its one line must hold): each gave a traceback, a hang or ran
    ({**BASES["ddls"], "options": {"steps": 2, "eps": 1e300}}, ["options.eps", "1e+300", "[1e-30, 1e+30]"]),
    ({**BASES["ddls"], "options": {"steps": 2, "eps": "abc"}}, ["options.eps", "'abc'", "a number in"]),
    ({**BASES["drs"], "options": {"drs_gamma_percentile": "200"}}, ["options.drs_gamma_percentile", "200",
                                                                    "--drs-gamma-percentile"]),
    ({**BASES["mhgan"], "options": {"mh_chain_length": 1e15}}, ["options.mh_chain_length", "[1, 2147483647]"]),
    ({**BASES["mhgan"], "options": {"mh_chain_length": 10 ** 15}}, ["options.mh_chain_length", "[1, 2147483647]"]),
    ({**BASES["mhgan"], "options": {"mh_chain_length": 10 ** 9}}, ["would run for days", "K=1000000000"]),
    ([1, 2], ["must be a JSON object", "a list"]),
    (5, ["must be a JSON object", "a number"]),
    ({**BASES["ddls"], "options": {"steps": 2, "eps": 1e-3, "dot_lr": 0.1}}, ["dot_lr", "not one that method ddls"]),
]


@pytest.mark.parametrize("stored, words", REFUSED, ids=[f"refused{i}" for i in range(len(REFUSED))])
def test_sample_refuses_a_bad_recipe_in_one_line_before_running(tmp_path, shipped_payload, stored, words):
    tuned = tmp_path / "tuned.pt"
    write_copy(shipped_payload, tuned, stored)
    with deadline(60):
        result = invoke("sample", "--ckpt", tuned, "--n", 4, "--device", "cpu", "--out", tmp_path / "s.npz",
                        catch_exceptions=True)
    line = one_line_error(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for word in [str(tuned), "run `ddls tune` again", *words]:
        assert word in line, (word, line)
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize("key, value, words", [
    ("ckpt", None, ["'ckpt'", "missing"]), ("ckpt", 123, ["'ckpt'", "a number"]),
    ("format_version", 2, ["format_version is 2", "reads version 1 only"]),
    ("recipe", "[1]", ["'recipe'", "JSON object", "list"]),
])
def test_sample_refuses_a_bad_reference_file_in_one_line(tmp_path, key, value, words):
    tuned = tmp_path / "tuned.pt"
    torch.save({**reference_fields(BASES["ddls"]), key: value}, tuned)
    result = invoke("sample", "--ckpt", tuned, "--n", 4, "--out", tmp_path / "s.npz", catch_exceptions=True)
    line = one_line_error(result)
    for word in [str(tuned), "run `ddls tune` again", *words]:
        assert word in line, (word, line)


@pytest.mark.parametrize("method", ["generator", "ddls", "drs", "mhgan", "sir"])
def test_sample_runs_a_valid_fuzzed_recipe(tmp_path, shipped_payload, method):
    """The accepted side of the schema, as `ddls sample` runs it: each method's small recipe gives n samples made
    by that method (a few of the methods; every method's sampling is tested in test_posthoc)."""
    tuned = tmp_path / "tuned.pt"
    write_copy(shipped_payload, tuned, BASES[method])
    with deadline(120):
        result = invoke("sample", "--ckpt", tuned, "--n", 6, "--chunk-size", 6, "--device", "cpu",
                        "--out", tmp_path / "s.npz", catch_exceptions=True)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "s.npz") as f:
        x, meta = f["x"], json.loads(str(f["meta"]))
    assert x.shape == (6, 2) and np.isfinite(x).all()
    if method == "generator":
        assert meta["run"]["steps"] == 0
    elif method == "ddls":
        assert (meta["run"]["steps"], meta["run"]["eps"], meta["temperature"]) == (2, 1e-3, 0.5)
    else:
        assert meta["method"] == method


@pytest.mark.slow
def test_many_fuzzed_recipes_through_sample(tmp_path, shipped_payload):
    """The bigger version: random multi-field mutations run end to end through `ddls sample`."""
    rng = random.Random(1)
    pool = NUMBERS + TEXTS + OTHERS
    from ddls.tuning.grid import evaluations_per_sample

    outcomes = {"refused": 0, "sampled": 0}
    for i in range(150):
        method = rng.choice(sorted(BASES))
        recipe, _ = build(BASES[method], ("combo", [(k, rng.choice(pool + [1, 2, 0.01] * 10)) for k in
                                                    rng.sample(sorted(BASES[method]["options"]) + ["temperature"],
                                                               k=1)], None))
        tuned = tmp_path / f"t{i}.pt"
        write_copy(shipped_payload, tuned, recipe)
        try:
            cost = evaluations_per_sample(read_runnable(tuned), 1)
        except DDLSError:
            cost = 0
        if cost > 1e4:
            continue  # valid but slow: the time it takes is not what is tested
        with deadline(120):
            result = invoke("sample", "--ckpt", tuned, "--n", 4, "--chunk-size", 4, "--device", "cpu",
                            "--out", tmp_path / f"s{i}.npz", catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (recipe, result.exception)
        assert "Traceback" not in result.output
        if result.exit_code != 0:
            one_line_error(result)
            outcomes["refused"] += 1
        else:
            with np.load(tmp_path / f"s{i}.npz") as f:
                assert f["x"].shape[0] == 4
            outcomes["sampled"] += 1
    assert outcomes["refused"] >= 20 and outcomes["sampled"] >= 20, outcomes


@pytest.mark.parametrize("text", ["inf", "1e400m", "1e400evals", "1e31s"])
def test_the_python_api_refuses_an_infinite_budget_as_the_command_does(text):
    from ddls.tuning.grid import parse_budget

    with pytest.raises(DDLSError, match="is not a positive time or evaluation count"):
        parse_budget(text)
    assert parse_budget("1e29evals").amount == 1e29
