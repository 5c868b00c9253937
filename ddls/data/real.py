"""Where real samples come from: a data name (2-D target or image set) as a `draw(n, generator)`."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..errors import DDLSError
from .images import get_image_data, is_image_data
from .toy2d import DATASETS as DATASETS_2D, get_dataset, is_point_data

Draw = Callable[[int, torch.Generator], Tensor]


def real_data(data: str, image_size: int | None = None, channels: int | None = None
              ) -> tuple[Draw, tuple[int, ...], object]:
    """(draw_real, sample_shape, dataset) for a data name: a 2-D target, a .npy of points or an image data set."""
    if is_point_data(data):
        ds = get_dataset(data)
        return ds.sample, (ds.dim,), ds
    if is_image_data(data):
        ds = get_image_data(data, size=image_size, **({"channels": channels} if channels else {}))
        return ds.sample, ds.shape, ds
    raise DDLSError(f"unknown data {data!r}; use {', '.join(DATASETS_2D)}, a .npy of your own points (N, d), "
                    f"fashion-mnist, cifar10 or folder:PATH")


def real_source(model, sample_shape: tuple[int, ...] | None = None, *, data: str | None = None) -> Draw | None:
    """Real samples for calibration, MH-GAN and tuning: of `data` when given (the user's choice), else of the
    data the model names; None when neither names any. Images come at `sample_shape` (C, H, W), the
    generator's shape; points must match it."""
    name = data or model.data
    if name is None:
        return None
    image = is_image_data(name)
    if image and (sample_shape is None or len(sample_shape) != 3):
        raise DDLSError(f"the checkpoint names image data {name!r} but makes samples of shape "
                        f"{sample_shape}; real images need a generator of (C, H, W) images")
    draw, shape, dataset = real_data(name, *((sample_shape[-1], sample_shape[0]) if image else ()))
    if not image and sample_shape is not None:
        dataset.check_shape(sample_shape)
    if image and shape != tuple(sample_shape):
        raise DDLSError(f"{name} images are {'x'.join(map(str, shape))}, but the generator makes "
                        f"{'x'.join(map(str, sample_shape))}; the data does not match the networks")
    return draw
