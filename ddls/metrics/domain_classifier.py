"""A small Fashion-MNIST classifier whose penultimate layer is the 'domain' feature space for FID.

MNIST-family papers measure FID in the features of a classifier trained on the data
itself, because ImageNet's Inception sees 28x28 grayscale images as blurry upscaled
oddities. The network here is small (about 100k weights) so it trains in minutes on a CPU.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .._torch import make_generator
from ..errors import DDLSError
from ..io.outputs import write_bytes

FORMAT = "ddls-classifier"


class SmallClassifier(nn.Module):
    """Three 3x3 conv + max-pool stages, then a `feature_dim` hidden layer (the FID features) and the logits."""

    def __init__(self, in_channels: int = 1, size: int = 28, num_classes: int = 10, width: int = 16,
                 feature_dim: int = 128):
        super().__init__()
        self.arch = {"in_channels": in_channels, "size": size, "num_classes": num_classes, "width": width,
                     "feature_dim": feature_dim}
        self.image_shape = (in_channels, size, size)
        chans = (in_channels, width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.convs = nn.Sequential(*layers)
        side = size // 8
        self.hidden = nn.Linear(chans[-1] * side * side, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(N, feature_dim) penultimate activations of images in [-1, 1]."""
        return F.relu(self.hidden(torch.flatten(self.convs(x), 1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class ClassifierConfig:
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    width: int = 16
    feature_dim: int = 128
    seed: int = 0


def build_classifier(config: ClassifierConfig, in_channels: int = 1, size: int = 28,
                     num_classes: int = 10) -> SmallClassifier:
    """A freshly initialised classifier; the initial weights depend on config.seed alone."""
    with torch.random.fork_rng(devices=[]):  # PyTorch's initialisers draw from the global RNG: fence it off
        torch.manual_seed(config.seed)
        return SmallClassifier(in_channels, size, num_classes, config.width, config.feature_dim)


def train_classifier(images: Tensor, labels: Tensor, config: ClassifierConfig, *,
                     progress: bool = False) -> tuple[SmallClassifier, list[float]]:
    """Adam on cross-entropy with a cosine learning-rate decay; mini-batches shuffled by a generator
    seeded from config.seed.

    images: (N, C, H, W) in [-1, 1]; labels: (N,) int64. Returns the model and the mean loss per epoch.
    """
    model = build_classifier(config, images.shape[1], images.shape[2], int(labels.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = -(-len(images) // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    gen = make_generator(config.seed + 1)
    losses = []
    for epoch in range(config.epochs):
        order = torch.randperm(len(images), generator=gen)
        total, seen = 0.0, 0
        batches = range(0, len(images), config.batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, dynamic_ncols=True)
        model.train()
        for start in batches:
            idx = order[start:start + config.batch_size]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        losses.append(total / seen)
        if not np.isfinite(losses[-1]):
            raise DDLSError(f"classifier training diverged in epoch {epoch + 1}; try a smaller lr")
    return model.eval(), losses


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
                  for i in range(0, len(images), batch_size))
    return correct / len(images)


def save_classifier(path: str | os.PathLike, model: SmallClassifier, config: ClassifierConfig,
                    info: dict) -> Path:
    payload = {"format": FORMAT, "arch": json.dumps(model.arch), "config": json.dumps(asdict(config)),
               "info": json.dumps(info), "state_dict": model.state_dict()}
    return write_bytes(path, lambda fh: torch.save(payload, fh))


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[SmallClassifier, dict]:
    """(model in eval mode, info) from a file written by save_classifier."""
    from ..io.checkpoint import read_checkpoint

    path = Path(path)
    if not path.exists():
        raise DDLSError(f"classifier weights {path} not found; train them with `ddls classifier --out {path}` "
                        f"(a few minutes on a CPU)")
    payload = read_checkpoint(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DDLSError(f"{path} is not a ddls classifier file; make one with `ddls classifier --out {path}`")
    model = SmallClassifier(**json.loads(payload["arch"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise DDLSError(f"{path}: classifier weights do not fit its architecture") from exc
    return model.to(device).eval(), json.loads(payload.get("info") or "{}")


def train_fashion_mnist(config: ClassifierConfig, *, progress: bool = False) -> tuple[SmallClassifier, dict]:
    """Train on the 60k training images, report accuracy on the 10k test images."""
    from ..data.idx import read_fashion_mnist, to_signed_images

    train_x, train_y = read_fashion_mnist("train")
    test_x, test_y = read_fashion_mnist("test")
    t0 = time.perf_counter()
    model, losses = train_classifier(to_signed_images(train_x), torch.from_numpy(train_y).long(), config,
                                     progress=progress)
    seconds = time.perf_counter() - t0
    acc = accuracy(model, to_signed_images(test_x), torch.from_numpy(test_y).long())
    info = {"data": "fashion-mnist", "test_accuracy": round(acc, 4), "train_seconds": round(seconds, 1),
            "epoch_losses": [round(v, 4) for v in losses], "torch": torch.__version__,
            "threads": torch.get_num_threads()}
    return model, info
