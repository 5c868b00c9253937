"""Where real samples come from: a data name (2-D target or image set) as a `draw(n, generator)`."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..errors import DDLSError
from .images import get_image_data, is_image_data
from .toy2d import DATASETS as DATASETS_2D, get_dataset

Draw = Callable[[int, torch.Generator], Tensor]


def real_data(data: str, image_size: int | None = None, channels: int | None = None
              ) -> tuple[Draw, tuple[int, ...], object]:
    """(draw_real, sample_shape, dataset) for a data name: a 2-D target or an image data set."""
    if data in DATASETS_2D:
        ds = get_dataset(data)
        return ds.sample, (2,), ds
    if is_image_data(data):
        ds = get_image_data(data, size=image_size, **({"channels": channels} if channels else {}))
        return ds.sample, ds.shape, ds
    raise DDLSError(f"unknown data {data!r}; use {', '.join(DATASETS_2D)}, fashion-mnist, cifar10 "
                    f"or folder:PATH")


def real_source(model, sample_shape: tuple[int, ...] | None = None, *, data: str | None = None) -> Draw | None:
    """Real samples for the data a model names (calibration, MH-GAN, tuning); `data` stands in when it
    names none; None when neither does. Images come at `sample_shape` (C, H, W), the generator's shape."""
    name = model.data or data
    if name is None:
        return None
    image = is_image_data(name)
    if image and (sample_shape is None or len(sample_shape) != 3):
        raise DDLSError(f"the checkpoint names image data {name!r} but makes samples of shape "
                        f"{sample_shape}; real images need a generator of (C, H, W) images")
    draw, shape, _ = real_data(name, *((sample_shape[-1], sample_shape[0]) if image else ()))
    if image and shape != tuple(sample_shape):
        raise DDLSError(f"{name} images are {'x'.join(map(str, shape))}, but the generator makes "
                        f"{'x'.join(map(str, sample_shape))}; the data does not match the networks")
    return draw
