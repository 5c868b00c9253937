"""The f-divergences of f-GAN (Nowozin et al. 2016, table 6), shared by training and sampling.

For each divergence: the output activation T = g_f(v), the conjugate f*(T), and the log
density ratio log p_data/p_g = log (f')^{-1}(T) that the optimal T encodes, all in v. The
trainer builds its f-GAN losses from them; the energy recovers log p_data/p_g with them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Divergence:
    name: str
    activation: Callable[[Tensor], Tensor]  # T = g_f(v)
    conjugate_of_v: Callable[[Tensor], Tensor]  # f*(g_f(v)), written stably in v
    log_ratio: Callable[[Tensor], Tensor]  # log (f')^{-1}(g_f(v))
    f: Callable[[Tensor], Tensor]  # the generator function f(u), for tests and docs
    conjugate: Callable[[Tensor], Tensor]  # f*(t) in closed form


PEARSON_FLOOR = 1e-6  # 1 + v/2 must stay positive for a density ratio

DIVERGENCES: dict[str, Divergence] = {
    "kl": Divergence(
        "kl", lambda v: v, lambda v: torch.exp(v - 1), lambda v: v - 1,
        f=lambda u: u * torch.log(u), conjugate=lambda t: torch.exp(t - 1)),
    "reverse-kl": Divergence(
        "reverse-kl", lambda v: -torch.exp(-v), lambda v: v - 1, lambda v: v,
        f=lambda u: -torch.log(u), conjugate=lambda t: -1 - torch.log(-t)),
    "pearson": Divergence(
        "pearson", lambda v: v, lambda v: 0.25 * v * v + v,
        lambda v: torch.log(torch.clamp(1 + 0.5 * v, min=PEARSON_FLOOR)),
        f=lambda u: (u - 1).pow(2), conjugate=lambda t: 0.25 * t * t + t),
    "hellinger": Divergence(
        "hellinger", lambda v: 1 - torch.exp(-v), lambda v: torch.expm1(v), lambda v: 2 * v,
        f=lambda u: (torch.sqrt(u) - 1).pow(2), conjugate=lambda t: t / (1 - t)),
    "js": Divergence(
        "js", lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2, lambda v: v,
        f=lambda u: -(u + 1) * torch.log((1 + u) / 2) + u * torch.log(u),
        conjugate=lambda t: -torch.log(2 - torch.exp(t))),
    "gan": Divergence(
        "gan", lambda v: -F.softplus(-v), lambda v: F.softplus(v), lambda v: v,
        f=lambda u: u * torch.log(u) - (u + 1) * torch.log(u + 1),
        conjugate=lambda t: -torch.log(1 - torch.exp(t))),
}
