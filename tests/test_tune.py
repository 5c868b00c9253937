"""`ddls tune`: known answers on 2-D problems whose exact log density ratio is known, the fallback to the
generator alone, TUNED.pt read back by `ddls sample`, the --json rows and one-line errors."""
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import Linear, Quadratic, invoke, one_line_error
from ddls._torch import derived_seed, make_generator
from ddls.errors import DDLSError
from ddls.io.checkpoint import Model
from ddls.metrics.intervals import difference
from ddls.tuning import Budget, Recipe, TuneConfig, read_recipe, tune, write_tuned
from ddls.tuning.grid import evaluations_per_sample
from ddls.tuning.run import _Runner, _Meter
from ddls.tuning.scoring import FID_RANK_PER_FEATURE, fid_scorer, points_scorer

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "gmm25_wgangp.pt"


class GaussianLogRatio(nn.Module):
    """The exact log N(x; 0, I) - log N(x; mu, s^2 I): data N(0, I), generator N(mu, s^2 I)."""

    def __init__(self, mu, s):
        super().__init__()
        self.register_buffer("mu", torch.as_tensor(mu, dtype=torch.float32))
        self.s = s

    def forward(self, x):
        return -0.5 * x.pow(2).sum(1) + 0.5 * (x - self.mu).pow(2).sum(1) / self.s ** 2 + 2 * math.log(self.s)


class Constant(nn.Module):
    def forward(self, x):
        return torch.zeros(len(x))


def gaussian_model(discriminator, mu=(0.0, 0.0), s=1.0):
    """G(z) = s z + mu on a 2-D latent, with the given discriminator."""
    return Model(Linear(s * np.eye(2), mu), discriminator, (2,), "gan")


def features_and_zero_head():
    """D whose features are x itself (an identity layer) under a zero head: its score says nothing."""
    first, head = nn.Linear(2, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
        first.bias.zero_()
        head.weight.zero_()
        head.bias.zero_()
    return nn.Sequential(first, head)


def standard_normal(n, seed):
    return torch.randn(n, 2, generator=make_generator(seed)).numpy()


GRID = [Recipe("ddls", t, {"steps": 60, "eps": e}) for t in (1.0, 0.1) for e in (0.05, 0.001)] + \
       [Recipe("drs", 1.0, {"drs_pilot": 500, "drs_gamma_percentile": 95.0})]
CONFIG = TuneConfig(Budget(5e6, "evaluations"), n_start=64, n_max=512, n_report=512, resamples=30, chunk_size=512)


def run_tune(model, grid=GRID, config=CONFIG):
    scorer = points_scorer(standard_normal, "N(0, I)", config.resamples)
    return tune(model, grid, scorer, points_scorer(standard_normal, "N(0, I), report", config.resamples), config)


@pytest.mark.slow
def test_tune_picks_a_recipe_within_noise_of_the_best_candidate(one_thread):
    model = gaussian_model(GaussianLogRatio([1.0, 0.0], 2.0), mu=(1.0, 0.0), s=2.0)
    result = run_tune(model)
    assert result.improved and result.recipe.method != "generator"
    assert result.report["difference"]["hi"] < 0  # the held-out report agrees: better than the generator
    # every candidate scored afresh on 600 samples: the chosen one is not worse than the best beyond noise
    runner = _Runner(model, 600, None, _Meter(CONFIG.budget))
    seed = derived_seed(99, 1)
    score = points_scorer(standard_normal, "fresh", 30).stage(600, seed)
    scored = {r.label: score(runner.sample(r, 600, seed)[0]) for r in GRID}
    best = min(scored.values(), key=lambda b: b.score.value)
    assert difference(scored[result.recipe.label], best).lo <= 0
    rows = {r["candidate"]: r for r in result.rows}
    assert rows[result.recipe.label]["status"] == "chosen" and rows["generator"]["status"] == "baseline"


def test_a_finalist_worse_than_the_generator_is_labelled_worse(one_thread):
    # the generator is the data, N(0, I); a D peaked at (3, 0) pulls DDLS's samples towards N((1.5, 0), I/2):
    # the paired interval of (its EMD minus the generator's) lies above 0
    model = gaussian_model(Quadratic([3.0, 0.0]))
    config = TuneConfig(Budget(1e6, "evaluations"), n_start=64, n_max=64, n_report=64, resamples=20, chunk_size=512)
    result = run_tune(model, [Recipe("ddls", 1.0, {"steps": 60, "eps": 0.05})], config)
    rows = {r["candidate"]: r for r in result.rows}
    row = rows["ddls T=1 steps=60 eps=0.05"]
    assert row["vs_generator_lo"] > 0
    assert row["status"] == "best, worse than the generator"
    assert not result.improved and rows["generator"]["status"] == "chosen"


def test_finalist_labels_follow_the_paired_interval():
    from ddls.metrics.intervals import Score
    from ddls.tuning.scoring import finalist_status

    assert finalist_status(Score(-0.3, -0.5, -0.1, 64)) == "chosen"
    assert finalist_status(Score(0.3, 0.1, 0.5, 64)) == "best, worse than the generator"
    assert finalist_status(Score(0.0, -0.1, 0.1, 64)) == "best, within noise of the generator"
    assert finalist_status(None) == "best, within noise of the generator"


@pytest.mark.parametrize("discriminator", ["constant", "random"])
def test_tune_falls_back_to_the_generator_when_d_carries_no_information(one_thread, discriminator):
    torch.manual_seed(0)
    d = Constant() if discriminator == "constant" else nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    result = run_tune(gaussian_model(d))  # the generator is already the data: nothing can beat it
    assert not result.improved and result.recipe == Recipe("generator")
    assert result.rows[0]["candidate"] == "generator" and result.rows[0]["status"] == "chosen"
    assert result.report["difference"] is None and result.report["generator"]["n"] > 0


def test_when_the_whole_half_cannot_go_on_the_best_go_on_at_a_larger_n(one_thread):
    # eight candidates of equal cost; after round 0 the budget holds fewer than the better four at
    # twice the samples, so the best of them must go on rather than the search ending there
    grid = [Recipe("ddls", t, {"steps": 60, "eps": e}) for t in (1.0, 0.3, 0.1, 0.03) for e in (0.05, 0.001)]
    config = TuneConfig(Budget(7e4, "evaluations"), n_start=32, n_max=512, n_report=64, resamples=20,
                        chunk_size=512)
    model = gaussian_model(GaussianLogRatio([1.0, 0.0], 2.0), mu=(1.0, 0.0), s=2.0)
    result = run_tune(model, grid, config)
    first, second = result.rounds[0], result.rounds[1]
    assert first["candidates"] == 8 and 1 <= second["candidates"] < 4 and second["n"] == 2 * first["n"]
    assert any(r["status"] == "out after round 0: budget" for r in result.rows)
    best = [r for r in result.rows if r["status"] == "chosen" or r["status"].startswith("best, ")]
    assert len(best) == 1 and best[0]["n"] > first["n"]
    assert result.rounds[-1]["spent"] <= 0.75 * 7e4  # the search kept to its share of the budget


@pytest.mark.parametrize("rank_n, noted", [(128, True), (40, False), (0, False)])
def test_a_first_round_smaller_than_the_metric_can_rank_is_said(one_thread, rank_n, noted):
    # eight candidates in 4 rounds of about limit / 4 each: round 0 gets 64 samples per candidate
    grid = [Recipe("ddls", t, {"steps": 20, "eps": e}) for t in (1.0, 0.3, 0.1, 0.03) for e in (0.05, 0.001)]
    limit = 4 * 64 * sum(evaluations_per_sample(r, 256) for r in grid)
    config = TuneConfig(Budget(limit / 0.75, "evaluations"), n_start=256, n_max=512, n_report=64, resamples=20,
                        chunk_size=512)
    validation = replace(points_scorer(standard_normal, "N(0, I)", 20), rank_n=rank_n)
    notes = []
    model = gaussian_model(GaussianLogRatio([1.0, 0.0], 2.0), mu=(1.0, 0.0), s=2.0)
    result = tune(model, grid, validation, points_scorer(standard_normal, "report", 20), config, echo=notes.append)
    assert result.rounds[0]["n"] == 64 and result.rounds[0]["candidates"] == 8
    said = [line for line in notes if "round 0 gets 64 samples" in line]
    assert bool(said) == noted and all(f"fewer than the {rank_n} at which EMD" in line for line in said)


def test_a_budget_spent_before_any_candidate_ran_is_refused(one_thread):
    # the generator's round-0 baseline (32 samples, 32 evaluations) alone overruns 75% of 40 evaluations
    config = TuneConfig(Budget(40, "evaluations"), n_start=32, n_max=64, n_report=32, resamples=10, chunk_size=512)
    model = gaussian_model(GaussianLogRatio([1.0, 0.0], 2.0), mu=(1.0, 0.0), s=2.0)
    with pytest.raises(DDLSError, match="spent before any candidate ran.*larger --budget"):
        run_tune(model, GRID, config)
    # a budget that runs some of round 0 says how many were left out
    config = replace(config, budget=Budget(32 + 2 * 61 * 32 + 10, "evaluations"))
    notes = []
    scorer = points_scorer(standard_normal, "N(0, I)", 10)
    result = tune(model, GRID, scorer, scorer, config, echo=notes.append)
    not_run = [r for r in result.rows if r["status"].startswith("not run")]
    assert 0 < len(not_run) < len(GRID)
    assert f"note: {len(not_run)} of {len(GRID)} candidates not run" in " ".join(notes)
    # a candidate that ran and failed is neither "not run" nor a budget spent before any ran
    exploding = [Recipe("ddls", 1.0, {"steps": 60, "eps": 1e6})]
    notes = []
    result = tune(model, exploding, scorer, scorer, CONFIG, echo=notes.append)
    assert result.rows[1]["status"].startswith("failed") and not result.improved
    assert not any("not run" in line for line in notes)


def test_fid_ranks_from_more_samples_than_features():
    class Extractor:
        dim = 128

    assert fid_scorer(Extractor(), None, "stats", 10).rank_n == math.ceil(FID_RANK_PER_FEATURE * 128) > 128


def test_a_calibration_searched_by_tune_can_make_the_recipe():
    # data N(0, I), generator N(mu, I): the log ratio -mu . x + |mu|^2 / 2 is linear in D's features (x),
    # but D's head is zero, so raw candidates have nothing to follow; refitted ([head]) they have the exact one
    mu = (1.5, 0.0)
    model = gaussian_model(features_and_zero_head(), mu=mu)
    grid = [Recipe("ddls", 1.0, {"steps": 60, "eps": 0.05}, calibration=c) for c in ("raw", "head")]

    def draw_real(n, gen):
        return torch.randn(n, 2, generator=gen, device=gen.device)

    scorer = points_scorer(standard_normal, "N(0, I)", CONFIG.resamples)
    result = tune(model, grid, scorer, points_scorer(standard_normal, "report", CONFIG.resamples), CONFIG,
                  draw_real=draw_real)
    assert result.improved and result.recipe.calibration == "head" and result.recipe.method == "ddls"
    assert result.calibrations["head"]["improved"] and result.calibrations["raw"]["kind"] == "raw"
    rows = {r["candidate"]: r for r in result.rows}
    assert rows["ddls[head] T=1 steps=60 eps=0.05"]["status"] == "chosen"
    assert rows["ddls T=1 steps=60 eps=0.05"]["vs_generator_lo"] <= 0 <= rows["ddls T=1 steps=60 eps=0.05"][
        "vs_generator_hi"]  # a zero head moves nothing the prior would not


def test_tune_cli_searches_calibrations_and_refuses_those_it_cannot_fit(tmp_path):
    tuned = tmp_path / "tuned.pt"
    r = invoke("tune", "--ckpt", SHIPPED, "--out", tuned, "--budget", "2e5evals", "--methods", "ddls",
               "--calibrations", "raw,head", "--temperatures", "1", "--eps", "1e-3", "--steps", 10,
               "--n-start", 64, "--n-max", 64, "--n-report", 64, "--bootstrap", 10, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [row["candidate"] for row in out["rows"]] == ["generator", "ddls T=1 steps=10 eps=0.001",
                                                         "ddls[head] T=1 steps=10 eps=0.001"]
    assert out["calibrations"]["head"]["kind"] == "head" and "calibration head:" in r.stderr
    line = one_line_error(invoke("tune", "--ckpt", SHIPPED, "--out", tmp_path / "t.pt", "--calibrations",
                                 "raw,finetune"))
    assert "tune searches the calibrations raw, platt, head" in line and "ddls calibrate" in line
    # a raw critic tuned on raw alone: one note names the calibration it could also try
    raw_critic = SHIPPED.with_name("gmm25_wgangp_raw.pt")
    args = ["--budget", "2e4evals", "--methods", "drs", "--n-start", 32, "--n-max", 32, "--n-report", 32,
            "--bootstrap", 5]
    r = invoke("tune", "--ckpt", raw_critic, "--out", tmp_path / "c.pt", "--calibrations", "raw", *args)
    assert r.exit_code == 0, r.output
    assert "this critic is no logit; --calibrations raw,head" in r.stderr
    # by default (auto) a raw critic is searched with its head refitted; a logit as it is
    r = invoke("tune", "--ckpt", raw_critic, "--out", tmp_path / "c.pt", "--json", *args)
    assert r.exit_code == 0, r.output
    assert "head" in json.loads(r.stdout)["calibrations"] and "calibration head:" in r.stderr
    assert all(row["candidate"] == "generator" or "[head]" in row["candidate"] for row in json.loads(r.stdout)["rows"])
    assert "no logit" not in r.stderr
    r = invoke("tune", "--ckpt", SHIPPED, "--out", tmp_path / "l.pt", "--json", *args)
    assert r.exit_code == 0, r.output
    assert list(json.loads(r.stdout)["calibrations"]) == ["raw"] and "no logit" not in r.stderr


class _Total(nn.Module):
    def forward(self, h):
        return h.sum(1)


def test_a_calibration_chosen_for_the_user_that_cannot_be_fitted_falls_back_to_raw():
    # D's score is a sum, not a last layer's single output: the head cannot be refitted
    model = Model(Linear(np.eye(2), (1.0, 0.0)), nn.Sequential(nn.Linear(2, 3), _Total()), (2,), "wgan")
    grid = [Recipe("ddls", 1.0, {"steps": 5, "eps": 1e-3}, calibration=c) for c in ("raw", "head")]
    scorer = points_scorer(standard_normal, "N(0, I)", 5)
    config = TuneConfig(Budget(1e5, "evaluations"), n_start=32, n_max=32, n_report=32, resamples=5)

    def draw_real(n, gen):
        return torch.randn(n, 2, generator=gen, device=gen.device)

    with pytest.raises(DDLSError, match="not a linear layer or convolution with one output"):
        tune(model, grid, scorer, scorer, config, draw_real=draw_real)
    said = []
    result = tune(model, grid, scorer, scorer, config, draw_real=draw_real, optional=("head",), echo=said.append)
    assert [r["candidate"] for r in result.rows] == ["generator", "ddls T=1 steps=5 eps=0.001"]  # one raw, not two
    assert any(s.startswith("searching the raw score instead of calibration head: ") for s in said)
    assert list(result.calibrations) == ["raw"]
    # the head alone (as auto chooses it for a critic): its candidates run on the raw score
    result = tune(model, grid[1:], scorer, scorer, config, draw_real=draw_real, optional=("head",))
    assert [r["candidate"] for r in result.rows] == ["generator", "ddls T=1 steps=5 eps=0.001"]


def test_tuned_file_drives_sample_and_flags_override(tmp_path):
    tuned = tmp_path / "tuned.pt"
    recipe = Recipe("ddls", 0.3, {"steps": 7, "eps": 1e-3})
    assert write_tuned(SHIPPED, tuned, recipe, {"note": "by hand"}) == "copy"
    assert read_recipe(tuned) == recipe and read_recipe(SHIPPED) is None
    r = invoke("sample", "--ckpt", tuned, "--n", 20, "--out", tmp_path / "a.npz")
    assert r.exit_code == 0, r.output
    r = invoke("sample", "--ckpt", tuned, "--n", 20, "--eps", 0.002, "--out", tmp_path / "b.npz")
    assert r.exit_code == 0, r.output
    metas = [json.loads(str(np.load(tmp_path / f"{k}.npz")["meta"])) for k in "ab"]
    assert (metas[0]["run"]["eps"], metas[0]["run"]["steps"], metas[0]["temperature"]) == (1e-3, 7, 0.3)
    assert (metas[1]["run"]["eps"], metas[1]["run"]["steps"], metas[1]["temperature"]) == (0.002, 7, 0.3)
    # a post-hoc method's own settings travel too
    write_tuned(SHIPPED, tuned, Recipe("dgflow", 1.0, {"dgflow_steps": 3, "dgflow_eta": 0.02}), {})
    r = invoke("sample", "--ckpt", tuned, "--n", 10, "--out", tmp_path / "c.npz")
    assert r.exit_code == 0, r.output
    meta = json.loads(str(np.load(tmp_path / "c.npz")["meta"]))
    assert meta["method"] == "dgflow" and (meta["settings"]["steps"], meta["settings"]["eta"]) == (3, 0.02)


def test_tuned_file_of_another_format_names_the_checkpoint_by_digest(tmp_path):
    import _layouts as L

    g, d = L.collections_cnn32(16, False)
    ckpt = tmp_path / "gc.pt"
    torch.save({"net_G": g, "net_D": d}, ckpt)
    tuned = tmp_path / "tuned.pt"
    assert write_tuned(ckpt, tuned, Recipe("ddls", 1.0, {"steps": 2, "eps": 1e-3}), {}) == "reference"
    r = invoke("sample", "--ckpt", tuned, "--n", 3, "--device", "cpu", "--out", tmp_path / "a.npz")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "a.npz") as npz:
        assert npz["x"].shape == (3, 3, 32, 32)
        assert json.loads(str(npz["meta"]))["run"]["steps"] == 2
    torch.save({"net_G": g, "net_D": {k: v + 1 for k, v in d.items()}}, ckpt)
    line = one_line_error(invoke("sample", "--ckpt", tuned, "--n", 3, "--out", tmp_path / "b.npz"))
    assert "changed since" in line and "ddls tune" in line


def test_tune_cli_json_rows_and_the_file_it_writes(tmp_path):
    tuned = tmp_path / "tuned.pt"
    r = invoke("tune", "--ckpt", SHIPPED, "--out", tuned, "--budget", "3e5evals", "--methods", "ddls,drs",
               "--temperatures", "1", "--eps", "1e-3,1e-4", "--steps", 20, "--n-start", 64, "--n-max", 128,
               "--n-report", 128, "--bootstrap", 20, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["metric"] == "emd" and out["budget"] == {"amount": 3e5, "unit": "evaluations"}
    keys = {"candidate", "method", "temperature", "settings", "stage", "n", "score", "score_lo", "score_hi",
            "vs_generator", "vs_generator_lo", "vs_generator_hi", "seconds", "evaluations", "status"}
    assert all(set(row) == keys for row in out["rows"])
    assert [row["method"] for row in out["rows"]] == ["generator", "ddls", "ddls", "drs", "drs"]
    assert out["spent"] <= 3e5 * 1.05  # a round may end a little past its forecast
    ran = [row for row in out["rows"] if row["score"] is not None]
    assert all(row["score_lo"] <= row["score"] <= row["score_hi"] for row in ran)
    assert read_recipe(tuned) == Recipe.from_dict(out["recipe"])
    r = invoke("sample", "--ckpt", tuned, "--n", 10, "--out", tmp_path / "s.npz")
    assert r.exit_code == 0, r.output
    meta = json.loads(str(np.load(tmp_path / "s.npz")["meta"]))
    recipe = out["recipe"]
    if recipe["method"] == "generator":
        assert meta["run"]["steps"] == 0 and "generator alone" in r.stderr
    elif recipe["method"] == "ddls":
        assert meta["run"]["eps"] == recipe["options"]["eps"]
    else:
        assert meta["method"] == recipe["method"]


@pytest.mark.parametrize("args, message", [
    (["--budget", "soon"], "budget 'soon' is not a positive time"),
    (["--budget", "0m"], "budget '0m' is not a positive time"),
    (["--methods", "ddls,nope"], "unknown method(s) nope"),
    (["--temperatures", "1,-2"], "temperatures '1,-2' is not a comma-separated list of positive numbers"),
    # inf and amounts that overflow to it are refused alike, as is anything beyond the command line's 1e30
    (["--budget", "inf"], "budget 'inf' is not a positive time or evaluation count"),
    (["--budget", "1e400m"], "budget '1e400m' is not a positive time or evaluation count"),
    (["--budget", "1e400evals"], "budget '1e400evals' is not a positive time or evaluation count"),
    (["--budget", "1e31s"], "budget '1e31s' is not a positive time or evaluation count"),
    (["--temperatures", "1,,2"], "temperatures '1,,2' has an empty item"),
    (["--eps", "1e-3,"], "step sizes '1e-3,' has an empty item"),
])
def test_one_line_errors(tmp_path, args, message):
    line = one_line_error(invoke("tune", "--ckpt", SHIPPED, "--out", tmp_path / "t.pt", *args))
    assert message in line
    assert not (tmp_path / "t.pt").exists()


def test_a_negative_seed_is_refused_as_every_command_refuses_it(tmp_path):
    line = one_line_error(invoke("tune", "--ckpt", SHIPPED, "--out", tmp_path / "t.pt", "--seed", "-1"), code=2)
    assert "'--seed': -1 is not in the range 0<=" in line
    assert not (tmp_path / "t.pt").exists()


@pytest.mark.parametrize("shape", [(100, 3), (10, 2), (100,)])
def test_data_file_of_the_wrong_shape_is_refused(tmp_path, shape):
    np.save(tmp_path / "p.npy", np.zeros(shape))
    line = one_line_error(invoke("tune", "--ckpt", SHIPPED, "--out", tmp_path / "t.pt", "--data", tmp_path / "p.npy"))
    assert f"shape {shape}" in line and "(N, 2) with N >= 40" in line


@pytest.mark.parametrize("dtype", [np.complex128, np.bool_, np.str_])
def test_data_file_of_non_real_numbers_is_refused(tmp_path, dtype):
    # a complex file lost its imaginary part with a warning; now it is refused, as bool and text are
    points = np.random.default_rng(0).normal(size=(100, 2))
    np.save(tmp_path / "p.npy", (points + 1j * points if dtype is np.complex128 else points).astype(dtype))
    line = one_line_error(invoke("tune", "--ckpt", SHIPPED, "--out", tmp_path / "t.pt", "--data", tmp_path / "p.npy",
                                 "--budget", "2s"))
    assert f"holds {np.dtype(dtype) if dtype is not np.str_ else '<U'}" in line and "real numbers" in line
    assert not (tmp_path / "t.pt").exists()


def test_eval_refuses_image_options_on_2d_samples(tmp_path):
    # `eval --stats` on points was ignored without a word: the FID statistics score nothing here
    samples = tmp_path / "s.npz"
    assert invoke("sample", "--ckpt", SHIPPED, "--n", 50, "--steps", 1, "--out", samples).exit_code == 0
    for args, flag in ((["--stats", tmp_path / "ref.npz"], "--stats"), (["--features", "inception"], "--features"),
                       (["--ref-n", 10], "--ref-n")):
        line = one_line_error(invoke("eval", "--samples", samples, *args))
        assert f"{flag} does nothing with 2-D samples" in line and "drop it" in line
    assert "emd" in invoke("eval", "--samples", samples, "--json").stdout


def test_sir_is_searched_only_when_named():
    from ddls.tuning.grid import DEFAULT_METHODS, default_grid, evaluations_per_sample

    assert "sir" not in DEFAULT_METHODS and all(r.method != "sir" for r in default_grid())
    sir = default_grid(("sir",))
    assert [r.temperature for r in sir] == [1.0, 3.0, 10.0] and all(r.options == {"sir_pool_factor": 10} for r in sir)
    assert evaluations_per_sample(sir[0], 100) == 11.0  # the pool through G and D, the kept ones through G
    r = invoke("tune", "--ckpt", "pretrained/gmm25_wgangp.pt", "--methods", "sir,nope", "--out", "x.pt")
    assert "unknown method(s) nope" in one_line_error(r)


def test_a_prior_fit_candidate_is_fitted_once_and_can_make_the_recipe(monkeypatch, tmp_path):
    # data N(0, I), generator N(mu, I): D's head is zero, so DDLS has nothing to follow, but D's features
    # (x itself) tell the prior fit where the data is: z ~ N(-mu, I) gives the data exactly
    import ddls.posthoc.prior_fit as prior_fit

    model = gaussian_model(features_and_zero_head(), mu=(1.5, 0.0))
    grid = [Recipe("ddls", 1.0, {"steps": 60, "eps": 0.05}), Recipe("prior-fit", 1.0, {"prior_steps": 200})]
    fits = []
    real_fit = prior_fit.fit
    monkeypatch.setattr(prior_fit, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    monkeypatch.setattr(prior_fit, "_MEMO", {})
    monkeypatch.setenv("DDLS_CACHE_DIR", str(tmp_path))

    def draw_real(n, gen):
        return torch.randn(n, 2, generator=gen, device=gen.device)

    lines = []
    scorer = points_scorer(standard_normal, "N(0, I)", CONFIG.resamples)
    result = tune(model, grid, scorer, points_scorer(standard_normal, "report", CONFIG.resamples), CONFIG,
                  draw_real=draw_real, echo=lines.append)
    assert result.improved and result.recipe.method == "prior-fit"
    assert len(result.rounds) >= 2 and len(fits) == 1  # fitted before round 0, read back in every round
    assert any(line.startswith("prior-fit") and "fitted" in line for line in lines)


def test_prior_fit_is_searched_once_whatever_the_calibrations():
    from ddls.tuning.grid import default_grid

    grid = default_grid(("ddls", "prior-fit"), calibrations=("raw", "head"))
    assert [r.calibration for r in grid if r.method == "prior-fit"] == ["raw"]
    assert sum(r.method == "ddls" for r in grid) == 18
    pf = Recipe("prior-fit", 1.0, {"prior_steps": 10, "prior_batch": 100, "prior_real": 50})
    assert evaluations_per_sample(pf, 10) == 1 + (50 + 2 * 10 * 100 + 2 * 100) / 10
    assert evaluations_per_sample(pf, 10, fitted=True) == 1.0
    langevin = Recipe("prior-fit", 3.0, {"prior_langevin_steps": 100})
    assert evaluations_per_sample(langevin, 10, fitted=True) == 2 * 101


def test_auto_methods_search_prior_fit_on_images_only():
    from ddls.tuning.grid import default_methods, parse_methods

    assert parse_methods("auto") == ("auto",) and parse_methods(" AUTO ") == ("auto",)
    assert "prior-fit" in default_methods((1, 28, 28)) and "prior-fit" not in default_methods((2,))
    assert set(default_methods((1, 28, 28))) - set(default_methods((2,))) == {"prior-fit"}
    r = invoke("tune", "--ckpt", "pretrained/gmm25_wgangp.pt", "--methods", "auto,sir", "--out", "x.pt")
    assert "unknown method(s) auto" in one_line_error(r)
