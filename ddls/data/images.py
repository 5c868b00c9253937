"""Image datasets for training and reference statistics: Fashion-MNIST, CIFAR-10, a folder.

Images are held as uint8 (N, C, H, W) and handed out as floats in [-1, 1], the range
of the generators' tanh output.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DDLSError
from .idx import read_fashion_mnist

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels (N,)) read from the IDX files of Debian's dataset-fashion-mnist."""
    return read_fashion_mnist(split, root)


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 through torchvision: downloaded to `root` (default ~/.cache/ddls/cifar10) on first use."""
    from torchvision.datasets import CIFAR10

    root = Path(root or Path.home() / ".cache" / "ddls" / "cifar10")
    try:
        ds = CIFAR10(str(root), train=split == "train", download=True)
    except Exception as exc:  # torchvision raises URLError, RuntimeError, OSError... when offline
        raise DDLSError(f"CIFAR-10 could not be loaded into {root} ({type(exc).__name__}: {exc}); "
                        f"download it on a machine with internet and copy the folder there") from None
    return np.asarray(ds.data), np.asarray(ds.targets)  # (N, 32, 32, 3)


def load_folder(folder: str | os.PathLike, size: int | None = None, channels: int = 3) -> np.ndarray:
    """Every image under `folder` (png, jpg, bmp, webp), centre-cropped square and resized to size."""
    from PIL import Image

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DDLSError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    out = []
    for p in files:
        try:
            img = Image.open(p).convert("L" if channels == 1 else "RGB")
        except OSError as exc:
            raise DDLSError(f"cannot read image {p}: {exc}") from None
        w, h = img.size
        side = min(w, h)
        img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
        if size is not None and side != size:
            img = img.resize((size, size), Image.BILINEAR)
        elif size is None and out and img.size != (out[0].shape[1], out[0].shape[0]):
            raise DDLSError(f"{p} is {img.size[0]}x{img.size[1]}, others are {out[0].shape[1]}x{out[0].shape[0]}; "
                            f"give an image size to resize them all")
        out.append(np.asarray(img))
    return np.stack(out)


def _nchw(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    return x.transpose(0, 3, 1, 2)  # NHWC -> NCHW


def _pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Pad (N, C, h, w) with black borders to size x size (28 -> 32 for the ResNet)."""
    h, w = x.shape[2:]
    if (h, w) == (size, size):
        return x
    if h > size or w > size:
        raise DDLSError(f"images are {h}x{w}; image size {size} would crop them")
    top, left = (size - h) // 2, (size - w) // 2
    return np.pad(x, ((0, 0), (0, 0), (top, size - h - top), (left, size - w - left)))


@dataclass
class ImageData:
    """A dataset of uint8 images (N, C, H, W); `sample` draws float batches in [-1, 1]."""

    name: str
    images: Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        idx = torch.randint(len(self), (n,), generator=generator, device=generator.device).cpu()
        return to_float(self.images[idx])


def to_float(images: Tensor) -> Tensor:
    return images.float() / 127.5 - 1


IMAGE_DATASETS = ("fashion-mnist", "cifar10")


def is_image_data(name: str) -> bool:
    return name in IMAGE_DATASETS or name.startswith("folder:")


def get_image_data(name: str, *, split: str = "train", size: int | None = None, channels: int = 3) -> ImageData:
    """'fashion-mnist', 'cifar10' or 'folder:PATH'; `size` pads (or, for folders, resizes) to size x size."""
    if name == "fashion-mnist":
        x = _nchw(load_fashion_mnist(split)[0])
    elif name == "cifar10":
        x = _nchw(load_cifar10(split)[0])
    elif name.startswith("folder:"):
        x = _nchw(load_folder(name[len("folder:"):], size, channels))
    else:
        raise DDLSError(f"unknown image data {name!r}; use fashion-mnist, cifar10 or folder:PATH")
    if size is not None:
        x = _pad_to(x, size)
    return ImageData(name, torch.from_numpy(np.ascontiguousarray(x)))
