"""Latent energies: E(z) = -log p0(z) - score(D(G(z))) / T.

`score` turns the discriminator's raw output into an estimate of log p_data/p_g:
the logit for a (non-saturating) GAN, the critic value for a WGAN, minus the
reconstruction error for an auto-encoder discriminator (EBGAN/BEGAN). With
`sigma > 0` the latent is extended to (z, z') and the sample is G(z) + sigma*z',
which lets chains reach modes the generator dropped (DDLS paper, section 3.3).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._torch import frozen
from .errors import DDLSError

LOG_2PI = math.log(2 * math.pi)

# Discriminator output -> estimate of log(p_data / p_g). More families register here.
LSGAN_FLOOR = 1e-4  # keeps log(D / (1 - D)) finite where a least-squares output leaves (0, 1)


def _lsgan_log_ratio(out: Tensor) -> Tensor:
    # targets 0 (fake) / 1 (real): the optimal output is p_data / (p_data + p_g)
    d = out.clamp(LSGAN_FLOOR, 1 - LSGAN_FLOOR)
    return torch.log(d) - torch.log1p(-d)


def _fgan_scores() -> dict[str, Callable[[Tensor], Tensor]]:
    from .losses import DIVERGENCES

    return {f"fgan-{name}": div.log_ratio for name, div in DIVERGENCES.items()}


SCORES: dict[str, Callable[[Tensor], Tensor]] = {
    "gan": lambda out: out,
    "wgan": lambda out: out,
    "ae": lambda out: -out,
    "lsgan": _lsgan_log_ratio,
    **_fgan_scores(),
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
    temperature: divides the score (T > 1 trusts the discriminator less).
    sigma: > 0 switches on the extended latent G(z) + sigma * z'.
    label: class of a conditional GAN, the same for every chain: G(z, y) and D(x, y).
    select: picks the score from D's output (see make_selector): a dict key, a tuple index, a function.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_shape: int | tuple[int, ...],
        *,
        kind: str = "gan",
        temperature: float = 1.0,
        sigma: float = 0.0,
        label: int | None = None,
        select: str | int | Callable[[Any], Tensor] | None = None,
    ):
        if kind not in SCORES:
            raise DDLSError(f"unknown energy kind {kind!r}; choose one of {', '.join(sorted(SCORES))}")
        if not temperature > 0:
            raise DDLSError(f"temperature must be > 0, got {temperature}")
        if not sigma >= 0:
            raise DDLSError(f"sigma must be >= 0, got {sigma}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        self.kind = kind
        self.temperature = float(temperature)
        self.sigma = float(sigma)
        self.label = None if label is None else int(label)
        self.select = make_selector(select)
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
        with torch.no_grad(), frozen(self.generator):
            x = self._generate(z)
        if not isinstance(x, Tensor):
            raise DDLSError(f"generator returned {type(x).__name__}, expected a tensor of samples")
        return tuple(x.shape[1:])

    def _labels(self, batch: int, device: torch.device) -> tuple[Tensor, ...]:
        # A conditional model gets the chain's class as a second argument; the same class for all chains.
        if self.label is None:
            return ()
        return (torch.full((batch,), self.label, dtype=torch.long, device=device),)

    def _generate(self, z: Tensor) -> Tensor:
        return self.generator(z, *self._labels(z.shape[0], z.device))

    def decode(self, position: Tensor) -> Tensor:
        """Samples for flat latent positions: G(z), or G(z) + sigma * z' when extended."""
        z = position[:, : self.latent_dim].reshape(-1, *self.latent_shape)
        x = self._generate(z)
        if self.sigma > 0:
            x = x + self.sigma * position[:, self.latent_dim :].reshape(x.shape)
        return x

    def score(self, x: Tensor) -> Tensor:
        """Estimated log p_data/p_g at samples x, shape (B,)."""
        raw = self.discriminator(x, *self._labels(x.shape[0], x.device))
        out = _as_batch_vector(self.select(raw), x.shape[0], "discriminator")
        return SCORES[self.kind](out)

    def __call__(self, position: Tensor) -> Tensor:
        if position.dim() != 2 or position.shape[1] != self.dim:
            raise DDLSError(f"latent positions must have shape (B, {self.dim}), got {tuple(position.shape)}")
        return -standard_normal_logpdf(position) - self.score(self.decode(position)) / self.temperature

    def prior_sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randn(n, self.dim, generator=generator, device=generator.device)

    def modules(self) -> tuple[nn.Module, nn.Module]:
        return self.generator, self.discriminator
