"""Whole sampler steps as CUDA graphs: noise, energy, gradient, update, MALA's accept, the
acceptance sum and the NaN flags of one step, replayed as a single graph.

A small model's step then costs its networks' kernels and one launch, where the eager step
adds a launch (and Python) for each of a dozen small kernels around them.

- Randomness: the chain's own torch.Generator is registered with the graph
  (`CUDAGraph.register_generator_state`), so each replay draws the numbers that the same
  eager step would draw from that generator, and `generator.get_state()` stays exact for
  saving and resuming.
- Memory: every capture uses one memory pool shared across chunk shapes (a graph keeps no
  tensor of the pool alive between replays: its inputs and outputs are buffers allocated
  outside it); the warm-up's cached blocks are returned before capture, so a graph needs
  about what the eager step needs. A capture that still runs out of memory falls back to
  eager steps, with a warning.
- A stepper is made per chunk (`run_chain` call) and freed at its end. It captures one graph
  for the sampler's own eps and, after a restart gives the chains their own eps, one more.

`GraphStepper(capture=...)` takes the capture itself as a parameter: on the CPU the tests
pass `EagerReplay`, which runs the captured body on every replay, to check the bookkeeping
(static buffers, step counter, restarts) that the CUDA graph relies on.
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import Tensor

from .stepper import EagerStepper, flag_non_finite
from .samplers import Sampler, State

WARMUP = 2  # eager steps on a side stream before capture (lazy initialisation, cuDNN's choices)
_POOLS: dict[torch.device, object] = {}  # device -> the graph memory pool every capture shares


def shared_pool(device: torch.device):
    if device not in _POOLS:
        _POOLS[device] = torch.cuda.graph_pool_handle()
    return _POOLS[device]


class CudaReplay:
    """`body` captured once as a CUDA graph with `generator` registered; `replay()` runs it."""

    def __init__(self, body: Callable[[], None], generator: torch.Generator, device: torch.device):
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                body()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(generator)
        # torch.cuda.graph empties the cache first: the warm-up's blocks become the pool's.
        with torch.cuda.graph(self.graph, pool=shared_pool(device)):
            body()

    def replay(self) -> None:
        self.graph.replay()

    def close(self) -> None:
        self.graph.reset()


class EagerReplay:
    """Stands in for CudaReplay where there is no GPU: `replay()` runs `body` (warm-up included)."""

    def __init__(self, body: Callable[[], None], generator: torch.Generator, device: torch.device):
        self.body = body
        for _ in range(WARMUP):
            body()

    def replay(self) -> None:
        self.body()

    def close(self) -> None:
        pass


class GraphStepper:
    """The driver's stepper (see ddls.sampling.driver.EagerStepper) with each step one replay.

    The chain's state lives in buffers the graph reads and overwrites; the state handed back
    is those buffers, so `hold` copies it where the driver keeps a state across steps. A state
    the driver made itself (after a restart, or the first one) is copied in before the replay.
    """

    def __init__(self, sampler: Sampler, energy: Callable[[Tensor], Tensor], generator: torch.Generator,
                 accept_sum: Tensor, first_bad: Tensor, *, capture=CudaReplay):
        self.sampler, self.energy, self.generator = sampler, energy, generator
        self.accept_sum, self.first_bad = accept_sum, first_bad
        self.capture = capture
        self.replays: dict[bool, CudaReplay | EagerReplay] = {}  # per-chain eps or not -> its captured step
        self.buf: State | None = None
        self.eps = self.step_no = self.eps_from = None
        self.next_step = None  # the step the buffers are ready for
        self.fallback = None  # an EagerStepper once a capture ran out of memory

    def _body(self, per_chain: bool) -> Callable[[], None]:
        def body() -> None:
            kw = {"eps": self.eps} if per_chain else {}
            new, info = self.sampler.step(self.buf, self.energy, generator=self.generator, **kw)
            for dst, src in zip(self.buf, new):
                dst.copy_(src)
            self.accept_sum.add_(info.accept_prob)
            self.step_no.add_(1)
            flag_non_finite(self.first_bad, self.buf, self.step_no)
        return body

    def _load(self, state: State, eps: Tensor | None, i: int) -> None:
        if self.buf is None:
            self.buf = State(*(t.detach().clone() for t in state))
            self.eps = torch.empty_like(state.energy)
            self.step_no = torch.zeros((), dtype=torch.long, device=state.energy.device)
        elif state is not self.buf:
            for dst, src in zip(self.buf, state):
                dst.copy_(src)
        if eps is not None and eps is not self.eps_from:
            self.eps.copy_(eps)
            self.eps_from = eps
        if i != self.next_step:
            self.step_no.fill_(i - 1)

    def _capture(self, per_chain: bool, state: State, eps: Tensor | None, i: int):
        """(the captured step or None when it did not fit, the chain as it stood before the warm-up)."""
        # The warm-up runs real steps: put back the chain, its sums and its generator afterwards.
        saved = State(*(t.clone() for t in state))
        sums = self.accept_sum.clone(), self.first_bad.clone(), self.generator.get_state()
        try:
            replay = self.capture(self._body(per_chain), self.generator, state.position.device)
        except torch.cuda.OutOfMemoryError:
            warnings.warn("a CUDA graph of the whole step did not fit in memory; this chunk runs eager steps")
            self.fallback = EagerStepper(self.sampler, self.energy, self.generator, self.accept_sum, self.first_bad)
            replay = None
        self.accept_sum.copy_(sums[0])
        self.first_bad.copy_(sums[1])
        self.generator.set_state(sums[2])
        if replay is not None:
            self._load(saved, eps, i)
            self.step_no.fill_(i - 1)
        return replay, saved

    def __call__(self, state: State, eps: Tensor | None, i: int) -> State:
        if self.fallback is not None:
            return self.fallback(self.hold(state), eps, i)
        per_chain = eps is not None
        self._load(state, eps, i)
        replay = self.replays.get(per_chain)
        if replay is None:
            replay, before = self._capture(per_chain, state, eps, i)
            if replay is None:
                return self.fallback(before, eps, i)
            self.replays[per_chain] = replay
        replay.replay()
        self.next_step = i + 1
        return self.buf

    def hold(self, state: State) -> State:
        if state is self.buf:
            return State(*(t.clone() for t in state))
        return state

    def close(self) -> None:
        for replay in self.replays.values():
            replay.close()
        self.replays.clear()
        self.buf = None
