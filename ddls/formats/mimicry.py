"""torch-mimicry (kwotsin/mimicry): one file per network, {'model_state_dict', 'optimizer_state_dict', 'global_step'}.

`netG_<step>_steps.pth` and `netD_<step>_steps.pth` of SNGAN-32 (ResNet, ngf=256, ndf=128,
spectral norm as torch's weight_orig/u/v or mimicry's own sn_u/sn_sigma buffers, sum pooling)
or WGAN-GP-32 (no spectral norm, mean pooling). Generators upsample bilinearly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.checkpoint import Model
from ..models.resnet32 import ResNetDiscriminator32, ResNetGenerator32
from ..models.spectral_norm import has_spectral_norm
from ._common import PairSpec, fill, pair_networks, rename, shape

NAME = "torch-mimicry"
DESCRIPTION = "torch-mimicry (netG_<step>_steps.pth with its netD_<step>_steps.pth; SNGAN-32, WGAN-GP-32)"
ONE_FILE = False

G_RULES = [
    (r"l1\.", "fc."),
    (r"block(\d+)\.b1\.", lambda m: f"blocks.{int(m.group(1)) - 2}.norm1."),
    (r"block(\d+)\.c1\.", lambda m: f"blocks.{int(m.group(1)) - 2}.conv1."),
    (r"block(\d+)\.b2\.", lambda m: f"blocks.{int(m.group(1)) - 2}.norm2."),
    (r"block(\d+)\.c2\.", lambda m: f"blocks.{int(m.group(1)) - 2}.conv2."),
    (r"block(\d+)\.c_sc\.", lambda m: f"blocks.{int(m.group(1)) - 2}.skip."),
    (r"b5\.", "norm_out."),
    (r"c5\.", "conv_out."),
]
D_RULES = [
    (r"block(\d+)\.c1\.", lambda m: f"blocks.{int(m.group(1)) - 1}.conv1."),
    (r"block(\d+)\.c2\.", lambda m: f"blocks.{int(m.group(1)) - 1}.conv2."),
    (r"block(\d+)\.c_sc\.", lambda m: f"blocks.{int(m.group(1)) - 1}.skip."),
    (r"l5\.", "fc."),
]

PAIR = PairSpec(
    library="torch-mimicry", state_key="model_state_dict",
    pass_hint="the generator file netG_<step>_steps.pth and the discriminator file netD_<step>_steps.pth",
    disc_keys="model_state_dict, global_step", disc_file="netD_<step>_steps.pth",
    pair="a torch-mimicry SNGAN-32/WGAN-GP-32 generator (l1, block2..4, b5, c5) and discriminator (block1..4, l5) pair",
)


def detect(payload: Any, path: Path) -> bool:
    return isinstance(payload, dict) and "model_state_dict" in payload and "global_step" in payload


def _role(state: dict) -> str:
    if "l1.weight" in state:
        return "generator"
    if any(k.startswith("block1.c1.") for k in state):
        return "discriminator"
    return "unknown"


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None) -> Model:
    (g_state, g_path), (d_state, d_path) = pair_networks(payload, path, disc, disc_path, PAIR, _role, detect)
    nz, width = shape(g_state, "l1.weight", g_path, "mimicry's Linear(nz, 4*4*ngf)")[::-1]
    ndf = shape(d_state, "block1.c1.weight", d_path, "mimicry's DBlockOptimized")[0]
    sn = has_spectral_norm(d_state)
    g = fill(ResNetGenerator32(nz, width // 16, upsample="bilinear"), rename(g_state, G_RULES),
             "generator (ResNetGenerator32)", g_path)
    d = fill(ResNetDiscriminator32(ndf, pooling="sum" if sn else "mean"), rename(d_state, D_RULES),
             "discriminator (ResNetDiscriminator32)", d_path)
    variant = "SNGAN-32" if sn else "WGAN-GP-32"
    meta = {"format": NAME, "architecture": "resnet32", "variant": variant, "spectral_norm": sn,
            "step": int(payload.get("global_step", 0))}
    return Model(g, d, (nz,), "gan" if sn else "wgan", meta=meta)
