"""Latent energies: E(z) = -log p0(z) - score(D(G(z))) / T.

`score` turns the discriminator's raw output into an estimate of log p_data/p_g:
the logit for a (non-saturating) GAN, the critic value for a WGAN, minus the
reconstruction error for an auto-encoder discriminator (EBGAN/BEGAN). With
`sigma > 0` the latent is extended to (z, z') and the sample is G(z) + sigma*z',
which lets chains reach modes the generator dropped (DDLS paper, section 3.3).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from .._torch import eval_mode, frozen
from ..divergences import DIVERGENCES
from ..errors import DDLSError

LOG_2PI = math.log(2 * math.pi)

# Discriminator output -> estimate of log(p_data / p_g). More families register here.
LSGAN_FLOOR = 1e-4  # keeps log(D / (1 - D)) finite where a least-squares output leaves (0, 1)


def _lsgan_log_ratio(out: Tensor) -> Tensor:
    # targets 0 (fake) / 1 (real): the optimal output is p_data / (p_data + p_g)
    d = out.clamp(LSGAN_FLOOR, 1 - LSGAN_FLOOR)
    return torch.log(d) - torch.log1p(-d)


SCORES: dict[str, Callable[[Tensor], Tensor]] = {
    "gan": lambda out: out,
    "wgan": lambda out: out,
    "ae": lambda out: -out,
    "lsgan": _lsgan_log_ratio,
    **{f"fgan-{name}": div.log_ratio for name, div in DIVERGENCES.items()},
}


def standard_normal_logpdf(position: Tensor) -> Tensor:
    """log N(position; 0, I) per row of a (B, D) tensor."""
    return -0.5 * position.pow(2).sum(1) - 0.5 * position.shape[1] * LOG_2PI


def make_selector(select: str | int | Callable[[Any], Tensor] | None) -> Callable[[Any], Any]:
    """How to pick the score out of a discriminator's output.

    None: the output itself, or its 'adv_output' entry when it is a dict (StudioGAN);
    a str: that dict key; an int: that tuple index; a callable: applied to the output.
    """
    if callable(select):
        return select
    if isinstance(select, (str, int)) and not isinstance(select, bool):
        def pick(out: Any) -> Any:
            try:
                return out[select]
            except (KeyError, IndexError, TypeError) as exc:
                raise DDLSError(f"discriminator output has no entry {select!r} ({type(out).__name__}); "
                                f"pass select= the key or index of the logit") from exc
        return pick
    if select is None:
        return lambda out: out["adv_output"] if isinstance(out, dict) and "adv_output" in out else out
    raise DDLSError(f"select must be None, a key, an index or a function, got {type(select).__name__}")


Label = int | Sequence[int] | Tensor | None


def as_label(label: Label) -> int | Tensor | None:
    """None, one class for every chain (an int), or one class per chain (a 1-D long tensor)."""
    if isinstance(label, bool):
        raise DDLSError("label must be a class index or one class index per chain, got a bool")
    if label is None or isinstance(label, int):
        return label
    if isinstance(label, Tensor) and label.dim() == 0:
        return int(label)
    try:
        labels = torch.as_tensor(label)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DDLSError(f"label must be a class index or one class index per chain, "
                        f"got {type(label).__name__}") from exc
    if labels.dim() == 0:
        return int(labels)
    integral = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    if labels.dim() != 1 or not len(labels) or not integral:
        raise DDLSError(f"per-chain labels must be a non-empty 1-D sequence of class indices, "
                        f"got shape {tuple(labels.shape)} of {labels.dtype}")
    return labels.long()


def as_temperature(temperature: float | Sequence[float] | Tensor) -> float | Tensor:
    """One temperature for every chain (a float), or one per chain (a 1-D float tensor), each > 0 and finite."""
    if isinstance(temperature, Tensor) and temperature.dim() == 0:
        temperature = float(temperature)
    if isinstance(temperature, (Tensor, list, tuple)):
        t = torch.as_tensor(temperature, dtype=torch.get_default_dtype())
        if t.dim() != 1 or not len(t) or not bool(((t > 0) & torch.isfinite(t)).all()):
            raise DDLSError(f"per-chain temperatures must be a non-empty 1-D sequence of positive finite numbers, "
                            f"got shape {tuple(t.shape)}")
        return t
    if not temperature > 0:
        raise DDLSError(f"temperature must be > 0, got {temperature}")
    return float(temperature)


def cycle_labels(n: int, num_classes: int) -> Tensor:
    """Chain i gets class i mod num_classes: every class gets n / num_classes chains (to within one)."""
    return torch.arange(n) % num_classes


def _as_batch_vector(out: Tensor, batch: int, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        hint = "; pass select= to pick the logit out of it" if isinstance(out, (dict, tuple, list)) else ""
        raise DDLSError(f"{what} returned {type(out).__name__}, expected a tensor of shape ({batch},){hint}")
    if out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (batch,):
        raise DDLSError(
            f"{what} returned shape {tuple(out.shape)} for a batch of {batch}; "
            f"expected ({batch},) or ({batch}, 1): one score per sample"
        )
    return out


class LatentEnergy:
    """A callable (B, D) -> (B,) energy over flat latent positions.

    generator: maps latents shaped (B, *latent_shape) to samples.
    discriminator: maps samples to one raw output per sample.
    kind: a key of SCORES, how the output becomes a log density ratio.
    temperature: divides the score (T > 1 trusts the discriminator less); one per chain (a 1-D tensor) runs
        several temperatures in one batch, each chain at its own, sliced chunk by chunk as labels are.
    sigma: > 0 switches on the extended latent G(z) + sigma * z'.
    The networks are evaluated in eval mode (batch norm on its running statistics) whatever mode
    they are in; their own mode is left as it was.
    label: class of a conditional GAN, G(z, y) and D(x, y): an int for every chain, or one class per
        chain (a sequence or 1-D tensor); then the energy is called on all chains at once, or on the
        chains [start, stop) through `for_chains(start, stop)` (the driver does so chunk by chunk).
    select: picks the score from D's output (see make_selector): a dict key, a tuple index, a function.
    score_map: a calibration stored with the model (ddls.calibration.maps.Calibration: Platt's a * s + b
        or an isotonic step function), applied to the score; a step function has no gradient, so an
        energy holding one refuses gradient samplers.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_shape: int | tuple[int, ...],
        *,
        kind: str = "gan",
        temperature: float | Tensor = 1.0,
        sigma: float = 0.0,
        label: Label = None,
        select: str | int | Callable[[Any], Tensor] | None = None,
        score_map: Callable[[Tensor], Tensor] | None = None,
    ):
        if kind not in SCORES:
            raise DDLSError(f"unknown energy kind {kind!r}; choose one of {', '.join(sorted(SCORES))}")
        temperature = as_temperature(temperature)
        if not sigma >= 0:
            raise DDLSError(f"sigma must be >= 0, got {sigma}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        self.kind = kind
        self.temperature = temperature
        if isinstance(self.temperature, Tensor):
            self.temperature = self.temperature.to(self.device)
        self.sigma = float(sigma)
        self.label = as_label(label)
        if isinstance(self.label, Tensor):
            self.label = self.label.to(self.device)
        self.select = make_selector(select)
        self.score_map = score_map
        self.latent_dim = math.prod(self.latent_shape)
        self.sample_shape = self._probe_sample_shape()
        self.dim = self.latent_dim + (math.prod(self.sample_shape) if self.sigma > 0 else 0)

    @property
    def device(self) -> torch.device:
        for p in self.generator.parameters():
            return p.device
        for b in self.generator.buffers():
            return b.device
        return torch.device("cpu")

    def _probe_sample_shape(self) -> tuple[int, ...]:
        z = torch.zeros(2, *self.latent_shape, device=self.device)
        # with per-chain labels, two chains of the first chain's class
        probe = self if not isinstance(self.label, Tensor) else self._with_label(self.label[:1].repeat(2))
        with torch.no_grad(), frozen(self.generator):
            x = probe._generate(z)
        if not isinstance(x, Tensor):
            raise DDLSError(f"generator returned {type(x).__name__}, expected a tensor of samples")
        return tuple(x.shape[1:])

    def replaced(self, **changes: Any) -> "LatentEnergy":
        """This energy with some of its arguments changed (the networks shared unless replaced), checked
        as a new one is: e.g. `energy.replaced(temperature=0.1)`."""
        args = dict(generator=self.generator, discriminator=self.discriminator, latent_shape=self.latent_shape,
                    kind=self.kind, temperature=self.temperature, sigma=self.sigma, label=self.label,
                    select=self.select, score_map=self.score_map)
        unknown = sorted(set(changes) - set(args))
        if unknown:
            raise TypeError(f"LatentEnergy has no argument(s) {', '.join(unknown)}")
        args.update(changes)
        return LatentEnergy(args.pop("generator"), args.pop("discriminator"), args.pop("latent_shape"), **args)

    def _with_label(self, label: int | Tensor | None) -> "LatentEnergy":
        view = copy.copy(self)  # shares the networks; only the label differs
        view.label = label
        return view

    def for_chains(self, start: int, stop: int) -> "LatentEnergy":
        """The energy of chains start..stop-1: itself, or a view holding those chains' labels and temperatures."""
        per_chain = {k: v for k, v in (("label", self.label), ("temperature", self.temperature))
                     if isinstance(v, Tensor)}
        if not per_chain:
            return self
        for what, values in per_chain.items():
            if not 0 <= start < stop <= len(values):
                raise DDLSError(f"chains {start}..{stop - 1} asked of an energy with {what}s for {len(values)} "
                                f"chains; give a {what} for every chain (chain i takes {what}[i])")
        view = copy.copy(self)  # shares the networks
        for what, values in per_chain.items():
            setattr(view, what, values[start:stop])
        return view

    def chain_labels(self, n: int) -> Tensor | None:
        """The classes of chains 0..n-1 (on the CPU), None for an unconditional model."""
        if self.label is None:
            return None
        if isinstance(self.label, int):
            return torch.full((n,), self.label, dtype=torch.long)
        return self.for_chains(0, n).label.cpu()

    def _labels(self, batch: int, device: torch.device) -> tuple[Tensor, ...]:
        # A conditional model gets each chain's class as a second argument.
        if self.label is None:
            return ()
        if isinstance(self.label, int):
            return (torch.full((batch,), self.label, dtype=torch.long, device=device),)
        if len(self.label) != batch:
            raise DDLSError(f"this energy holds labels for {len(self.label)} chains but was called on "
                            f"{batch}; call energy.for_chains(start, stop) for a part of the chains")
        return (self.label.to(device),)

    def _generate(self, z: Tensor) -> Tensor:
        return self.generator(z, *self._labels(z.shape[0], z.device))

    def decode(self, position: Tensor) -> Tensor:
        """Samples for flat latent positions: G(z), or G(z) + sigma * z' when extended."""
        z = position[:, : self.latent_dim].reshape(-1, *self.latent_shape)
        with eval_mode(self.generator):
            x = self._generate(z)
        if self.sigma > 0:
            x = x + self.sigma * position[:, self.latent_dim :].reshape(x.shape)
        return x

    def score(self, x: Tensor) -> Tensor:
        """Estimated log p_data/p_g at samples x, shape (B,)."""
        with eval_mode(self.discriminator):
            raw = self.discriminator(x, *self._labels(x.shape[0], x.device))
        out = _as_batch_vector(self.select(raw), x.shape[0], "discriminator")
        score = SCORES[self.kind](out)
        if self.score_map is None:
            return score
        if torch.is_grad_enabled() and x.requires_grad and not getattr(self.score_map, "differentiable", True):
            raise DDLSError(f"this model's {getattr(self.score_map, 'kind', 'stored')} calibration is a step "
                            f"function, so gradient samplers (ddls, mala, dot, dgflow) cannot use it; use drs or "
                            f"mhgan, or calibrate the model with platt or finetune")
        return self.score_map(score)

    def __call__(self, position: Tensor) -> Tensor:
        if position.dim() != 2 or position.shape[1] != self.dim:
            raise DDLSError(f"latent positions must have shape (B, {self.dim}), got {tuple(position.shape)}")
        if isinstance(self.temperature, Tensor) and len(self.temperature) != position.shape[0]:
            raise DDLSError(f"this energy holds temperatures for {len(self.temperature)} chains but was called on "
                            f"{position.shape[0]}; call energy.for_chains(start, stop) for a part of the chains")
        return -standard_normal_logpdf(position) - self.score(self.decode(position)) / self.temperature

    def prior_sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randn(n, self.dim, generator=generator, device=generator.device)

    def modules(self) -> tuple[nn.Module, nn.Module]:
        return self.generator, self.discriminator
