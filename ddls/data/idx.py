"""IDX files (the MNIST family's format): parse them into uint8 numpy arrays."""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DDLSError

if TYPE_CHECKING:
    import torch

_UBYTE = 0x08  # the only element type the MNIST-family files use


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The uint8 array in an IDX file (gzipped when the name ends in .gz), shaped as its header says."""
    path = Path(path)
    if not path.is_file():
        raise DDLSError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DDLSError(f"{path} is not a readable IDX file ({exc}); download it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DDLSError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != _UBYTE:
        raise DDLSError(f"{path} holds IDX element type 0x{raw[2]:02x}; only unsigned bytes (0x08) are read")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DDLSError(f"{path} is truncated (IDX header cut short)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count:
        raise DDLSError(f"{path} holds {len(raw) - header} bytes of data, its header promises {count}; "
                        f"download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist installs it
FASHION_MNIST_ENV = "DDLS_FASHION_MNIST_DIR"


def read_fashion_mnist(split: str, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of Fashion-MNIST's 'train' (60k) or 'test' (10k) split."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DDLSError(f"unknown Fashion-MNIST split {split!r}; use train or test")
    folder = Path(root or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)
    files = [folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"]
    for f in files:
        if not f.is_file():
            raise DDLSError(f"Fashion-MNIST file {f} not found; install it with `apt-get install "
                            f"dataset-fashion-mnist`, or set {FASHION_MNIST_ENV} to a folder holding "
                            f"the four *-ubyte.gz files")
    images, labels = read_idx(files[0]), read_idx(files[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DDLSError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def to_signed_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 tensor (N, 1, H, W) in [-1, 1], the image convention of ddls."""
    import torch

    return torch.from_numpy(images).float().div_(127.5).sub_(1.0).unsqueeze(1)
