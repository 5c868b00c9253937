"""Speed switches of the trainer, each off by default: autocast, channels_last, torch.compile.

The sampler's remedies (ddls.sampling.fastpath) where they are safe in training:
- autocast: G's and D's forward passes under torch.autocast ('bf16'; or 'fp16', CUDA only, with
  a GradScaler per optimiser, since fp16 gradients underflow); their outputs come back in
  float32, so the losses, the weights, their gradients and the optimisers' states stay float32.
- channels_last: the image networks' weights and the real batches in channels_last layout; the
  networks are handed back in the default layout when training ends.
- compile: torch.compile of G's and D's forward.

WGAN-GP's gradient penalty always runs D itself, in float32 and uncompiled: it differentiates D
twice, which torch.compile cannot, and its target, a gradient norm of 1, is what rounding moves.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..errors import DDLSError
from ..sampling.fastpath import AUTOCAST, FastPath, check_device

SWITCHES = ("autocast", "channels_last", "compile")  # TrainConfig's fields; None/False: off
SCALED = ("fp16",)  # autocast dtypes whose gradients underflow unless the loss is scaled


def check_autocast(name: str | None) -> None:
    FastPath(autocast=name)  # the sampler's check and wording


def check_switches(config, device: torch.device, sample_shape: int | tuple[int, ...]) -> None:
    """Refuse in one line, before any work, a switch this device or this data cannot use."""
    check_device(FastPath(autocast=config.autocast), device)  # fp16 needs CUDA, as for sampling
    if config.channels_last and (isinstance(sample_shape, int) or len(sample_shape) != 3):
        raise DDLSError(f"channels_last is a layout of images; {config.data} holds vectors, train without it")


def memory_format(config) -> torch.memory_format:
    """The layout of the networks' weights and the real batches during training."""
    return torch.channels_last if config.channels_last else torch.preserve_format


def grad_scaler(config, device: torch.device) -> torch.amp.GradScaler:
    """Scales an fp16 loss before its backward pass; with any other setting it passes everything through."""
    return torch.amp.GradScaler(device.type, enabled=config.autocast in SCALED)


def forward_of(net: nn.Module, config, device: torch.device) -> nn.Module | "Forward":
    """How the training step calls `net`: `net` itself when no switch changes its forward pass."""
    if config.autocast is None and not config.compile:
        return net
    return Forward(net, config.autocast, config.compile, device)


class Forward:
    """`net`'s forward pass (and EBGAN's forward_with_code) under autocast, with its outputs back in
    float32, and/or compiled. The weights are `net`'s: the optimiser and the checkpoint see `net` only."""

    def __init__(self, net: nn.Module, autocast: str | None, compile: bool, device: torch.device):
        self.net = net

        def wrap(fn: Callable) -> Callable:
            return _compiled(_autocast(fn, autocast, device)) if compile else _autocast(fn, autocast, device)

        self._forward = wrap(net)
        if hasattr(net, "forward_with_code"):  # EBGAN's pulling-away term reads D's codes
            self.forward_with_code = wrap(net.forward_with_code)

    def __call__(self, *args: Any) -> Any:
        return self._forward(*args)


def _autocast(fn: Callable, name: str | None, device: torch.device) -> Callable:
    if name is None:
        return fn
    dtype = AUTOCAST[name]

    def run(*args):
        with torch.autocast(device.type, dtype=dtype):
            out = fn(*args)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    return run


def _compiled(fn: Callable) -> Callable:
    """torch.compile of `fn`; a compiler that cannot work here (no C compiler, no triton) is one line."""
    try:
        compiled = torch.compile(fn)
    except RuntimeError as exc:  # e.g. a Python that this torch's compiler does not support
        raise _cannot_compile(exc) from None
    from torch._dynamo.exc import TorchDynamoException

    def run(*args):
        try:
            return compiled(*args)
        except TorchDynamoException as exc:  # raised by the first call, which compiles
            raise _cannot_compile(exc) from None

    return run


def _cannot_compile(exc: Exception) -> DDLSError:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    why = lines[0][:200] if lines else type(exc).__name__
    return DDLSError(f"torch.compile does not work here ({why}); train without compile")
