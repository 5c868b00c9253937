"""Default hyper-parameters: by data kind (2-D or images) and by architecture.

The SNGAN ResNet follows its paper's recipe (Miyato et al. 2018, as torch-mimicry trains it):
5 critic steps per generator step and Adam betas (0, 0.9). With the DCGAN defaults (1 critic
step, betas (0.5, 0.9)) its critic stayed near chance and the samples were stripes.
"""
from __future__ import annotations

from ..data.images import is_image_data
from .trainer import TrainConfig

DATA_DEFAULTS = {  # image data / 2-D data
    True: {"lr": 2e-4, "batch_size": 64, "z_dim": 64, "arch": "dcgan"},
    False: {"lr": 1e-4, "batch_size": 256, "z_dim": 2, "arch": "mlp"},
}
ARCH_DEFAULTS = {
    "resnet": {"beta1": 0.0, "beta2": 0.9, "n_critic": 5},
}


def make_config(data: str, *, lr: float | None = None, lr_d: float | None = None, batch_size: int | None = None,
                z_dim: int | None = None, arch: str | None = None, beta1: float | None = None,
                beta2: float | None = None, n_critic: int | None = None, **given) -> TrainConfig:
    """A TrainConfig where every option left as None takes its default for this data and architecture."""
    base = DATA_DEFAULTS[is_image_data(data)]
    arch = arch or base["arch"]
    recipe = ARCH_DEFAULTS.get(arch, {})
    lr = lr if lr is not None else base["lr"]
    return TrainConfig(
        data=data, arch=arch, lr_g=lr, lr_d=lr_d if lr_d is not None else lr,
        batch_size=batch_size or base["batch_size"], z_dim=z_dim or base["z_dim"],
        beta1=beta1 if beta1 is not None else recipe.get("beta1", 0.5),
        beta2=beta2 if beta2 is not None else recipe.get("beta2", 0.9),
        n_critic=n_critic if n_critic is not None else recipe.get("n_critic"), **given)
