"""Calibrating a discriminator's logit on held-out real and generated samples.

DRS and MH-GAN read the discriminator as a probability D(x) = sigmoid(d(x)) that x
is real, so d must estimate log p_data/p_g. A discriminator at the end of training
rarely is one; MH-GAN fits a map from its score to a calibrated logit on samples it
did not train on:

- raw: the score as it is;
- platt (Platt scaling; 'logistic' is its old name): a * score + b, fitted by maximum likelihood;
- isotonic: the monotone step function of the score that best fits the labels
  (pool-adjacent-violators), read back as a logit;
- finetune: the DDLS paper's way (finetune.py): fine-tune D itself as a logistic
  classifier on the frozen generator (the map is then the identity);
- head: D's last layer refitted exactly as a logistic regression on D's own features (head.py).

ddls.calibration.calibrate is the one entry point to all five.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import DDLSError

CHANGES_D = ("finetune", "head", "dcd")  # calibrations that change D itself: their map is the identity
KINDS = ("raw", "platt", "isotonic", *CHANGES_D)
ALIASES = {"logistic": "platt"}  # the name `--calibration` used first


def canonical(kind: str) -> str:
    """The calibration's own name for `kind` (an alias resolved); unknown names are refused."""
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise DDLSError(f"unknown calibration {kind!r}; choose one of {', '.join(KINDS)} "
                        f"({', '.join(f'{k} = {v}' for k, v in ALIASES.items())})")
    return kind
PROB_CLIP = 1e-6  # isotonic probabilities are kept in [1e-6, 1 - 1e-6]: logits within +-13.8


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the discriminator's score to a calibrated logit."""

    kind: str = "raw"
    a: float = 1.0  # platt: a * score + b
    b: float = 0.0
    knots: tuple[float, ...] = ()  # isotonic: scores ...
    probs: tuple[float, ...] = ()  # ... and P(real) at them, linearly interpolated between

    def __post_init__(self):
        object.__setattr__(self, "kind", canonical(self.kind))

    @property
    def differentiable(self) -> bool:
        return self.kind != "isotonic"

    @property
    def identity(self) -> bool:
        return self.kind in ("raw", *CHANGES_D) or (self.kind == "platt" and self.a == 1 and self.b == 0)

    def __call__(self, score: Tensor) -> Tensor:
        if self.kind == "platt":
            return self.a * score + self.b
        if self.kind == "isotonic":
            knots = torch.tensor(self.knots, dtype=score.dtype, device=score.device)
            probs = torch.tensor(self.probs, dtype=score.dtype, device=score.device)
            return torch.logit(interpolate(score.detach(), knots, probs).clamp(PROB_CLIP, 1 - PROB_CLIP))
        return score

    def to_dict(self) -> dict:
        """A short record of the map (the isotonic knots only counted)."""
        out: dict = {"kind": self.kind}
        if self.kind == "platt":
            out.update(a=self.a, b=self.b)
        if self.kind == "isotonic":
            out["knots"] = len(self.knots)
        return out

    def state(self) -> dict:
        """All of the map, as JSON-ready data (what a checkpoint stores); `from_state` reads it back."""
        return {"kind": self.kind, "a": self.a, "b": self.b, "knots": list(self.knots), "probs": list(self.probs)}

    @classmethod
    def from_state(cls, state: dict) -> "Calibration":
        try:
            return cls(state["kind"], a=float(state.get("a", 1.0)), b=float(state.get("b", 0.0)),
                       knots=tuple(map(float, state.get("knots", ()))), probs=tuple(map(float, state.get("probs", ()))))
        except (KeyError, TypeError, ValueError) as exc:
            raise DDLSError(f"the stored calibration map is malformed ({exc!r}); recalibrate the checkpoint") from None

    def then(self, outer: "Calibration") -> "Calibration":
        """The map outer(self(score)), for two affine maps (or either one the identity)."""
        if outer.identity:
            return self
        if self.identity:
            return outer
        if self.kind == outer.kind == "platt":
            return Calibration("platt", a=outer.a * self.a, b=outer.a * self.b + outer.b)
        raise DDLSError(f"a {outer.kind} map cannot be put on top of a {self.kind} map; start from the "
                        f"uncalibrated checkpoint")


RAW = Calibration()


def interpolate(x: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """Piecewise-linear y(x) through (xs, ys), xs increasing; constant beyond the ends."""
    if len(xs) == 1:
        return ys.expand_as(x).clone()
    idx = torch.searchsorted(xs, x.contiguous()).clamp(1, len(xs) - 1)
    x0, x1, y0, y1 = xs[idx - 1], xs[idx], ys[idx - 1], ys[idx]
    t = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return y0 + t * (y1 - y0)


def fit_logistic(scores: np.ndarray, labels: np.ndarray, *, iterations: int = 100) -> tuple[float, float]:
    """(a, b) maximising the likelihood of labels under sigmoid(a * score + b): Newton's method.

    A tiny ridge on a keeps the step finite when the two classes are perfectly separated.
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, np.float64)
    X = np.stack([s, np.ones_like(s)], 1)
    w = np.array([1.0, 0.0])
    ridge = np.diag([1e-6 * len(s), 0.0])

    def loss(w):
        t = X @ w
        return float(np.sum(np.logaddexp(0, t) - y * t) + 0.5 * ridge[0, 0] * w[0] ** 2)

    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (p - y) + ridge @ w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t, before = 1.0, loss(w)
        while loss(w - t * step) > before + 1e-12 and t > 1e-8:  # halve until the loss does not rise
            t *= 0.5
        w = w - t * step
        if np.abs(t * step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def fit_isotonic(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (scores) and P(real) there of the non-decreasing least-squares fit (pool-adjacent-violators).

    Each pooled block contributes its lowest and highest score, both at the block's mean label.
    """
    order = np.argsort(scores, kind="stable")
    s = np.asarray(scores, np.float64)[order]
    y = np.asarray(labels, np.float64)[order]
    means: list[float] = []  # one entry per block: mean label, weight, first and last index
    weights: list[int] = []
    starts: list[int] = []
    for i, v in enumerate(y):
        means.append(v)
        weights.append(1)
        starts.append(i)
        while len(means) > 1 and means[-2] > means[-1]:  # a violation: pool the last two blocks
            w = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w
            weights[-2] = w
            del means[-1], weights[-1], starts[-1]
    knots, probs = [], []
    for m, w, i in zip(means, weights, starts):
        knots += [s[i], s[i + w - 1]]
        probs += [m, m]
    knots, probs = np.array(knots), np.array(probs)
    keep = np.r_[True, np.diff(knots) > 0]  # equal scores at a block boundary: keep the first
    return knots[keep], probs[keep]


def fit(kind: str, real_scores: Tensor, fake_scores: Tensor) -> Calibration:
    """The calibration of `kind` fitted to scores of held-out real (label 1) and generated (label 0) samples."""
    kind = canonical(kind)
    if kind in ("raw", *CHANGES_D):  # nothing to fit on the score: these change D itself
        return Calibration(kind)
    scores = torch.cat([real_scores, fake_scores]).detach().cpu().double().numpy()
    labels = np.r_[np.ones(len(real_scores)), np.zeros(len(fake_scores))]
    if not np.isfinite(scores).all():
        raise DDLSError("the discriminator gave NaN/inf scores on calibration samples; check the checkpoint")
    if kind == "platt":
        a, b = fit_logistic(scores, labels)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise DDLSError("Platt (logistic) calibration did not converge; try isotonic or raw calibration")
        return Calibration("platt", a=a, b=b)
    knots, probs = fit_isotonic(scores, labels)
    return Calibration("isotonic", knots=tuple(knots.tolist()), probs=tuple(probs.tolist()))
