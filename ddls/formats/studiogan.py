"""StudioGAN (POSTECH-CVLab/PyTorch-StudioGAN): `model=G-<when>-weights-step=N.pth` and `model=D-...`.

Each file holds {'state_dict', 'optimizer', 'seed', 'run_name', 'step', 'best_step', ...}.
ddls reads its `resnet` backbone at 32x32 (the CIFAR-10 SNGAN-style configs): spectrally
normalised D, unconditional or conditional through class-conditional batch norm in G
(embed0 = gain - 1, embed1 = shift, eps 1e-4) and a projection (PD) or classifier (AC) head
in D. Its D returns a dict whose `adv_output` is the logit; ddls uses that term only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.checkpoint import Model
from ..errors import DDLSError
from ..models.resnet32 import ResNetDiscriminator32, ResNetGenerator32
from ..models.spectral_norm import has_spectral_norm
from ._common import PairSpec, fill, pair_networks, rename, shape

NAME = "StudioGAN"
DESCRIPTION = "StudioGAN (model=G-...-weights-step=N.pth with its model=D-...pth; resnet backbone, 32x32)"
ONE_FILE = False

G_RULES = [
    (r"linear0\.", "fc."),
    (r"blocks\.(\d+)\.0\.bn(\d)\.embed0\.", r"blocks.\1.norm\2.gain."),
    (r"blocks\.(\d+)\.0\.bn(\d)\.embed1\.", r"blocks.\1.norm\2.shift."),
    (r"blocks\.(\d+)\.0\.bn(\d)\.", r"blocks.\1.norm\2."),
    (r"blocks\.(\d+)\.0\.conv2d0\.", r"blocks.\1.skip."),
    (r"blocks\.(\d+)\.0\.conv2d1\.", r"blocks.\1.conv1."),
    (r"blocks\.(\d+)\.0\.conv2d2\.", r"blocks.\1.conv2."),
    (r"bn4\.", "norm_out."),
    (r"conv2d5\.", "conv_out."),
]
D_RULES = [
    (r"blocks\.(\d+)\.0\.conv2d0\.", r"blocks.\1.skip."),
    (r"blocks\.(\d+)\.0\.conv2d1\.", r"blocks.\1.conv1."),
    (r"blocks\.(\d+)\.0\.conv2d2\.", r"blocks.\1.conv2."),
    (r"linear1\.", "fc."),
    (r"embedding\.", "embed."),
]

PAIR = PairSpec(
    library="StudioGAN", state_key="state_dict",
    pass_hint="the generator file model=G-...-weights-step=N.pth and the discriminator file model=D-...-weights-step=N.pth",
    disc_keys="state_dict, run_name, step", disc_file="model=D-... file",
    pair="a StudioGAN generator (linear0, blocks, conv2d5) and discriminator (blocks, linear1) pair",
)


def detect(payload: Any, path: Path) -> bool:
    return (isinstance(payload, dict) and "state_dict" in payload
            and ("run_name" in payload or "best_step" in payload or path.name.startswith("model=")))


def _role(state: dict) -> str:
    if "linear0.weight" in state or "linear0.weight_orig" in state:
        return "generator"
    if any(k.startswith("linear1.") for k in state):
        return "discriminator"
    return "unknown"


def _blocks(state: dict) -> int:
    return len({k.split(".")[1] for k in state if k.startswith("blocks.")})


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None) -> Model:
    (g_state, g_path), (d_state, d_path) = pair_networks(payload, path, disc, disc_path, PAIR, _role, detect)
    if "conv2d5.weight" not in g_state and "conv2d5.weight_orig" not in g_state or _blocks(g_state) != 3:
        raise DDLSError(f"{g_path}: ddls reads StudioGAN's `resnet` generator at 32x32 (linear0, 3 blocks, "
                        f"conv2d5); this one has {_blocks(g_state)} blocks (BigGAN or another size?)")
    if _blocks(d_state) != 4 or any(".bn" in k for k in d_state):
        raise DDLSError(f"{d_path}: ddls reads StudioGAN's `resnet` discriminator at 32x32 with spectral norm "
                        f"(4 blocks, no batch norm)")
    if shape(d_state, "linear1.weight", d_path, "linear1")[0] != 1:
        raise DDLSError(f"{d_path}: a multi-hinge (MH) discriminator; ddls needs one adversarial logit")
    z_dim, width = shape(g_state, "linear0.weight", g_path, "Linear(z_dim, 4*4*ch)")[::-1]
    num_classes = 0
    gain_key = "blocks.0.0.bn1.embed0.weight"
    if gain_key in g_state or gain_key + "_orig" in g_state:
        num_classes = shape(g_state, gain_key, g_path, "")[0]
    # Only the adversarial term feeds the energy: drop AC / contrastive (2C) heads.
    head = "linear2." if any(k.startswith("linear2.") for k in d_state) else None
    if head:
        d_state = {k: v for k, v in d_state.items() if not k.startswith(("linear2.", "embedding."))}
    projection = any(k.startswith("embedding.") for k in d_state)
    d_channels = shape(d_state, "blocks.0.0.conv2d1.weight", d_path, "DiscOptBlock")[0]
    g = fill(ResNetGenerator32(z_dim, width // 16, upsample="nearest", eps=1e-4, num_classes=num_classes),
             rename(g_state, G_RULES), "generator (resnet Generator)", g_path)
    d_classes = shape(d_state, "embedding.weight", d_path, "")[0] if projection else 0
    num_classes = max(num_classes, d_classes)
    d = fill(ResNetDiscriminator32(d_channels, pooling="sum", num_classes=d_classes),
             rename(d_state, D_RULES), "discriminator (resnet Discriminator)", d_path)
    cond = "PD" if projection else ("AC/2C" if head else "none")
    meta = {"format": NAME, "architecture": "resnet32", "variant": f"conditioning={cond}",
            "spectral_norm": has_spectral_norm(d_state), "step": payload.get("step"),
            "run_name": payload.get("run_name")}
    return Model(g, d, (z_dim,), "gan", meta=meta, num_classes=num_classes)
