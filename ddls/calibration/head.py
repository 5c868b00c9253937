"""Refit D's last layer as a logistic regression on D's own features: a convex problem, solved exactly.

Fine-tuning only the last layer by SGD (finetune.py, layers='last') takes thousands of passes
through all of D. While only the last layer learns, its input (D's features) does not change,
so the features of n real and n generated samples are computed once and the head
logit = v . h + c is fitted on them by L-BFGS, for a few L2 strengths; the held-out loss
(heldout.py: real samples and fresh latents the fit never sees) picks the strength, and the
head is kept only if it beats the start (the raw logit, or a critic's Platt map).

It applies where D's score is its last layer's single output: a linear layer, or a
convolution whose output is one number per sample (DCGAN- and ResNet-style discriminators,
spectral-normalised or not). Elsewhere it refuses in one line and names fine-tuning.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from .._torch import derived_seed, frozen, make_generator
from ..errors import DDLSError
from ..sampling.energy import SCORES, LatentEnergy
from .finetune import HELDOUT_STREAM, NOT_A_LOGIT, TRAIN_STREAM, _with, last_layer
from .heldout import Draw, _chunks, draw_heldout, excluding
from .maps import Calibration, fit

STRENGTHS = (1e-1, 1e-2, 1e-3, 1e-4)  # L2 penalties on v tried, strongest first (each fit starts from the last)
CHUNK = 512  # samples per pass through D while features are collected
HEAD_KINDS = ("gan", "wgan")  # energy kinds whose score is D's output as it is
WHY = "use --method finetune --layers last, which trains the same layer by gradient steps"


@dataclass(frozen=True)
class HeadConfig:
    n: int = 5000  # real and generated training samples, each
    n_heldout: int = 1000  # held-out real and generated samples, each
    seed: int = 0
    strengths: tuple[float, ...] = STRENGTHS
    iterations: int = 300  # most L-BFGS iterations per strength

    def __post_init__(self):
        if self.n < 2 or self.n_heldout < 2:
            raise DDLSError(f"head calibration needs at least 2 training and 2 held-out samples of each kind, "
                            f"got {self.n} and {self.n_heldout}")


def fit_head(energy: LatentEnergy, draw_real: Draw, config: HeadConfig, *, heldout_real: Tensor | None = None,
             progress: bool = False) -> tuple[LatentEnergy, dict, int]:
    """(the energy with D's refitted head, a record of the fit, passes through D spent); `energy` is left as it was."""
    if energy.label is not None:
        raise DDLSError("head calibration of a conditional discriminator is not supported; use platt calibration")
    if energy.kind not in HEAD_KINDS:
        raise DDLSError(f"head calibration needs a discriminator whose score is its output (a logit or a critic); "
                        f"this model's energy is {energy.kind!r}; use --method finetune")
    cfg = config
    device = energy.device
    held = draw_heldout(energy, draw_real, cfg.n_heldout, make_generator(derived_seed(cfg.seed, HELDOUT_STREAM),
                                                                         device), heldout_real)
    draw_train = excluding(draw_real, held.real)
    gen = make_generator(derived_seed(cfg.seed, TRAIN_STREAM), device)
    d = copy.deepcopy(energy.discriminator).eval()
    layer = last_layer(d)
    probe = _Features(energy, d, layer)
    bar = _bar(2 * cfg.n + 2 * cfg.n_heldout) if progress else None
    try:
        train_real = probe(lambda k: draw_train(k, gen).to(device), cfg.n, bar)
        train_fake = probe(lambda k: energy.decode(energy.prior_sample(k, gen)), cfg.n, bar)
        held_real = probe(_slicer(held.real), cfg.n_heldout, bar)
        held_fake = probe(_slicer(held.fake), cfg.n_heldout, bar)
    finally:
        if bar is not None:
            bar.close()
    evaluations = 2 * cfg.n + 2 * cfg.n_heldout

    # the start a fair logit: a critic (no logit) gets its Platt map, fitted on the training part
    start_map = energy.score_map
    if energy.kind in NOT_A_LOGIT and start_map is None:
        start_map = fit("platt", train_real.score, train_fake.score)
    as_logit = start_map if start_map is not None else (lambda s: s)
    start = _loss(as_logit(held_real.score), as_logit(held_fake.score))

    h = torch.cat([train_real.h, train_fake.h]).double()
    y = torch.cat([torch.ones(cfg.n), torch.zeros(cfg.n)]).double()
    scale = h.std(0).clamp_min(1e-8)  # fitted on standardised features: one penalty suits every feature's scale
    shift = h.mean(0)
    hs = (h - shift) / scale
    del h
    held_h = (torch.cat([held_real.h, held_fake.h]).double() - shift) / scale
    w, b = torch.zeros(hs.shape[1], dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    tried, best = [], (start, None, None, None)
    for strength in cfg.strengths:
        w, b = _logistic(hs, y, strength, w, b, cfg.iterations)
        logits = held_h @ w + b
        now = _loss(logits[:cfg.n_heldout], logits[cfg.n_heldout:])  # the start's loss, as finetune measures it
        tried.append({"strength": strength, "heldout_loss": now})
        if math.isfinite(now) and now < best[0]:
            best = (now, strength, w.clone(), b.clone())
    loss, strength, w, b = best
    record = {"kind": "head", **asdict(cfg), "strengths": list(cfg.strengths), "tried": tried,
              "layer": type(layer).__name__, "features": int(hs.shape[1]), "improved": w is not None,
              "heldout_loss": {"first": start, "best": loss}, "energy_before": energy.kind,
              "start_map": None if start_map is None or not isinstance(start_map, Calibration)
              else start_map.to_dict()}
    if w is None:
        record["note"] = f"no refitted head lowered the held-out loss {start:.4f}; kept the discriminator as it was"
        out = _with(energy, energy.discriminator, start_map)
        record["energy"] = out.kind
        return out, record, evaluations
    v = (w / scale).float()  # back to raw features: logit = v . h + c
    c = float(b - (w / scale) @ shift)
    score_map = _write(layer, v, c)
    out = _with(energy, d, score_map)
    check = out.score(held.real[: min(64, len(held.real))]).double().cpu()  # on the CPU: D may be on a GPU
    want = held_real.h[: len(check)].double().cpu() @ v.double().cpu() + c
    if not torch.allclose(check, want, rtol=1e-3, atol=1e-3 * (1 + float(want.abs().max()))):
        raise DDLSError(f"could not write the refitted head into this discriminator's {type(layer).__name__} "
                        f"exactly; {WHY}")
    record.update(strength=strength, energy=out.kind,
                  score_map=None if score_map is None else score_map.to_dict(),
                  note=f"held-out loss {start:.4f} -> {loss:.4f} (L2 strength {strength:g}, "
                       f"{hs.shape[1]} features)")
    return out, record, evaluations


@dataclass(frozen=True)
class _Collected:
    h: Tensor  # (n, F) the last layer's inputs, flattened, on the CPU
    score: Tensor  # (n,) D's score as the energy reads it


class _Features:
    """Passes samples through D, keeping its last layer's input; checks the score is that layer's output."""

    def __init__(self, energy: LatentEnergy, d: nn.Module, layer: nn.Module):
        self.energy, self.d, self.layer = energy, d, layer
        weight = getattr(layer, "weight", None)
        if not isinstance(layer, (nn.Linear, nn.Conv2d)) or weight is None or weight.shape[0] != 1:
            raise DDLSError(f"D's last layer ({type(layer).__name__}) is not a linear layer or convolution with one "
                            f"output; {WHY}")

    def __call__(self, draw, n: int, bar) -> _Collected:
        hs, scores = [], []
        seen: dict = {}
        handle = self.layer.register_forward_hook(lambda m, inputs, output: seen.update(h=inputs[0], o=output))
        try:
            with torch.no_grad(), frozen(self.energy.generator, self.d):
                for k in _chunks(n, CHUNK):
                    x = draw(k)
                    raw = self.d(x)
                    score = SCORES[self.energy.kind](self.energy.select(raw)).reshape(-1)
                    h, o = seen["h"].reshape(k, -1), seen["o"].reshape(k, -1)
                    weight = self.layer.weight.reshape(-1)
                    linear = h @ weight + (self.layer.bias if self.layer.bias is not None else 0)
                    if (o.shape[1] != 1 or h.shape[1] != weight.numel() or score.shape != (k,)
                            or not torch.allclose(score, o[:, 0], rtol=1e-4, atol=1e-4)
                            or not torch.allclose(linear, o[:, 0], rtol=1e-3, atol=1e-3 * (1 + float(o.abs().max())))):
                        raise DDLSError(f"D's score is not the plain output of its last layer "
                                        f"({type(self.layer).__name__}); {WHY}")
                    hs.append(h.cpu())
                    scores.append(score.cpu())
                    if bar is not None:
                        bar.update(k)
        finally:
            handle.remove()
        return _Collected(torch.cat(hs), torch.cat(scores))


def _slicer(x: Tensor):
    at = [0]

    def take(k: int) -> Tensor:
        out = x[at[0]: at[0] + k]
        at[0] += k
        return out

    return take


def _logistic(h: Tensor, y: Tensor, strength: float, w: Tensor, b: Tensor, iterations: int) -> tuple[Tensor, Tensor]:
    """Minimise mean BCE(h w + b, y) + strength / 2 |w|^2 by L-BFGS, from (w, b) (all float64)."""
    w, b = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], max_iter=iterations, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(h @ w + b, y) + 0.5 * strength * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def _loss(real: Tensor, fake: Tensor) -> float:
    from ..training.losses import ns_d_loss

    return float(ns_d_loss(real.double(), fake.double()))


def _write(layer: nn.Module, v: Tensor, c: float) -> Calibration | None:
    """Put logit = v . h + c into `layer`; returns the score map that must sit on top (None: none).

    A spectral-normalised layer divides its weight by its norm (one output row), so it gets v's
    direction and the map a = |v|, b = c; a plain layer takes v and c as they are."""
    from torch.nn.utils import parametrize

    with torch.no_grad():
        if parametrize.is_parametrized(layer, "weight"):
            norm = float(v.norm())
            unit = v / max(norm, 1e-30)
            original = layer.parametrizations.weight.original
            original.copy_(unit.reshape(original.shape).to(original))
            for p in layer.parametrizations.weight:  # power-iteration vectors, exact for a single row
                if hasattr(p, "_u") and hasattr(p, "_v"):
                    p._u.fill_(1.0)
                    p._v.copy_(unit.reshape(p._v.shape).to(p._v))
            if layer.bias is not None:
                layer.bias.zero_()
            return Calibration("platt", a=norm, b=c)
        layer.weight.copy_(v.reshape(layer.weight.shape).to(layer.weight))
        if layer.bias is None:
            return Calibration("platt", a=1.0, b=c)
        layer.bias.fill_(c)
        return None


def _bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="features", unit="sample", dynamic_ncols=True)
