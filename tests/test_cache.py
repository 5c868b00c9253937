"""The user cache (ddls.io.cache): a second call reads what the first computed, a changed input misses, a
corrupt entry is computed again, and the reference statistics and calibration fits that tune, compare,
sweep and eval share go through it."""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import Linear
from ddls.io import cache
from ddls.io.checkpoint import Model


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def counting(result):
    calls = []

    def compute():
        calls.append(1)
        return {k: v.copy() for k, v in result.items()}, {"made": len(calls)}

    return compute, calls


def test_a_second_call_reads_the_first_and_a_changed_input_misses(cache_dir):
    compute, calls = counting({"mu": np.arange(3.0)})
    first = cache.cached("stats", {"data": "a", "n": 3}, compute)
    second = cache.cached("stats", {"data": "a", "n": 3}, compute)
    assert len(calls) == 1 and second[1] == {"made": 1}
    np.testing.assert_array_equal(first[0]["mu"], second[0]["mu"])
    cache.cached("stats", {"data": "a", "n": 4}, compute)  # another setting
    cache.cached("stats", {"data": "b", "n": 3}, compute)  # another input
    cache.cached("features", {"data": "a", "n": 3}, compute)  # another kind
    assert len(calls) == 4 and len(list(cache_dir.glob("*.npz"))) == 4


@pytest.mark.parametrize("damage", ["truncate", "flip", "other key", "garbage"])
def test_a_corrupt_entry_is_computed_again_not_trusted(cache_dir, damage):
    compute, calls = counting({"mu": np.arange(1000.0)})
    parts = {"data": "a"}
    cache.cached("stats", parts, compute)
    path = cache.path_for("stats", parts)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":  # one byte of the array's data
        i = raw.index(np.arange(1000.0)[500:501].tobytes())
        path.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
    elif damage == "other key":  # a whole entry of other inputs under this name
        cache.store("stats", {"data": "b"}, {"mu": np.zeros(3)})
        cache.path_for("stats", {"data": "b"}).replace(path)
    else:
        path.write_bytes(b"not a zip")
    arrays, _ = cache.cached("stats", parts, compute)
    assert len(calls) == 2
    np.testing.assert_array_equal(arrays["mu"], np.arange(1000.0))
    cache.cached("stats", parts, compute)  # rewritten whole: read again
    assert len(calls) == 2


def test_where_the_cache_lives_and_off(tmp_path, monkeypatch):
    monkeypatch.delenv("DDLS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "ddls"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "ddls"
    monkeypatch.setenv("DDLS_CACHE_DIR", "off")
    compute, calls = counting({"x": np.ones(2)})
    cache.cached("stats", {}, compute)
    cache.cached("stats", {}, compute)
    assert len(calls) == 2 and not (tmp_path / "home" / ".cache").exists()


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("DDLS_CACHE_DIR", str(blocker / "cache"))
    compute, calls = counting({"x": np.ones(2)})
    arrays, _ = cache.cached("stats", {}, compute)
    np.testing.assert_array_equal(arrays["x"], np.ones(2))


class Flat:
    """A feature 'network' that flattens images and keeps the first 4 pixels, counting the images it sees."""

    name, dim, info = "flat", 4, {"net": "first four pixels"}

    def __init__(self):
        self.seen = 0

    def __call__(self, images, progress=False):
        self.seen += len(images)
        return torch.as_tensor(images).flatten(1)[:, :4].double().numpy()


def test_reference_statistics_are_computed_once_per_split_and_images(cache_dir, monkeypatch):
    from ddls.metrics import fid_stats
    from ddls.metrics.fid import gaussian_stats

    images = {"train": torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(0)),
              "test": torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(1))}
    monkeypatch.setattr(fid_stats, "dataset_images", lambda name, split="train": images[split])
    net = Flat()
    first, meta = fid_stats.reference_stats(net, data="fashion-mnist")
    again, _ = fid_stats.reference_stats(net, data="fmnist")  # the same data set by another name
    assert net.seen == 50 and meta == {"data": "fashion-mnist", "split": "train", "n": 50}
    want = gaussian_stats(Flat()(images["train"]))
    np.testing.assert_allclose(again.mu, want.mu)
    np.testing.assert_allclose(again.sigma, want.sigma)
    fid_stats.dataset_stats("fashion-mnist", "test", net)
    np.testing.assert_allclose(fid_stats.dataset_features("fashion-mnist", "test", net), Flat()(images["test"]))
    assert net.seen == 80  # the test split's features, once for its statistics and its features
    fid_stats.dataset_stats("fashion-mnist", "train", net, 20)  # fewer images: another entry
    images["train"] = images["train"] + 0.5  # the data changed on disk
    fid_stats.dataset_stats("fashion-mnist", "train", net)
    assert net.seen == 80 + 20 + 50


def test_a_calibration_fit_is_read_back_for_the_same_checkpoint_data_and_seed(cache_dir, monkeypatch):
    """make_target keeps a fit when its data is named: tune (cached_target), compare and sample share it."""
    import ddls.calibration as calibration_module
    from ddls.posthoc import make_target
    from ddls.tuning.run import cached_target

    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    model = Model(Linear(np.eye(2), [0.5, 0.0]), d, (2,), "wgan")
    fits = []
    real = calibration_module.calibrate

    def counted(*args, **kw):
        fits.append(args[1])
        return real(*args, **kw)

    monkeypatch.setattr(calibration_module, "calibrate", counted)

    def draw_real(n, gen):
        return torch.randn(n, 2, generator=gen)

    for calibration in ("platt", "head"):
        first = cached_target(model.energy(), calibration, draw_real, seed=3, data="N(0, I)")
        again = make_target(model.energy(), calibration, draw_real, n=5000, seed=3, data="N(0, I)")  # as sample does
        assert fits.count(calibration) == 1 and again.record["calibration"]["cached"]
        assert again.record["evaluations"] == 0 < first.record["evaluations"]
        x = torch.randn(16, 2)
        torch.testing.assert_close(again.of_samples(x), first.of_samples(x))
        assert again.energy.kind == first.energy.kind
    cached_target(model.energy(), "platt", draw_real, seed=4, data="N(0, I)")  # another seed
    cached_target(model.energy(), "platt", draw_real, seed=3, data="other data")
    make_target(model.energy(), "platt", draw_real, n=1000, seed=3, data="N(0, I)")  # another sample size
    with torch.no_grad():
        d[0].weight.add_(0.1)  # another checkpoint
    cached_target(model.energy(), "platt", draw_real, seed=3, data="N(0, I)")
    cached_target(model.energy(), "platt", draw_real, seed=3, data=None)  # data it cannot name: not cached
    cached_target(model.energy(), "platt", draw_real, seed=3, data=None)
    assert fits.count("platt") == 7


def test_compare_reads_the_calibration_tune_fitted(cache_dir):
    from ddls.posthoc.compare import compare
    from ddls.tuning.run import cached_target

    torch.manual_seed(0)
    model = Model(Linear(np.eye(2), [0.5, 0.0]), nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)), (2,),
                  "wgan")

    def draw_real(n, gen):
        return torch.randn(n, 2, generator=gen)

    cached_target(model.energy(), "platt", draw_real, seed=0, data="N(0, I)")
    evaluate = lambda x: {"mean": float(np.abs(x).mean())}  # noqa: E731
    _, _, record = compare(model.energy(), [], {}, evaluate, n=20, seed=0, calibration="platt", draw_real=draw_real,
                           data="N(0, I)")
    assert record["calibration"]["cached"] and record["evaluations"] == 0
    _, _, unnamed = compare(model.energy(), [], {}, evaluate, n=20, seed=0, calibration="platt", draw_real=draw_real)
    assert "cached" not in unnamed["calibration"] and unnamed["evaluations"] > 0
