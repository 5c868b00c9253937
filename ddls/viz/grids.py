"""Sample grids: image batches in [-1, 1] tiled into one PNG."""
from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from torch import Tensor

from ..io.outputs import write_bytes


def image_grid(images: Tensor | np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] -> one uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad, C) image."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images).detach().float().cpu()
    if x.dim() != 4:
        raise ValueError(f"expected images shaped (N, C, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top:top + h, left:left + w] = pixels[i]
    return grid


def save_grid(path: str | os.PathLike, images: Tensor | np.ndarray, nrow: int | None = None) -> None:
    """Write `image_grid(images)` as a PNG, atomically."""
    from PIL import Image

    grid = image_grid(images, nrow)
    img = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    write_bytes(path, lambda fh: fh.write(buf.getvalue()))
