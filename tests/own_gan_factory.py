"""A user's own GAN, as the tests of `--model` and `ddls.save` load it: by module name or by file path."""
import torch
from torch import nn

import ddls


class TwoLayerG(nn.Module):
    def __init__(self, z_dim, hidden):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, z):
        return self.net(z)


class TwoLayerD(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)[:, 0]


@ddls.factory
def make_gan(hidden=16, z_dim=2):
    """Marked: a checkpoint written by ddls.save may name it."""
    torch.manual_seed(7)
    return TwoLayerG(z_dim, hidden), TwoLayerD(hidden)


def make_unmarked(hidden=16, z_dim=2):
    """The same networks, not marked: only a user may ask for it."""
    return make_gan.__wrapped__(hidden, z_dim)


def make_wrapped():
    """A Model with its energy kind: what a factory may return instead of (G, D)."""
    g, d = make_gan.__wrapped__()
    return ddls.wrap(g, d, kind="wgan")


def make_kwargs():
    g, d = make_gan.__wrapped__()
    return {"generator": g, "discriminator": d, "kind": "wgan"}


def make_wrong():
    return 3


def make_one():
    return (TwoLayerD(4),)


def make_broken():
    raise RuntimeError("no GPU here")


NOT_CALLABLE = 5
