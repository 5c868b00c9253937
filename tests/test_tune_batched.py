"""Candidates that share the networks run as one batch of chains: each setting's samples are those of its own
run (same seed, same chunks) to float tolerance, a diverging setting harms no other, and `ddls tune` runs
its Langevin candidates that way."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from conftest import Linear
from ddls.errors import DDLSError
from ddls.io.checkpoint import Model
from ddls.sampling.batched import ChainSetting, sample_settings
from ddls.sampling.driver import RunConfig, sample
from ddls.sampling.energy import LatentEnergy
from ddls.tuning import Budget, Recipe, TuneConfig
from ddls.tuning.run import Entry, _Meter, _Runner, batches


def small_energy(temperature=1.0, label=None):
    torch.manual_seed(3)
    d = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    return LatentEnergy(Linear(1.5 * np.eye(2), [0.5, -0.2]), d, (2,), temperature=temperature, label=label)


SETTINGS = [("ula", 0.05, 1.0), ("ula", 0.05, 0.3), ("ula", 0.002, 0.1), ("mala", 0.05, 1.0), ("mala", 0.2, 1.0)]


def one_by_one(energy, kernel, eps, temperature, n, steps, seed, chunk_size):
    config = RunConfig(n=n, steps=steps, method=kernel, eps=eps, seed=seed, chunk_size=chunk_size)
    return sample(energy.replaced(temperature=temperature), config)


def test_every_setting_of_a_batch_gives_the_samples_of_its_own_run(one_thread):
    energy = small_energy()
    n, steps, seed, chunk = 10, 15, 4, 4  # three chunks, the last one short
    settings = [ChainSetting(energy.replaced(temperature=t), kernel, eps) for kernel, eps, t in SETTINGS]
    runs = sample_settings(settings, n, steps=steps, seed=seed, chunk_size=chunk, batch_size=7)
    for (kernel, eps, t), run in zip(SETTINGS, runs):
        alone = one_by_one(energy, kernel, eps, t, n, steps, seed, chunk)
        assert_close(run.latents, alone.latents, rtol=1e-5, atol=1e-5)
        assert_close(run.samples, alone.samples, rtol=1e-5, atol=1e-5)
        assert run.non_finite == 0 and run.first_bad == -1
        if kernel == "mala":
            assert_close(run.acceptance, alone.acceptance, rtol=1e-5, atol=1e-5)
        else:
            assert run.acceptance is None
    # the settings differ from each other: the test would notice samples swapped between settings
    assert not torch.allclose(runs[0].samples, runs[1].samples)


def test_a_setting_that_diverges_is_reported_and_harms_no_other(one_thread):
    energy = small_energy()
    settings = [ChainSetting(energy, "ula", 1e9), ChainSetting(energy, "ula", 0.05)]
    with np.errstate(all="ignore"):
        runs = sample_settings(settings, 6, steps=10, seed=1, chunk_size=6)
    assert runs[0].non_finite > 0 and runs[0].first_bad >= 1
    alone = one_by_one(energy, "ula", 0.05, 1.0, 6, 10, 1, 6)
    assert runs[1].non_finite == 0
    assert_close(runs[1].samples, alone.samples, rtol=1e-5, atol=1e-5)


def test_per_chain_temperatures_are_each_chains_own():
    energy = small_energy()
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    temps = torch.tensor([1.0, 0.3, 0.1, 2.0])
    together = energy.replaced(temperature=temps)(z)
    alone = torch.stack([energy.replaced(temperature=float(t))(z[i:i + 1])[0] for i, t in enumerate(temps)])
    assert_close(together, alone)
    assert_close(energy.replaced(temperature=temps).for_chains(1, 3)(z[1:3]), alone[1:3])
    with pytest.raises(DDLSError, match="temperatures for 4 chains but was called on 3"):
        energy.replaced(temperature=temps)(z[:3])
    with pytest.raises(DDLSError, match="positive finite"):
        energy.replaced(temperature=torch.tensor([1.0, 0.0]))


def test_settings_on_other_networks_are_refused():
    energy, other = small_energy(), small_energy()
    with pytest.raises(DDLSError, match="share the networks.*discriminator"):
        sample_settings([ChainSetting(energy), ChainSetting(other)], 4, steps=2)
    with pytest.raises(DDLSError, match="unknown sampler"):
        sample_settings([ChainSetting(energy, "hmc")], 4, steps=2)


def test_tune_runs_its_langevin_candidates_as_one_batch_with_the_samples_of_each_alone(one_thread):
    torch.manual_seed(3)
    d = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    model = Model(Linear(1.5 * np.eye(2), [0.5, -0.2]), d, (2,), "gan")
    runner = _Runner(model, 8, None, _Meter(Budget(1e9, "evaluations")))
    recipes = [Recipe("ddls", t, {"steps": 12, "eps": e}) for t in (1.0, 0.3) for e in (0.05, 0.001)] + \
              [Recipe("mala", 1.0, {"steps": 12, "eps": 0.05}), Recipe("ddls", 1.0, {"steps": 5, "eps": 0.05}),
               Recipe("drs", 1.0, {"drs_pilot": 100})]
    groups = batches([Entry(r) for r in recipes], runner.batch_key)
    assert [len(g) for g in groups] == [5, 1, 1]  # 12 steps together; 5 steps and drs alone
    drawn = runner.sample_batch([e.recipe for e in groups[0]], 20, 7)
    for entry, (x, evaluations) in zip(groups[0], drawn):
        alone, alone_evaluations = runner.sample(entry.recipe, 20, 7)
        np.testing.assert_allclose(x, alone, rtol=1e-5, atol=1e-5)
        assert evaluations == alone_evaluations == 2 * 20 * 13


def test_dgflow_settings_of_one_flow_run_as_one_batch_with_the_samples_of_each_alone(one_thread):
    from ddls.posthoc import make_target, run
    from ddls.posthoc.dgflow import DGflowConfig, sample_etas

    target = make_target(small_energy(), "raw")
    config = DGflowConfig(steps=8, gamma=0.05, chunk_size=4)
    etas = [0.1, 0.01, 0.3]
    runs = sample_etas(target, 10, config, etas, seed=2, batch_size=5)
    for eta, together in zip(etas, runs):
        alone = run("dgflow", target, 10, DGflowConfig(steps=8, eta=eta, gamma=0.05, chunk_size=4), seed=2)
        assert_close(together.latents, alone.latents, rtol=1e-5, atol=1e-5)
        assert_close(together.samples, alone.samples, rtol=1e-5, atol=1e-5)
        assert together.evaluations == alone.evaluations
    assert not torch.allclose(runs[0].samples, runs[1].samples)
    model = Model(small_energy().generator, small_energy().discriminator, (2,), "gan")
    runner = _Runner(model, 4, None, _Meter(Budget(1e9, "evaluations")))
    recipes = [Recipe("dgflow", 1.0, {"dgflow_steps": 8, "dgflow_eta": e, "dgflow_gamma": 0.05}) for e in etas]
    assert [len(g) for g in batches([Entry(r) for r in recipes], runner.batch_key)] == [3]
    for recipe, (x, evaluations) in zip(recipes, runner.sample_batch(recipes, 10, 2)):
        np.testing.assert_allclose(x, runner.sample(recipe, 10, 2)[0], rtol=1e-5, atol=1e-5)


def test_dot_settings_of_one_transport_run_as_one_batch_with_the_samples_of_each_alone(one_thread):
    from ddls.posthoc import make_target, run
    from ddls.posthoc.dot import DOTConfig, sample_lrs

    target = make_target(small_energy(), "raw")
    lrs = [0.05, 0.01, 0.2]
    runs = sample_lrs(target, 10, DOTConfig(steps=6, pairs=20, chunk_size=4), lrs, seed=2, batch_size=5)
    for lr, together in zip(lrs, runs):
        alone = run("dot", target, 10, DOTConfig(steps=6, lr=lr, pairs=20, chunk_size=4), seed=2)
        assert_close(together.latents, alone.latents, rtol=1e-5, atol=1e-5)
        assert_close(together.samples, alone.samples, rtol=1e-5, atol=1e-5)
        assert together.info["k_eff"] == alone.info["k_eff"]
    assert not torch.allclose(runs[0].samples, runs[1].samples)
    with pytest.raises(DDLSError, match="sgd optimizer only"):
        sample_lrs(target, 4, DOTConfig(optimizer="adam"), lrs)
    runner = _Runner(Model(target.energy.generator, target.energy.discriminator, (2,), "gan"), 4, None,
                     _Meter(Budget(1e9, "evaluations")))
    recipes = [Recipe("dot", 1.0, {"dot_steps": 6, "dot_lr": lr, "dot_pairs": 20}) for lr in lrs] + \
              [Recipe("dot", 1.0, {"dot_steps": 6, "dot_lr": 0.05, "dot_optimizer": "adam"})]
    assert [len(g) for g in batches([Entry(r) for r in recipes], runner.batch_key)] == [3, 1]


def test_a_tune_round_scores_each_batched_candidate_as_if_run_alone(one_thread):
    from ddls.tuning.scoring import points_scorer

    torch.manual_seed(3)
    d = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    model = Model(Linear(1.5 * np.eye(2), [0.5, -0.2]), d, (2,), "gan")
    recipes = [Recipe("ddls", t, {"steps": 10, "eps": 0.05}) for t in (1.0, 0.3, 0.1)]
    scorer = points_scorer(lambda n, s: torch.randn(n, 2, generator=torch.Generator().manual_seed(s)).numpy(),
                           "N(0, I)", 2)
    score = scorer.stage(32, 5)
    runner = _Runner(model, 16, None, _Meter(Budget(1e9, "evaluations")))
    together = [Entry(r) for r in recipes]
    runner.run_round(together, 32, 5, score, 0, score(runner.sample(Recipe("generator"), 32, 5)[0]), 1e9)
    for entry in together:
        alone = Entry(entry.recipe)
        runner.run(alone, 32, 5, score, 0)
        assert entry.status == alone.status == "ran"
        assert entry.score.value == pytest.approx(alone.score.value, rel=1e-4, abs=1e-6)
        assert entry.evaluations == alone.evaluations and entry.vs_generator is not None


from test_tune import GaussianLogRatio  # noqa: E402  (the exact log-ratio both files test against)


def shifted_model():
    """G(z) = 2 z + (1.5, 0) with D the exact log-ratio to N(0, I): DDLS at T = 1 samples the data."""
    return Model(Linear(2.0 * np.eye(2), [1.5, 0.0]), GaussianLogRatio([1.5, 0.0], 2.0), (2,), "gan")


def test_round_0_is_raised_to_where_the_metric_ranks_when_three_rounds_of_that_size_fit(one_thread):
    from dataclasses import replace

    from ddls.tuning import tune
    from ddls.tuning.grid import evaluations_per_sample
    from ddls.tuning.scoring import points_scorer

    grid = [Recipe("ddls", t, {"steps": 10, "eps": e}) for t in (1.0, 0.3, 0.1, 0.03) for e in (0.05, 0.001)]
    limit = 4 * 40 * sum(evaluations_per_sample(r, 256) for r in grid)  # all four rounds fit at n = 40
    config = TuneConfig(Budget(limit / 0.75, "evaluations"), n_start=256, n_max=512, n_report=32, resamples=10,
                        chunk_size=512)

    def draw(n, seed):
        return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).numpy()

    for rank_n, first in ((50, 50), (54, 40)):  # 3 x 50 <= 4 x 40 < 3 x 54
        validation = replace(points_scorer(draw, "N(0, I)", 10), rank_n=rank_n)
        result = tune(shifted_model(), grid, validation, points_scorer(draw, "report", 10), config)
        assert result.rounds[0]["n"] == first


def test_ddls_tune_in_python_finds_the_recipe_and_ddls_sample_draws_with_it(tmp_path, one_thread):
    import ddls

    points = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)).numpy()
    np.save(tmp_path / "real.npy", points)
    notes = []
    model = shifted_model()
    result = ddls.tune(model, data=str(tmp_path / "real.npy"), budget="4e5evals", methods="ddls",
                       calibrations="raw", temperatures=(1.0, 0.1), eps=(0.05,), steps=40, n_start=64, n_max=256,
                       n_report=256, resamples=20, echo=notes.append)
    assert result.improved and result.recipe == Recipe("ddls", 1.0, {"steps": 40, "eps": 0.05})
    assert result.report["difference"]["hi"] < 0 and result.data == str(tmp_path / "real.npy")
    assert any(line.startswith("tuning 2 candidates") for line in notes)
    drawn = ddls.sample(model, result.recipe, 400, seed=1)
    generator = ddls.sample(model, Recipe("generator"), 400, seed=1)
    assert drawn.samples.shape == (400, 2) and ddls.sample(model, result, 400, seed=1).samples.equal(drawn.samples)
    # the data's mean is 0; the generator's is (1.5, 0): the recipe's samples sit near the data's
    assert abs(float(drawn.samples[:, 0].mean())) < 0.3 < 1.2 < float(generator.samples[:, 0].mean())
    with pytest.raises(DDLSError, match="expected a tuning recipe"):
        from ddls.tuning.search import sample_recipe

        sample_recipe(model, "ddls", 10)


PRETRAINED = __import__("pathlib").Path(__file__).resolve().parents[1] / "pretrained"


@pytest.mark.slow  # four runs of `ddls sample` on a width-64 DCGAN
def test_sample_says_when_ddls_at_t1_runs_on_an_untuned_critic(tmp_path, one_thread):
    from conftest import invoke
    from ddls.tuning import write_tuned

    sngan, ns = PRETRAINED / "fmnist_sngan64.pt", PRETRAINED / "fmnist_ns64.pt"

    def notes(ckpt, *more):
        r = invoke("sample", "--ckpt", ckpt, "--n", 2, "--steps", 1, "--out", tmp_path / "s.npz", "--force", *more)
        assert r.exit_code == 0, r.output
        return [line for line in r.stderr.splitlines() if "often worse than the generator alone" in line]

    said = notes(sngan)
    assert said == [f"note: this wgan critic is not a logit, and DDLS at T = 1 on a critic is often worse than the "
                    f"generator alone; `ddls tune --ckpt {sngan} --out fmnist_sngan64_tuned.pt` checks it"]
    assert notes(sngan, "--temperature", 0.3) == []  # not T = 1: the user chose
    assert notes(ns) == []  # a logit
    tuned = tmp_path / "tuned.pt"
    write_tuned(sngan, tuned, Recipe("ddls", 1.0, {"steps": 1, "eps": 0.01}), {})
    assert notes(tuned) == []  # tuned: the search already checked it


def test_a_time_budget_probes_each_batch_once_at_one_and_three_steps(one_thread, monkeypatch):
    from ddls.tuning.run import _first_round_size
    from ddls.tuning.scoring import points_scorer

    model = shifted_model()
    runner = _Runner(model, 64, None, _Meter(Budget(60, "seconds")))
    probed = []
    sample_batch = runner.sample_batch
    monkeypatch.setattr(runner, "sample_batch", lambda recipes, n, seed: probed.append(
        (len(recipes), recipes[0].options.get("steps"), n)) or sample_batch(recipes, n, seed))
    grid = [Recipe("ddls", t, {"steps": 50, "eps": 0.01}) for t in (1.0, 0.3, 0.1, 0.03)] + [Recipe("drs", 1.0, {})]
    scorer = points_scorer(lambda n, s: torch.randn(n, 2, generator=torch.Generator().manual_seed(s)).numpy(), "N", 2)
    entries = [Entry(r) for r in grid]
    n = _first_round_size(runner, scorer, entries, TuneConfig(Budget(60, "seconds"), n_start=64, chunk_size=64), 45.0)
    assert probed == [(4, 1, 16), (4, 3, 16)]  # 64 chains in all: 16 per candidate
    assert 32 <= n <= 64 and set(runner.per_sample) == {id(e) for e in entries}
