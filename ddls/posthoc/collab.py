"""Collaborative sampling: refine an intermediate activation of G by D's gradient (Liu et al., AAAI 2020).

G proposes x = G_up(h), h = G_low(z); then h takes `steps` gradient-ascent steps on the calibrated
logit d(G_up(h)) / T, and the sample is G_up(h). Because h lives in a layer wider than the latent,
the refined samples can leave G's range, which no latent-space method (DDLS, DOT, DGflow, polarity)
can. As in the paper, a sample stops moving once D calls it real (d > 0) when `stop_when_real`.
(The paper's discriminator shaping is a fine-tuning of D: `ddls calibrate --method finetune`.)

The layer is a submodule of G named as in `G.named_modules()` (`--collab-layer linear`, `main.0`);
the default is G's first top-level child. Its output is replaced through a forward hook, so any
generator works unchanged; G's lower layers are recomputed at each step (they are cheap beside D).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import click
import torch
from torch import Tensor, nn

from .._torch import frozen, seeded_chunks
from ..errors import DDLSError
from .progress import step_bar
from .registry import POSITIVE, Setting, register
from .target import LatentLogit, PosthocResult


@dataclass(frozen=True)
class CollabConfig:
    layer: str = ""  # a submodule of G (named as in G.named_modules()); "": its first top-level child
    steps: int = 25
    lr: float = 0.3  # gradient-ascent step on the activation (the shipped SNGAN: 0.3 best of 0.01-1)
    stop_when_real: bool = True  # a sample D calls real (d > 0) stops moving
    chunk_size: int = 5000

    def __post_init__(self):
        if self.steps < 0 or not self.lr > 0 or self.chunk_size < 1:
            raise DDLSError("collaborative sampling needs steps >= 0, lr > 0 and chunk size >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def find_layer(generator: nn.Module, name: str) -> tuple[str, nn.Module]:
    """The submodule of G to refine at: `name`, or G's first top-level child."""
    modules = dict(generator.named_modules())
    if name:
        if name not in modules or name == "":
            choices = ", ".join(n for n in modules if n) or "(none)"
            raise DDLSError(f"the generator has no layer {name!r}; choose one of {choices}")
        return name, modules[name]
    children = list(generator.named_children())
    if not children:
        raise DDLSError("the generator has no submodules to refine at; collaborative sampling needs a layer "
                        "inside G (give --collab-layer)")
    return children[0]


@contextmanager
def replaced_output(module: nn.Module, slot: dict) -> Iterator[None]:
    """While inside: the module's output is recorded in slot['seen'], and replaced by slot['h'] when set."""
    def hook(_module, _inputs, output):
        slot["seen"] = output
        return slot.get("h", output)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def refine(target: LatentLogit, z: Tensor, module: nn.Module, config: CollabConfig,
           advance=lambda k=1: None) -> tuple[Tensor, Tensor]:
    """(samples, final logits) after `config.steps` ascent steps on the module's output for latents z."""
    slot: dict = {}
    with replaced_output(module, slot), frozen(*target.modules()):
        with torch.no_grad():
            target.decode(z)
        if not isinstance(slot.get("seen"), Tensor):
            raise DDLSError("the chosen generator layer does not output one tensor; choose another --collab-layer")
        h = slot["seen"].detach().clone()
        for _ in range(config.steps):
            with torch.enable_grad():
                h.requires_grad_(True)
                slot["h"] = h
                d = target.of_samples(target.decode(z))
                (grad,) = torch.autograd.grad(d.sum(), h)  # rows are independent: the sum's gradient is each row's
            active = (d.detach() <= 0) if config.stop_when_real else torch.ones_like(d, dtype=torch.bool)
            mask = active.to(h.dtype).reshape(-1, *([1] * (h.dim() - 1)))
            h = (h.detach() + config.lr * mask * grad).detach()
            advance(1)
        with torch.no_grad():
            slot["h"] = h
            x = target.decode(z)
            d = target.of_samples(x)
    return x, d


@register("collab", CollabConfig, "collaborative sampling: refine an activation inside G by D's gradient (leaves "
          "G's range)", shared={"chunk_size": "chunk_size"}, settings=[
              Setting("--collab-layer", "layer", click.STRING,
                      "Collab: G's layer to refine at, as named in G.named_modules() (empty: G's first child)."),
              Setting("--collab-steps", "steps", click.IntRange(min=0), "Collab: gradient steps on the activation."),
              Setting("--collab-lr", "lr", POSITIVE, "Collab: step size on the activation."),
              Setting("--collab-stop-when-real", "stop_when_real", click.BOOL,
                      "Collab: a sample stops once D calls it real (d > 0)."),
          ])
def sample(target: LatentLogit, n: int, config: CollabConfig = CollabConfig(), *, seed: int = 0,
           progress: bool = False) -> PosthocResult:
    """n refined samples; chunk k starts from the prior draws of stream (seed, k), as DDLS does. The latents
    returned are the prior draws: the samples are no longer G of any latent."""
    if not target.calibration.differentiable:
        raise DDLSError(f"collaborative sampling follows gradients of d, and {target.calibration.kind} "
                        f"calibration has none; use raw, logistic or finetune")
    if target.energy.sigma > 0:
        raise DDLSError("collaborative sampling refines G itself; use it without the extended latent (sigma 0)")
    name, module = find_layer(target.energy.generator, config.layer)
    xs, zs, ds = [], [], []
    with step_bar(progress, n, config.chunk_size, config.steps, "collab") as advance:
        for chunk in seeded_chunks(n, config.chunk_size, seed, target.device):
            z = target.prior_sample(chunk.size, chunk.generator)
            x, d = refine(target, z, module, config, advance)
            if not torch.isfinite(x).all():
                raise DDLSError("collaborative refinement gave NaN/inf samples; use a smaller --collab-lr")
            xs.append(x.cpu())
            zs.append(z.cpu())
            ds.append(d.cpu())
    logits = torch.cat(ds)
    # each step: a forward and a backward through G and D; then one forward for the sample
    return PosthocResult(torch.cat(xs), torch.cat(zs), n * (2 * config.steps + 1),
                         {"layer": name, "real_share": float((logits > 0).double().mean())})
