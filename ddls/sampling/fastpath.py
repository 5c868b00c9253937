"""Fast-path switches for the chains: torch.compile, reduced-precision networks, CUDA graphs, channels_last.

Each switch is off by itself; `ddls.sampling.autofast` picks a combination per model (the
default `--fast auto`). Whatever is switched on, the latent, its gradient and the Langevin update stay
in float32 and the noise comes from the chain's own generator, so a fast run follows the
same chains as the plain one up to the rounding its switches bring (tests/test_fastpath.py
states the tolerance for each).

- compile: `torch.compile` of the energy; autograd then runs through the compiled graph.
- autocast: 'bf16' or 'fp16' networks under `torch.autocast` (fp16 on CUDA only); the
  energy is returned in float32.
- cuda_graphs: the whole step (noise, energy, gradient, update, MALA's accept, the
  acceptance sum and NaN flags) is captured as one CUDA graph per chunk, with the chain's
  generator registered with it (ddls.sampling.graphs).
- channels_last: the networks run on copies of their weights in channels_last layout.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .energy import LatentEnergy
from ..errors import DDLSError
from .samplers import autograd_energy_and_grad

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class FastPath:
    compile: bool = False
    autocast: str | None = None  # None, 'bf16' or 'fp16'
    cuda_graphs: bool = False
    channels_last: bool = False

    def __post_init__(self):
        if self.autocast not in (None, *AUTOCAST):
            raise DDLSError(f"autocast must be one of {', '.join(AUTOCAST)} (or off), got {self.autocast!r}")
        if self.compile and self.cuda_graphs:
            raise DDLSError("use either compile or CUDA graphs, not both (torch.compile makes its own graphs)")

    @property
    def any(self) -> bool:
        return self.compile or self.autocast is not None or self.cuda_graphs or self.channels_last

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def name(self) -> str:
        """'plain', or the switches joined by '+', e.g. 'compile+bf16+channels_last'."""
        parts = [n for n, on in (("compile", self.compile), ("cuda_graphs", self.cuda_graphs)) if on]
        parts += [self.autocast] if self.autocast else []
        parts += ["channels_last"] if self.channels_last else []
        return "+".join(parts) or "plain"


def check_device(fast: FastPath, device: torch.device) -> None:
    if device.type != "cuda" and fast.cuda_graphs:
        raise DDLSError("CUDA graphs need a CUDA device; switch them off or use a cuda device")
    if device.type != "cuda" and fast.autocast == "fp16":
        raise DDLSError("fp16 autocast needs a CUDA device; use bf16 autocast on the CPU")


def _channels_last(energy: LatentEnergy) -> LatentEnergy:
    """A shallow copy of `energy` whose networks are channels_last copies (the caller's stay as they are)."""
    out = copy.copy(energy)
    out.generator = copy.deepcopy(energy.generator).to(memory_format=torch.channels_last)
    out.discriminator = copy.deepcopy(energy.discriminator).to(memory_format=torch.channels_last)
    return out


class FastEnergy:
    """`energy` with the switches of `fast`: callable (B, D) -> (B,), plus `value_and_grad`
    and, with CUDA graphs, `stepper` (the driver then replays whole steps)."""

    def __init__(self, energy: LatentEnergy, fast: FastPath):
        check_device(fast, energy.device)
        self.fast = fast
        self.energy = _channels_last(energy) if fast.channels_last else energy
        self.device = energy.device
        self._call = torch.compile(self._evaluate) if fast.compile else self._evaluate
        if fast.cuda_graphs:
            self.stepper = self._graph_stepper

    def _evaluate(self, position: Tensor) -> Tensor:
        if self.fast.autocast is None:
            return self.energy(position)
        # No cast cache inside a graph capture: a cached cast would outlive the capture.
        with torch.autocast(self.device.type, dtype=AUTOCAST[self.fast.autocast],
                            cache_enabled=not self.fast.cuda_graphs):
            e = self.energy(position)
        return e.float()

    def __call__(self, position: Tensor) -> Tensor:
        return self._call(position)

    def value_and_grad(self, position: Tensor) -> tuple[Tensor, Tensor]:
        return autograd_energy_and_grad(self._call, position)

    def _graph_stepper(self, sampler, generator, accept_sum, first_bad):
        from .graphs import GraphStepper

        return GraphStepper(sampler, self._call, generator, accept_sum, first_bad)


def prepare(energy: LatentEnergy, fast: FastPath) -> LatentEnergy | FastEnergy:
    """The energy the chains run on: `energy` itself when no switch is on."""
    return FastEnergy(energy, fast) if fast.any else energy
