"""Steppers: one kernel step of a chunk of chains, with its acceptance sum and NaN flags.

The driver (ddls.sampling.driver) calls a stepper once per step; ddls.sampling.graphs replays
the same step as a CUDA graph and falls back to the EagerStepper here.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .samplers import Sampler, State


def flag_non_finite(first_bad: Tensor, state: State, step: int | Tensor) -> None:
    """Mark, in place, the chains whose energy or gradient is not finite at `step` (first time only)."""
    bad = ~torch.isfinite(state.energy) | ~torch.isfinite(state.grad).all(1)
    first_bad.copy_(torch.where(bad & (first_bad < 0), step, first_bad))


class EagerStepper:
    """One kernel step at a time, as PyTorch runs it: the step, its acceptance sum and its NaN flags.

    A stepper advances `state` by step `i` and adds to the driver's `accept_sum` and
    `first_bad` in place. `hold(state)` returns a state that later steps leave alone (here
    the state itself: eager steps make new tensors); `close()` frees what the stepper holds.
    An energy may bring its own stepper (`energy.stepper(...)`, ddls.sampling.graphs), which
    must follow the same contract.
    """

    def __init__(self, sampler: Sampler, energy: Callable[[Tensor], Tensor], generator: torch.Generator,
                 accept_sum: Tensor, first_bad: Tensor):
        self.sampler, self.energy, self.generator = sampler, energy, generator
        self.accept_sum, self.first_bad = accept_sum, first_bad

    def __call__(self, state: State, eps: Tensor | None, i: int) -> State:
        if eps is None:
            state, info = self.sampler.step(state, self.energy, generator=self.generator)
        else:
            state, info = self.sampler.step(state, self.energy, generator=self.generator, eps=eps)
        self.accept_sum += info.accept_prob
        flag_non_finite(self.first_bad, state, i)
        return state

    def hold(self, state: State) -> State:
        return state

    def close(self) -> None:
        pass


def make_stepper(sampler: Sampler, energy: Callable[[Tensor], Tensor], generator: torch.Generator,
                 accept_sum: Tensor, first_bad: Tensor):
    """The energy's own stepper when it has one (whole-step CUDA graphs), else an EagerStepper."""
    own = getattr(energy, "stepper", None)
    if own is not None:
        return own(sampler, generator, accept_sum, first_bad)
    return EagerStepper(sampler, energy, generator, accept_sum, first_bad)
