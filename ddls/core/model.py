"""Model: a generator/discriminator pair with what ddls needs to sample it. Every layer passes it on
(formats and wraps build it, samplers take its energy), so it lives at the bottom."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import DDLSError
from .energy import Label, LatentEnergy, as_label, cycle_labels


@dataclass
class Model:
    """A generator/discriminator pair with what ddls needs to sample it."""

    generator: nn.Module
    discriminator: nn.Module
    latent_shape: tuple[int, ...]
    energy_kind: str
    data: str | None = None
    meta: dict[str, Any] | None = None
    label: Any = None  # class of a conditional model: an int for every chain, or one per chain
    select: Any = None  # picks the score from D's output; see energy.make_selector
    num_classes: int = 0  # > 0: a conditional model, which needs a label
    score_map: Any = None  # a calibration map stored by `ddls calibrate` (ddls.core.score_map.Calibration)

    def energy(self, *, temperature: float = 1.0, sigma: float = 0.0, kind: str | None = None,
               label: Label = None) -> LatentEnergy:
        """label: a class for every chain, or one class per chain (see LatentEnergy)."""
        label = self.checked_label(self.label if label is None else label)
        if self.num_classes and label is None:
            raise DDLSError(f"this is a conditional model with {self.num_classes} classes; give a class label "
                            f"(0..{self.num_classes - 1}) for every chain, or one per chain")
        return LatentEnergy(self.generator, self.discriminator, self.latent_shape,
                            kind=kind or self.energy_kind, temperature=temperature, sigma=sigma,
                            label=label, select=self.select, score_map=self.score_map)

    def checked_label(self, label: Label, *, source: str | None = None) -> int | Tensor | None:
        """`label` as `as_label` gives it, refused when out of range for a model that knows its classes.

        With `source` (the file it came from) a model without classes is known to be unconditional,
        and any label is refused; without it (a wrapped model) the label is taken as given.
        """
        label = as_label(label)
        if label is None:
            return None
        if not self.num_classes:
            if source is not None:
                raise DDLSError(f"{source} is an unconditional model; drop the label")
            return label
        low, high = (label, label) if isinstance(label, int) else (int(label.min()), int(label.max()))
        if low < 0 or high >= self.num_classes:
            raise DDLSError(f"label {low if low < 0 else high} is out of range for {self.num_classes} "
                            f"classes (0..{self.num_classes - 1})")
        return label

    def cycled_labels(self, n: int, *, source: str | None = None) -> Tensor:
        """Chain i of n gets class i mod num_classes."""
        if not self.num_classes:
            raise DDLSError(f"{source or 'this model'} is an unconditional model; drop the label")
        return cycle_labels(n, self.num_classes)

    def to(self, device: torch.device | str) -> "Model":
        self.generator.to(device)
        self.discriminator.to(device)
        return self
