"""Chains of several settings in one batch: each setting (a kernel, a step size, an energy that differs
from the others' only in its temperature) runs the n chains a run of its own would, but every step
evaluates the networks once for all settings together. A CPU or GPU computes one large batch far
faster per sample than many small ones, so a search over settings (ddls.tuning) costs one batch.

Setting j reproduces `driver.sample(energy_j, RunConfig(n, steps, kernel_j, eps_j, noise_scale, seed,
chunk_size))` to float tolerance: chunk k draws its prior latents from stream (seed, k) as the driver
does, and each kernel draws its noise from its own copy of that stream, in the order its own run
would (ULA a normal per step, MALA a normal and then a uniform); settings of one kernel share those
draws, as runs of one seed do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .._interrupt import stop_requested
from .._torch import frozen, seeded_chunks
from ..errors import DDLSError
from .stepper import flag_non_finite
from .energy import LatentEnergy
from .samplers import KERNELS, State, _check_mala_noise, _check_step, autograd_energy_and_grad, init, mixed_step

SHARED = ("generator", "discriminator", "kind", "sigma", "select", "score_map", "latent_shape")  # must be the same


@dataclass(frozen=True)
class ChainSetting:
    """One setting of a batched run: `kernel` ('ula' or 'mala') at step size `eps` on `energy`."""

    energy: LatentEnergy
    kernel: str = "ula"
    eps: float = 0.01


@dataclass
class SettingRun:
    """What one setting's n chains produced (on the CPU)."""

    samples: Tensor  # (n, *sample_shape)
    latents: Tensor  # (n, D)
    acceptance: Tensor | None  # (n,) mean acceptance probability per chain, MALA only
    non_finite: int  # chains whose energy or gradient became NaN/inf (their samples are not to be used)
    first_bad: int  # the first step at which one did, -1 if none


class InBatches:
    """A function of latents (an energy, a post-hoc method's logit) evaluated `size` chains at a time, with
    its gradient: a bound on the networks' memory, however many settings share the batch. An energy with
    per-chain labels or temperatures gives each slice its own (`for_chains`)."""

    def __init__(self, energy, size: int):
        self.energy, self.size = energy, size

    def ranges(self, total: int):
        return [(a, min(a + self.size, total)) for a in range(0, total, self.size)]

    def part(self, a: int, b: int):
        return self.energy.for_chains(a, b) if hasattr(self.energy, "for_chains") else self.energy

    def value_and_grad(self, position: Tensor) -> tuple[Tensor, Tensor]:
        parts = [autograd_energy_and_grad(self.part(a, b), position[a:b]) for a, b in self.ranges(len(position))]
        return torch.cat([v for v, _ in parts]), torch.cat([g for _, g in parts])

    def decode(self, position: Tensor) -> Tensor:
        """Samples of the positions, on the CPU."""
        with torch.no_grad():
            return torch.cat([self.part(a, b).decode(position[a:b]).cpu() for a, b in self.ranges(len(position))])


def _same_label(a, b) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    return a == b


def _check_shared(settings: Sequence[ChainSetting]) -> LatentEnergy:
    if not settings:
        raise DDLSError("no settings to run: give at least one")
    first = settings[0].energy
    for s in settings:
        if s.kernel not in KERNELS:
            raise DDLSError(f"unknown sampler {s.kernel!r}; choose one of {', '.join(KERNELS)}")
        different = [a for a in SHARED if getattr(s.energy, a) is not getattr(first, a)
                     and getattr(s.energy, a) != getattr(first, a)]
        if not _same_label(s.energy.label, first.label):
            different.append("label")
        if isinstance(s.energy.temperature, Tensor):
            different.append("temperature (per chain already)")
        if different:
            raise DDLSError(f"settings run in one batch must share the networks and differ only in temperature; "
                            f"these differ in {', '.join(different)}: run them one by one")
    return first


def sample_settings(settings: Sequence[ChainSetting], n: int, *, steps: int, seed: int = 0, noise_scale: float = 1.0,
                    chunk_size: int = 5000, batch_size: int | None = None) -> list[SettingRun]:
    """n chains of each setting, `steps` steps each, all settings in one batch (see the module docstring).

    batch_size: most chains the networks see at once (default chunk_size): each chunk's chains of every
    setting are evaluated that many at a time, so memory stays that of one chunk whatever the settings.
    A setting whose chains go NaN/inf is reported (`non_finite`), not raised: the others are unharmed.
    """
    first = _check_shared(settings)
    if n < 1 or steps < 0 or chunk_size < 1:
        raise DDLSError(f"need n >= 1, steps >= 0 and chunk size >= 1; got {n}, {steps}, {chunk_size}")
    for s in settings:
        _check_step(s.eps, noise_scale)
        if s.kernel == "mala":
            _check_mala_noise(noise_scale)
    k = len(settings)
    kernels = list(dict.fromkeys(s.kernel for s in settings))
    device = first.device
    temps = torch.tensor([float(s.energy.temperature) for s in settings], device=device)
    step_sizes = torch.tensor([float(s.eps) for s in settings], device=device)
    mala = torch.tensor([s.kernel == "mala" for s in settings], device=device)
    blocks = [[] for _ in settings], [[] for _ in settings], [[] for _ in settings]
    bad_counts, first_bads = [0] * k, [-1] * k
    with frozen(*first.modules()):
        for _, start, stop, gen in seeded_chunks(n, chunk_size, seed, device):
            m = stop - start
            chunk = first.for_chains(start, stop)  # its labels, if any
            z0 = chunk.prior_sample(m, gen)
            label = chunk.label.repeat(k) if isinstance(chunk.label, Tensor) else chunk.label
            energy = InBatches(chunk.replaced(temperature=temps.repeat_interleave(m), label=label),
                                batch_size or chunk_size)
            streams = {}
            for kernel in kernels:  # each kernel's own copy of the chunk's stream, after the prior draw
                streams[kernel] = torch.Generator(device=gen.device)
                streams[kernel].set_state(gen.get_state())
            eps, adjusted = step_sizes.repeat_interleave(m), mala.repeat_interleave(m)
            state = init(z0.repeat(k, 1), energy)
            accept_sum = torch.zeros_like(state.energy)
            first_bad = torch.full(state.energy.shape, -1, dtype=torch.long, device=device)
            flag_non_finite(first_bad, state, 0)
            for i in range(1, steps + 1):
                if stop_requested():
                    raise KeyboardInterrupt
                state, accept_sum = _step(state, energy, settings, streams, eps, adjusted, noise_scale, m,
                                          accept_sum)
                flag_non_finite(first_bad, state, i)
            samples = energy.decode(state.position)
            for j in range(k):
                rows = slice(j * m, (j + 1) * m)
                blocks[0][j].append(samples[rows])
                blocks[1][j].append(state.position[rows].cpu())
                blocks[2][j].append((accept_sum[rows] / max(steps, 1)).cpu())
                bad = first_bad[rows]
                bad_counts[j] += int((bad >= 0).sum())
                if bool((bad >= 0).any()):
                    found = int(bad[bad >= 0].min())
                    first_bads[j] = found if first_bads[j] < 0 else min(first_bads[j], found)
    return [SettingRun(torch.cat(blocks[0][j]), torch.cat(blocks[1][j]),
                       torch.cat(blocks[2][j]) if settings[j].kernel == "mala" and steps else None,
                       bad_counts[j], first_bads[j]) for j in range(k)]


def _step(state: State, energy: InBatches, settings: Sequence[ChainSetting], streams: dict, eps: Tensor,
          adjusted: Tensor, noise_scale: float, m: int, accept_sum: Tensor) -> tuple[State, Tensor]:
    """One step of every chain: each kernel's draws (normal, then uniform for MALA), shared by its settings."""
    shape, like = (m, state.position.shape[1]), state.position
    normals, uniforms = {}, {}
    for kernel, gen in streams.items():
        normals[kernel] = torch.randn(shape, generator=gen, device=like.device, dtype=like.dtype)
        if kernel == "mala":  # drawn after the normal, as mala_step draws it
            uniforms[kernel] = torch.rand((m,), generator=gen, device=like.device, dtype=state.energy.dtype)
    ones = torch.ones((m,), device=like.device, dtype=state.energy.dtype)
    noise = torch.cat([normals[s.kernel] for s in settings])
    u = torch.cat([uniforms.get(s.kernel, ones) for s in settings])
    state, info = mixed_step(state, energy, eps=eps, adjusted=adjusted, noise_scale=noise_scale, noise=noise, u=u)
    return state, accept_sum + info.accept_prob
