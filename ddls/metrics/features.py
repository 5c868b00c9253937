"""Feature spaces for FID: one small interface, two networks.

- 'inception': pool features (2048-d) of the FID InceptionV3 of pytorch-gan-metrics, the standard
  FID; grayscale images are repeated to 3 channels and resized to 299x299 by that library.
- 'domain': the 128-d penultimate features of ddls' small Fashion-MNIST classifier
  (pretrained/fmnist_classifier.pt), the usual FID for 28x28 grayscale data.

An extractor maps images in [-1, 1], shape (N, C, H, W), to (N, D) float64 features.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import DDLSError

FEATURES = ("domain", "inception")
DEFAULT_CLASSIFIER = Path(__file__).resolve().parents[2] / "pretrained" / "fmnist_classifier.pt"


@dataclass
class FeatureExtractor:
    """`net` maps a batch of images in [-1, 1] to (B, D) features on `device`."""

    name: str
    dim: int
    net: Callable[[Tensor], Tensor]
    device: torch.device
    batch_size: int = 100
    info: dict = field(default_factory=dict)  # what identifies the network, stored with statistics
    image_shape: tuple[int, ...] | None = None  # the (C, H, W) it needs, None: any

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Refuse sample shapes (C, H, W) the network cannot take, in one line."""
        if len(shape) != 3:
            raise DDLSError(f"{self.name} features take images (N, C, H, W), got samples of shape {tuple(shape)}")
        if self.image_shape is not None and tuple(shape) != self.image_shape and self._crop(shape) is None:
            raise DDLSError(f"{self.name} features are for {'x'.join(map(str, self.image_shape))} images, got "
                            f"{'x'.join(map(str, shape))}; use inception features")

    def _crop(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        """(top, left) that cuts a centred image_shape out of `shape`: the padding of images trained padded
        (28 -> 32 for the ResNet) is taken back off; None when `shape` is no such padding."""
        c, h, w = self.image_shape
        if shape[0] != c or shape[1] < h or shape[2] < w or shape[1] - h > 8 or shape[2] - w > 8:
            return None
        return (shape[1] - h) // 2, (shape[2] - w) // 2

    @torch.no_grad()
    def __call__(self, images: Tensor | np.ndarray, *, progress: bool = False) -> np.ndarray:
        images = torch.as_tensor(images)
        shape = tuple(images.shape[1:])
        self.check_shape(shape)
        if self.image_shape is not None and shape != self.image_shape:
            (top, left), (h, w) = self._crop(shape), self.image_shape[1:]
            images = images[:, :, top:top + h, left:left + w]
        starts = range(0, len(images), self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"{self.name} features", unit="batch", leave=False, dynamic_ncols=True)
        out = np.empty((len(images), self.dim), dtype=np.float64)
        for i in starts:
            batch = images[i:i + self.batch_size].to(self.device, torch.float32)
            out[i:i + len(batch)] = self.net(batch).double().cpu().numpy()
        return out


def domain_features(device: torch.device | str = "cpu", classifier: str | os.PathLike | None = None,
                    batch_size: int = 500) -> FeatureExtractor:
    from .domain_classifier import load_classifier
    from ..io.resume import file_digest

    path = Path(classifier or DEFAULT_CLASSIFIER)
    model, info = load_classifier(path, device)
    return FeatureExtractor("domain", model.hidden.out_features, model.features, torch.device(device), batch_size,
                            {"classifier": path.name, "classifier_sha256": file_digest(path),
                             "test_accuracy": info.get("test_accuracy")}, model.image_shape)


def inception_net(device: torch.device | str, with_classifier: bool = False):
    """pytorch-gan-metrics' FID InceptionV3 on `device`: pool features, and 1008-way softmax if asked."""
    from .inception_weights import read_installed, require_classifier

    # refuses a missing, pickled or (for IS) classifier-less file before the library opens it
    if with_classifier:
        require_classifier()
    else:
        read_installed()
    from pytorch_gan_metrics.inception import InceptionV3

    net = InceptionV3([3, 4] if with_classifier else [3])  # finds the weights in torch hub's cache
    return net.to(device).eval()


def _to_inception_input(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], gray -> RGB; the library resizes to 299x299 and rescales to [-1, 1] itself."""
    x = (x + 1) / 2
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def inception_features(device: torch.device | str = "cpu", batch_size: int = 50) -> FeatureExtractor:
    from .inception_weights import WEIGHTS_NAME

    net = inception_net(device)
    return FeatureExtractor("inception", 2048, lambda x: net(_to_inception_input(x))[0].flatten(1),
                            torch.device(device), batch_size, {"weights": WEIGHTS_NAME})


def inception_probs(images: Tensor, device: torch.device | str = "cpu", batch_size: int = 50) -> np.ndarray:
    """(N, 1008) softmax outputs of the Inception classifier, for the Inception Score."""
    net = inception_net(device, with_classifier=True)
    extractor = FeatureExtractor("inception-softmax", 1008, lambda x: net(_to_inception_input(x))[1],
                                 torch.device(device), batch_size)
    return extractor(images)


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over splits, through pytorch-gan-metrics."""
    from pytorch_gan_metrics.core import calculate_inception_score

    mean, std = calculate_inception_score(probs, splits=min(splits, len(probs)), use_torch=False)
    return float(mean), float(std)


def make_features(name: str, device: torch.device | str = "cpu", *, classifier: str | os.PathLike | None = None,
                  batch_size: int | None = None) -> FeatureExtractor:
    if name == "domain":
        return domain_features(device, classifier, batch_size or 500)
    if name == "inception":
        return inception_features(device, batch_size or 50)
    raise DDLSError(f"unknown feature space {name!r}; use {' or '.join(FEATURES)}")
