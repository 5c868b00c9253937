"""IDX files, the small classifier, and FID in its ('domain') feature space."""
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ddls.metrics.domain_classifier import ClassifierConfig, accuracy, load_classifier, save_classifier, train_classifier
from ddls.errors import DDLSError
from ddls.data.idx import FASHION_MNIST_DIR, read_fashion_mnist, read_idx, to_signed_images


pytestmark = pytest.mark.usefixtures("one_thread")


SHIPPED = Path(__file__).resolve().parent.parent / "pretrained" / "fmnist_classifier.pt"
HAVE_FMNIST = Path(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz").is_file()
needs_fmnist = pytest.mark.skipif(not HAVE_FMNIST, reason="needs `apt-get install dataset-fashion-mnist`")


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip_and_truncation(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    with gzip.open(tmp_path / "cut.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(DDLSError, match="holds 2 bytes of data, its header promises 10"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DDLSError, match="not found"):
        read_idx(tmp_path / "none.gz")


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(DDLSError, match="apt-get install dataset-fashion-mnist"):
        read_fashion_mnist("test", root=tmp_path)


def test_to_signed_images_range():
    x = to_signed_images(np.array([[[0, 255], [51, 204]]], dtype=np.uint8))
    assert x.shape == (1, 1, 2, 2)
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, -0.6, 0.6]))


def _toy_data(n, seed):
    """Class k: a bright 5x5 square in quadrant k of a dark 16x16 image, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=gen)
    x = torch.full((n, 1, 16, 16), -0.8) + 0.2 * torch.randn(n, 1, 16, 16, generator=gen)
    for k, (r, c) in enumerate([(1, 1), (1, 10), (10, 1), (10, 10)]):
        x[labels == k, :, r:r + 5, c:c + 5] += 1.5
    return x.clamp(-1, 1), labels


def test_classifier_learns_a_toy_task_and_is_seeded(tmp_path):
    x, y = _toy_data(256, 0)
    tx, ty = _toy_data(256, 1)
    config = ClassifierConfig(epochs=4, batch_size=32, lr=1e-2, width=4, feature_dim=16, seed=3)
    model, losses = train_classifier(x, y, config)
    assert accuracy(model, tx, ty) > 0.95
    assert losses[1] < losses[0]
    again, _ = train_classifier(x, y, config)
    for p, q in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    path = save_classifier(tmp_path / "c.pt", model, config, {"test_accuracy": 1.0})
    back, info = load_classifier(path)
    torch.testing.assert_close(back.features(tx[:5]), model.features(tx[:5]))
    assert info["test_accuracy"] == 1.0 and back.image_shape == (1, 16, 16)


def test_missing_classifier_says_how_to_train_it(tmp_path):
    from ddls.metrics.features import make_features

    with pytest.raises(DDLSError, match=r"not found; train them with `ddls classifier --out"):
        make_features("domain", classifier=tmp_path / "none.pt")


def test_domain_features_refuse_other_image_shapes():
    from ddls.metrics.features import make_features

    extractor = make_features("domain")
    with pytest.raises(DDLSError, match="for 1x28x28 images, got 3x32x32; use inception features"):
        extractor(torch.zeros(2, 3, 32, 32))


@needs_fmnist
def test_shipped_classifier_accuracy_is_what_its_model_card_says():
    model, info = load_classifier(SHIPPED)
    images, labels = read_fashion_mnist("test")
    acc = accuracy(model, to_signed_images(images), torch.from_numpy(labels).long())
    assert round(acc, 4) == info["test_accuracy"] == 0.9045  # pretrained/README.md


@needs_fmnist
def test_domain_fid_tells_real_from_wrong_images():
    from ddls.metrics.features import make_features
    from ddls.metrics.fid import fid, gaussian_stats

    extractor = make_features("domain")
    train = to_signed_images(read_fashion_mnist("train")[0][:3000])
    test = to_signed_images(read_fashion_mnist("test")[0][:1000])
    ref = gaussian_stats(extractor(train))
    real = fid(gaussian_stats(extractor(test)), ref)
    blurred = torch.nn.functional.avg_pool2d(test, 5, stride=1, padding=2)
    worse = fid(gaussian_stats(extractor(blurred)), ref)
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    worst = fid(gaussian_stats(extractor(noise)), ref)
    assert fid(ref, ref) == pytest.approx(0.0, abs=1e-6)
    assert real < 0.1 * worse, (real, worse)
    assert worse < worst, (worse, worst)


def test_domain_features_crop_the_padding_of_padded_images():
    """Images trained padded to 32x32 (the ResNet) are scored by their centred 28x28: same features."""
    import numpy as np

    from ddls.data.images import _pad_to
    from ddls.metrics.features import make_features

    extractor = make_features("domain")
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(6, 1, 28, 28), dtype=np.uint8)
    padded = _pad_to(small, 32)
    to_float = lambda x: torch.from_numpy(x).float() / 127.5 - 1
    np.testing.assert_allclose(extractor(to_float(padded)), extractor(to_float(small)), rtol=0, atol=1e-6)
    shifted = np.roll(padded, 2, axis=3)  # not centred: other features
    assert not np.allclose(extractor(to_float(shifted)), extractor(to_float(small)), atol=1e-3)
    with pytest.raises(DDLSError, match="for 1x28x28 images, got 1x64x64"):
        extractor.check_shape((1, 64, 64))
