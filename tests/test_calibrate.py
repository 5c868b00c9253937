"""Discriminator calibration (ddls.calibration): one entry point, held-out early stopping, known answers."""
import pytest
import torch
from torch import nn

from conftest import Linear, invoke, one_line_error
from ddls._torch import derived_seed, make_generator
from ddls.calibration import calibrate
from ddls.calibration.finetune import HELDOUT_STREAM
from ddls.calibration.heldout import draw_heldout, excluding
from ddls.data.real import real_source
from ddls.errors import DDLSError
from ddls.io.checkpoint import load_model
from ddls.posthoc import make_target
from ddls.sampling.energy import LatentEnergy


def identity_generator(dim):
    return Linear(torch.eye(dim), torch.zeros(dim))


def gaussian_draw(mean):
    """Real samples from N(mean, I)."""
    mean = torch.as_tensor(mean, dtype=torch.float32)

    def draw(n, gen):
        return mean.to(gen.device) + torch.randn(n, len(mean), generator=gen, device=gen.device)

    return draw


# --- the training loop finetune and dcd share -------------------------------------------------------------


def scripted_run(scores, *, higher=False, healthy=lambda: True, patience=2, steps=None):
    """train_early_stopped on a one-weight D whose update sets the weight to the step number, scored by
    `scores` in turn (every step evaluated)."""
    from ddls.calibration.finetune import FinetuneConfig, train_early_stopped

    d = nn.Linear(1, 1, bias=False)
    it = iter(scores)
    count = [0]

    def update():
        count[0] += 1
        with torch.no_grad():
            d.weight.fill_(float(count[0]))
        return torch.tensor(float(count[0]))

    cfg = FinetuneConfig(steps=steps or len(scores), eval_every=1, patience=patience)
    return d, train_early_stopped(d, cfg, update, lambda: next(it), start=5.0,
                                  higher_is_better=higher, healthy=healthy)


@pytest.mark.parametrize("higher, scores, best, best_step, stopped_at", [
    (False, [4.0, 3.0, 3.5, 3.2, 1.0], 3.0, 2, 4),  # lower is better: two evaluations without a new best stop it
    (True, [6.0, 7.0, 6.5, 6.9, 9.0], 7.0, 2, 4),  # higher is better (dcd's bound): the same, mirrored
    (False, [6.0, 7.0, 8.0], 5.0, 0, 2),  # nothing beats the start: no state kept
])
def test_train_early_stopped_keeps_the_best_d_and_stops_on_patience(higher, scores, best, best_step, stopped_at):
    d, run = scripted_run(scores, higher=higher)
    assert (run.best, run.best_step, run.steps, run.stopped) == (best, best_step, stopped_at, "patience")
    assert [s for s, _ in run.heldout_curve] == list(range(stopped_at + 1))
    assert [v for _, v in run.train_curve] == [float(s) for s in range(1, stopped_at + 1)]
    assert run.improved == (best_step > 0) == (run.keeper.state is not None)
    if run.keeper.state is not None:  # the kept weights are those of the best step, not the last
        assert float(run.keeper.state["weight"]) == float(best_step)


@pytest.mark.parametrize("scores, healthy", [([4.0, float("nan"), 1.0], lambda: True),
                                             ([4.0, 3.0, 1.0], lambda: False)])
def test_train_early_stopped_stops_at_the_first_non_finite_score_or_unhealthy_state(scores, healthy):
    _, run = scripted_run(scores, healthy=healthy, patience=5)
    expected = 2 if healthy() else 1
    assert (run.stopped, run.diverged, run.steps) == ("diverged", expected, expected)


# --- early stopping on a case built to overfit ---------------------------------------------------------

MEAN = (1.5, 0.0)  # real N(MEAN, I) against generated N(0, I)


def mlp(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))
    with torch.no_grad():  # start at the logit 0: chance, a fair start
        net[-1].weight.zero_()
        net[-1].bias.zero_()
    return net


def test_finetune_stops_early_when_the_discriminator_memorises_a_tiny_real_set():
    # 16 real points: a big MLP learns them by heart, so its training loss keeps falling while
    # its loss on fresh real points (from the same Gaussian) turns up after a first improvement
    points = gaussian_draw(MEAN)(16, make_generator(1))
    held_real = gaussian_draw(MEAN)(2000, make_generator(2))

    def draw_tiny(n, gen):
        return points[torch.randint(16, (n,), generator=gen)]

    energy = LatentEnergy(identity_generator(2), mlp(), 2)
    steps = 3000
    result = calibrate(energy, "finetune", draw_tiny, heldout_real=held_real, n_heldout=2000, steps=steps,
                       lr=1e-3, batch_size=16, eval_every=25, patience=4, seed=0)
    rec = result.record
    assert rec["stopped"] == "patience" and rec["steps_run"] < steps
    curve = dict(rec["heldout_curve"])
    first, best, final = rec["heldout_loss"]["first"], rec["heldout_loss"]["best"], rec["heldout_loss"]["final"]
    assert rec["improved"] and 0 < rec["best_step"] < rec["steps_run"]
    assert best == min(curve.values()) == curve[rec["best_step"]] and best < first
    assert final > best  # held-out loss rose after the best ...
    train = dict(rec["train_curve"])
    assert train[rec["steps_run"]] < train[rec["best_step"]]  # ... while the training loss kept falling
    # the returned D's loss on the same held-out set (rebuilt from its seed) is the best one seen
    held = draw_heldout(energy, None, 2000, make_generator(derived_seed(0, HELDOUT_STREAM)), held_real)
    assert held.loss(result.energy.score) == pytest.approx(best, abs=1e-6)
    assert held.loss(result.energy.score) <= held.loss(energy.score)
    assert result.energy.discriminator is not energy.discriminator
    assert torch.equal(energy.discriminator[-1].weight, torch.zeros(1, 256))  # the input is left alone


# --- never worse than the start -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finetune_returns_the_original_discriminator_when_it_is_already_optimal(seed):
    # real N(1, 1) against generated N(0, 1): the exact log ratio is x - 1/2, and D is exactly that
    d = Linear([[1.0]], [-0.5])
    energy = LatentEnergy(identity_generator(1), d, 1)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    # a big held-out set (its own optimum lies within ~1e-5 of the exact one) and steps large enough
    # that every evaluation finds D moved away from the optimum, by more than 5e-4 on 10 seeds tried
    result = calibrate(energy, "finetune", gaussian_draw([1.0]), n_heldout=100000, steps=400, lr=0.1,
                       batch_size=8, eval_every=20, patience=3, seed=seed)
    rec = result.record
    assert not rec["improved"] and rec["best_step"] == 0
    assert rec["heldout_loss"]["best"] == rec["heldout_loss"]["first"]
    assert rec["heldout_loss"]["final"] > rec["heldout_loss"]["first"]  # the tuning did move, for the worse
    assert result.energy.discriminator is d
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k])
    assert "kept the starting discriminator" in rec["note"]


def test_a_critic_starts_from_its_best_affine_map_which_is_stored():
    # a WGAN critic 4x - 2 of the same pair: not a logit, its affine map (a = 1/4, b = 0) is
    d = Linear([[4.0]], [-2.0])
    energy = LatentEnergy(identity_generator(1), d, 1, kind="wgan")
    result = calibrate(energy, "finetune", gaussian_draw([1.0]), n_heldout=20000, steps=40, lr=0.05, batch_size=8,
                       eval_every=20, patience=2, seed=0)
    start = result.record["start_map"]
    assert start["a"] == pytest.approx(0.25, abs=0.02) and start["b"] == pytest.approx(0.0, abs=0.05)
    assert result.energy.kind == "gan" and result.energy.score_map.kind == "platt"
    # the start is fair: its held-out loss is far below that of the raw critic read as a logit
    losses = result.record["heldout_loss"]
    assert losses["first"] < losses["raw_score"] - 0.1
    x = torch.linspace(-2, 2, 5)[:, None]
    torch.testing.assert_close(result.energy.score(x), result.energy.score_map(result.energy.discriminator(x)[:, 0]))


def test_finetuning_the_last_layer_leaves_the_rest_of_d_untouched():
    # real N(MEAN, I) against generated N(0, I); the MLP's hidden layers stay at their random start, so
    # only a linear head on its random features can learn, and it does (the held-out loss falls)
    energy = LatentEnergy(identity_generator(2), mlp(), 2)
    result = calibrate(energy, "finetune", gaussian_draw(MEAN), n_heldout=2000, steps=300, lr=1e-2, batch_size=64,
                       eval_every=50, patience=3, seed=0, layers="last")
    before, after = energy.discriminator.state_dict(), result.energy.discriminator.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"4.weight", "4.bias"}
    assert result.record["layers"] == "last" and result.record["improved"]
    assert result.record["heldout_loss"]["best"] < result.record["heldout_loss"]["first"] - 0.05
    with pytest.raises(DDLSError, match="layers"):
        calibrate(energy, "finetune", gaussian_draw(MEAN), steps=1, layers="first")


def test_instance_noise_changes_training_only_and_is_recorded():
    energy = LatentEnergy(identity_generator(2), mlp(), 2)
    kw = dict(n_heldout=500, steps=60, lr=1e-3, batch_size=32, eval_every=20, patience=5, seed=0)
    clean = calibrate(energy, "finetune", gaussian_draw(MEAN), **kw)
    noisy = calibrate(energy, "finetune", gaussian_draw(MEAN), noise=3.0, **kw)
    assert noisy.record["noise"] == 3.0 and clean.record["noise"] == 0.0
    # the same held-out set (clean, from the same seed) scores both: the start is the same number
    assert noisy.record["heldout_loss"]["first"] == clean.record["heldout_loss"]["first"]
    # noise of std 3 on inputs 1.5 apart hides most of the signal: the noisy fit learns a flatter logit
    x = torch.tensor([[-2.0, 0.0], [4.0, 0.0]])
    spread = {k: float(r.energy.score(x).diff().abs()) for k, r in (("clean", clean), ("noisy", noisy))}
    assert spread["noisy"] < spread["clean"]
    with pytest.raises(DDLSError, match="noise"):
        calibrate(energy, "finetune", gaussian_draw(MEAN), steps=1, noise=float("nan"))


def test_the_last_layer_of_a_spectral_normalised_d_is_found_with_its_parametrisation():
    from ddls.calibration.finetune import last_layer
    from torch.nn.utils.parametrizations import spectral_norm

    d = nn.Sequential(spectral_norm(nn.Linear(2, 8)), nn.ReLU(), spectral_norm(nn.Linear(8, 1)))
    head = last_layer(d)
    assert head is d[2]
    assert {n for n, _ in head.named_parameters()} == {"bias", "parametrizations.weight.original"}


# --- head: the last layer refitted exactly -----------------------------------------------------------------

def features_then_head(spectral=False):
    """D(x) = head(x): a first layer fixed at the identity (D's features are x), then a zeroed linear head."""
    from torch.nn.utils.parametrizations import spectral_norm

    first, head = nn.Linear(2, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
        first.bias.zero_()
        head.weight.fill_(1e-3)
        head.bias.zero_()
    return nn.Sequential(first, spectral_norm(head) if spectral else head)


@pytest.mark.parametrize("spectral", [False, True])
def test_head_recovers_the_exact_log_ratio_on_fixed_features(spectral):
    # real N(MEAN, I) against generated N(0, I): log ratio MEAN . x - |MEAN|^2 / 2, linear in D's features
    energy = LatentEnergy(identity_generator(2), features_then_head(spectral), 2)
    result = calibrate(energy, "head", gaussian_draw(MEAN), n=20000, seed=0)
    rec = result.record
    assert rec["kind"] == "head" and rec["improved"] and rec["features"] == 2
    assert rec["heldout_loss"]["best"] < rec["heldout_loss"]["first"] - 0.1
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-2.0, 3.0]])
    want = x @ torch.tensor(MEAN) - 0.5 * sum(m * m for m in MEAN)
    torch.testing.assert_close(result.energy.score(x), want, atol=0.08, rtol=0)
    before, after = energy.discriminator.state_dict(), result.energy.discriminator.state_dict()
    assert torch.equal(before["0.weight"], after["0.weight"])  # only the head changed
    assert (result.energy.score_map is not None) == spectral  # a normalised head needs its scale on top
    assert result.energy.discriminator is not energy.discriminator and energy.score_map is None  # input untouched
    # the post-hoc path fits the same head for the same seed
    target = make_target(energy, "head", gaussian_draw(MEAN), n=20000, seed=0)
    torch.testing.assert_close(target.energy.score(x), result.energy.score(x))


def test_head_keeps_the_discriminator_when_no_refit_beats_it():
    # D already the exact log ratio of real N(MEAN, I) against generated N(0, I); with 30 training
    # points each, every refit is noisier than D on 20,000 held-out points, so D stays
    d = features_then_head()
    with torch.no_grad():
        d[1].weight.copy_(torch.tensor([MEAN]))
        d[1].bias.fill_(-0.5 * sum(m * m for m in MEAN))
    energy = LatentEnergy(identity_generator(2), d, 2)
    result = calibrate(energy, "head", gaussian_draw(MEAN), n=30, n_heldout=20000, seed=0)
    assert not result.record["improved"] and result.energy.discriminator is d
    assert result.record["heldout_loss"]["best"] == result.record["heldout_loss"]["first"]


@pytest.mark.parametrize("d, kind, message", [
    (nn.Sequential(nn.Linear(2, 1), nn.Tanh()), "gan", "not the plain output of its last layer"),
    (nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)), "gan", "one output"),
    (nn.Sequential(nn.Linear(2, 1)), "ae", "use --method finetune"),
])
def test_head_refuses_a_discriminator_it_cannot_refit_exactly(d, kind, message):
    energy = LatentEnergy(identity_generator(2), d, 2, kind=kind)
    with pytest.raises(DDLSError, match=message):
        calibrate(energy, "head", gaussian_draw(MEAN), n=50, n_heldout=20, seed=0)


# --- held-out real samples are never trained on ---------------------------------------------------------

def test_training_draws_skip_the_held_out_samples_of_a_finite_set():
    pool = torch.arange(20.0)[:, None]

    def draw(n, gen):
        return pool[torch.randint(20, (n,), generator=gen)]

    held = draw(10, make_generator(0))
    train = excluding(draw, held)(500, make_generator(1))
    assert len(train) == 500
    assert not set(train[:, 0].tolist()) & set(held[:, 0].tolist())
    assert set(train[:, 0].tolist()) == set(range(20)) - set(held[:, 0].tolist())
    with pytest.raises(DDLSError, match="hold out fewer"):
        excluding(draw, pool)(5, make_generator(1))


# --- platt recovers a known map --------------------------------------------------------------------------

def test_platt_recovers_a_known_affine_map():
    # D = 2x + 3 on real N(1, 1) against generated N(0, 1); the log ratio x - 1/2 = (D - 3)/2 - 1/2
    energy = LatentEnergy(identity_generator(1), Linear([[2.0]], [3.0]), 1)
    result = calibrate(energy, "platt", gaussian_draw([1.0]), n=20000, seed=0)
    assert result.map.kind == "platt" and result.record["kind"] == "platt"
    assert result.map.a == pytest.approx(0.5, abs=0.03) and result.map.b == pytest.approx(-2.0, abs=0.08)
    assert calibrate(energy, "logistic", gaussian_draw([1.0]), n=20000, seed=0).map == result.map  # the alias
    assert result.energy is energy and result.evaluations == 40000


def test_unknown_methods_and_missing_real_data_are_refused():
    energy = LatentEnergy(identity_generator(1), Linear([[1.0]], [0.0]), 1)
    with pytest.raises(DDLSError, match="unknown calibration 'nope'"):
        calibrate(energy, "nope", gaussian_draw([1.0]))
    with pytest.raises(DDLSError, match="needs real samples"):
        calibrate(energy, "finetune", None)
    with pytest.raises(DDLSError, match="steps must be >= 1"):
        calibrate(energy, "finetune", gaussian_draw([1.0]), steps=0)


# --- the CLI and the post-hoc path run the same code --------------------------------------------------------

def test_cli_and_make_target_fine_tune_to_the_same_discriminator(wgan_ckpt, tmp_path):
    out = tmp_path / "cal.pt"
    r = invoke("calibrate", "--ckpt", wgan_ckpt, "--steps", 60, "--seed", 3, "--out", out)
    assert r.exit_code == 0, r.output
    assert "held-out logistic loss" in r.output and "energy kind now 'gan'" in r.output
    cal = load_model(out)
    rec = cal.meta["extra"]["calibration"]
    assert cal.energy_kind == "gan" and rec["energy_before"] == "wgan" and cal.score_map.kind == "platt"

    model = load_model(wgan_ckpt)
    energy = model.energy()
    target = make_target(energy, "finetune", real_source(model), seed=3, finetune_steps=60)
    record = target.record
    assert record["calibration"]["heldout_loss"] == rec["heldout_loss"]
    tuned = target.energy.discriminator.state_dict()
    for k, v in cal.discriminator.state_dict().items():
        assert torch.equal(v, tuned[k]), k
    assert target.energy.score_map == cal.score_map
    x = torch.randn(64, 2, generator=make_generator(0))
    torch.testing.assert_close(target.of_samples(x), cal.energy().score(x), rtol=0, atol=0)
    for k, v in load_model(wgan_ckpt).generator.state_dict().items():  # G is copied as it was
        assert torch.equal(v, cal.generator.state_dict()[k])


def test_cli_platt_checkpoint_applies_its_map(wgan_ckpt, tmp_path):
    out = tmp_path / "platt.pt"
    r = invoke("calibrate", "--ckpt", wgan_ckpt, "--method", "platt", "--n", 2000, "--out", out)
    assert r.exit_code == 0, r.output
    cal, raw = load_model(out), load_model(wgan_ckpt)
    rec = cal.meta["extra"]["calibration"]
    assert rec["kind"] == "platt" and cal.energy_kind == "gan"
    x = torch.randn(32, 2, generator=make_generator(0))
    with torch.no_grad():
        torch.testing.assert_close(cal.energy().score(x), rec["a"] * raw.energy().score(x) + rec["b"])
    # the map travels with the weights into .safetensors
    r = invoke("export", "--ckpt", out, "--out", tmp_path / "platt.safetensors")
    assert r.exit_code == 0, r.output
    assert load_model(tmp_path / "platt.safetensors").score_map == cal.score_map
    # the same map as the post-hoc path fits with the same seed and sample count
    record = make_target(raw.energy(), "platt", real_source(raw), n=2000, seed=0).record
    assert (record["calibration"]["a"], record["calibration"]["b"]) == (rec["a"], rec["b"])


def test_cli_head_checkpoint_scores_as_the_in_memory_fit(wgan_ckpt, tmp_path):
    out = tmp_path / "head.pt"
    r = invoke("calibrate", "--ckpt", wgan_ckpt, "--method", "head", "--n", 400, "--n-heldout", 200, "--out", out)
    assert r.exit_code == 0, r.output
    assert "last layer refitted on" in r.output and "energy kind now 'gan'" in r.output
    raw, cal = load_model(wgan_ckpt), load_model(out)
    rec = cal.meta["extra"]["calibration"]
    assert rec["kind"] == "head" and rec["heldout_loss"]["best"] <= rec["heldout_loss"]["first"]
    fitted = calibrate(raw.energy(), "head", real_source(raw), n=400, n_heldout=200, seed=0)
    x = torch.randn(16, 2, generator=make_generator(5))
    torch.testing.assert_close(cal.energy().score(x), fitted.energy.score(x))


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown calibration 'nope'; choose one of raw, platt, isotonic, finetune"),
    (["--method", "raw"], "raw calibration changes nothing"),
    (["--method", "platt", "--layers", "last"], "--layers is an option of --method finetune/dcd, not of platt"),
    (["--method", "head", "--steps", "10"], "--steps is an option of --method finetune/dcd, not of head"),
    (["--method", "finetune", "--n", "10"], "--n is an option of --method head/platt/isotonic, not of finetune"),
])
def test_cli_calibrate_one_line_errors(wgan_ckpt, tmp_path, args, message):
    line = one_line_error(invoke("calibrate", "--ckpt", wgan_ckpt, *args, "--out", tmp_path / "x.pt"))
    assert message in line


def test_an_isotonic_checkpoint_serves_drs_and_refuses_ddls_in_one_line(wgan_ckpt, tmp_path):
    iso = tmp_path / "iso.pt"
    r = invoke("calibrate", "--ckpt", wgan_ckpt, "--method", "isotonic", "--n", 500, "--out", iso)
    assert r.exit_code == 0, r.output
    assert load_model(iso).score_map.kind == "isotonic"
    for method in ("ddls", "mala"):
        line = one_line_error(invoke("sample", "--ckpt", iso, "--method", method, "--n", 8, "--steps", 2,
                                     "--out", tmp_path / "s.npz"))
        assert "isotonic calibration is a step function" in line
    r = invoke("sample", "--ckpt", iso, "--method", "drs", "--drs-pilot", 20, "--n", 8, "--out", tmp_path / "d.npz")
    assert r.exit_code == 0, r.output


def test_cli_calibrates_an_image_autoencoder_checkpoint_and_keeps_its_energy_kind(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        img = np.zeros((16, 16), dtype=np.uint8)
        a, b = rng.integers(0, 12, 2)
        img[a:a + 4, b:b + 4] = 255
        Image.fromarray(img).save(folder / f"{i}.png")
    run = tmp_path / "run"
    r = invoke("train", "--data", f"folder:{folder}", "--loss", "ebgan", "--steps", 3, "--width", 4, "--z-dim", 8,
               "--batch-size", 4, "--out", run)
    assert r.exit_code == 0, r.output
    r = invoke("calibrate", "--ckpt", run / "model.pt", "--steps", 40, "--batch-size", 16, "--lr", 1e-2,
               "--n-heldout", 8, "--eval-every", 10, "--out", tmp_path / "cal.pt")
    assert r.exit_code == 0, r.output
    assert "energy kind now 'ae'" in r.output
    model = load_model(tmp_path / "cal.pt")
    rec = model.meta["extra"]["calibration"]
    assert model.energy_kind == "ae" and rec["energy_before"] == "ae"
    # minus the reconstruction error is no logit: the start is its affine map, stored with the model
    assert rec["start_map"]["kind"] == "platt" and model.score_map.kind == "platt"
    assert rec["heldout_loss"]["best"] <= rec["heldout_loss"]["first"]
