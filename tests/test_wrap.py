"""ddls.wrap around user-defined modules: latent size, selectors, class labels, energy kinds."""
import math

import pytest
import torch
from torch import nn

import ddls
from ddls.errors import DDLSError


def hand_energy(z, score):
    return 0.5 * z.pow(2).sum(1) + 0.5 * z.shape[1] * math.log(2 * math.pi) - score


class G(nn.Module):
    def __init__(self, z_dim=4, classes=0):
        super().__init__()
        self.net = nn.Linear(z_dim, 6)
        self.embed = nn.Embedding(classes, 6) if classes else None

    def forward(self, z, y=None):
        x = self.net(z)
        return x if y is None else x + self.embed(y)


class DictD(nn.Module):
    def __init__(self, classes=0):
        super().__init__()
        self.w = nn.Linear(6, 1)
        self.embed = nn.Embedding(classes, 6) if classes else None

    def forward(self, x, y=None):
        logit = self.w(x)[:, 0]
        if y is not None:
            logit = logit + (self.embed(y) * x).sum(1)
        return {"logit": logit, "features": x}


def test_latent_shape_from_first_linear_and_dict_selector():
    g, d = G(), DictD()
    model = ddls.wrap(g, d, select="logit")
    assert model.latent_shape == (4,)
    z = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model.energy()(z), hand_energy(z, d(g(z))["logit"]))


def test_attribute_and_override_and_conv_input():
    g = nn.Sequential(nn.ConvTranspose2d(7, 3, 4), nn.Flatten())
    assert ddls.wrap(g, nn.Linear(48, 1)).latent_shape == (7, 1, 1)
    g.z_dim = 9
    assert ddls.wrap(g, nn.Linear(48, 1)).latent_shape == (9,)
    assert ddls.wrap(G(), DictD(), latent_shape=4, select="logit").latent_shape == (4,)
    with pytest.raises(DDLSError, match="latent_shape="):
        ddls.wrap(nn.Tanh(), nn.Linear(1, 1))


def test_tuple_output_index_and_function_selectors():
    g = G()
    d = nn.Linear(6, 1)
    z = torch.randn(3, 4)
    for select, dd in ((1, lambda x: (x, d(x))), (lambda out: out[1], lambda x: (x, d(x)))):
        wrapped = type("TupleD", (nn.Module,), {"forward": lambda self, x: dd(x)})()
        with torch.no_grad():
            e = ddls.wrap(g, wrapped, select=select).energy()(z)
            torch.testing.assert_close(e, hand_energy(z, d(g(z))[:, 0]))


def test_studiogan_style_dict_needs_no_selector_but_other_dicts_say_how():
    g, d = G(), DictD()
    adv = type("AdvD", (nn.Module,), {"forward": lambda self, x: {"adv_output": d(x)["logit"]}})()
    z = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(ddls.wrap(g, adv).energy()(z), hand_energy(z, d(g(z))["logit"]))
        with pytest.raises(DDLSError, match="select="):
            ddls.wrap(g, d).energy()(z)
        with pytest.raises(DDLSError, match="no entry 'nope'"):
            ddls.wrap(g, d, select="nope").energy()(z)


def test_conditional_label_fixed_per_chain_and_sampling():
    g, d = G(classes=3), DictD(classes=3)
    model = ddls.wrap(g, d, select="logit", label=2)
    z = torch.randn(4, 4)
    y = torch.full((4,), 2)
    with torch.no_grad():
        torch.testing.assert_close(model.energy()(z), hand_energy(z, d(g(z, y), y)["logit"]))
    result = ddls.sample(model.energy(), ddls.RunConfig(n=6, steps=3, eps=1e-2, chunk_size=4))
    assert result.samples.shape == (6, 6)


def test_autoencoder_energy_kind():
    g = G()
    ae = nn.Linear(6, 6)
    recon = type("Recon", (nn.Module,), {"forward": lambda self, x: (ae(x) - x).pow(2).sum(1)})()
    z = torch.randn(3, 4)
    with torch.no_grad():
        e = ddls.wrap(g, recon, kind="ae").energy()(z)
        torch.testing.assert_close(e, hand_energy(z, -(ae(g(z)) - g(z)).pow(2).sum(1)))
    with pytest.raises(DDLSError, match="unknown energy kind"):
        ddls.wrap(g, recon, kind="vae")


def test_readme_wrapping_example_runs():
    """The guide's "Wrap the networks" snippet (docs/own-gan.md) works when pasted."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "own-gan.md").read_text()
    section = text[text.index("## Wrap the networks"):]
    code = section[section.index("```python") + len("```python"): section.index("```\n", section.index("```python") + 9)]
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].samples.shape == (16, 3, 32, 32)


# ---- one class per chain --------------------------------------------------------------------------

SHIFT = torch.tensor([[0.0, 0.0], [2.0, -1.0], [-3.0, 1.0]])  # G(z, y) = z + SHIFT[y]
CENTRE = torch.tensor([[1.0, 1.0], [0.0, 3.0], [-1.0, -2.0]])  # D(x, y) = -|x - CENTRE[y]|^2 / 2


class ShiftG(nn.Module):
    def forward(self, z, y):
        return z + SHIFT[y]


class DistanceD(nn.Module):
    def forward(self, x, y):
        return -0.5 * (x - CENTRE[y]).pow(2).sum(1)


def toy_energy(z, y):
    """-log N(z; 0, I) - d(G(z, y), y) for the toy pair: the target N((CENTRE - SHIFT)[y] / 2, I / 2)."""
    return hand_energy(z, -0.5 * (z + SHIFT[y] - CENTRE[y]).pow(2).sum(1))


def test_per_chain_labels_give_each_chain_its_own_energy():
    model = ddls.wrap(ShiftG(), DistanceD(), latent_shape=2, label=[2, 0, 1, 1, 2])
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([2, 0, 1, 1, 2])
    energy = model.energy()
    torch.testing.assert_close(energy(z), toy_energy(z, y))
    torch.testing.assert_close(energy.for_chains(1, 4)(z[1:4]), toy_energy(z[1:4], y[1:4]))
    torch.testing.assert_close(energy.chain_labels(5), y)
    # model.energy(label=...) overrides, as an int or a tensor; a single class is every chain's
    torch.testing.assert_close(model.energy(label=1)(z), toy_energy(z, torch.ones(5, dtype=torch.long)))
    torch.testing.assert_close(model.energy(label=y.flip(0))(z), toy_energy(z, y.flip(0)))
    with pytest.raises(DDLSError, match="for_chains"):
        energy(z[:3])
    with pytest.raises(DDLSError, match="labels for 5 chains"):
        energy.for_chains(3, 7)
    with pytest.raises(DDLSError, match="1-D sequence of class indices"):
        model.energy(label=[[0, 1]])
    with pytest.raises(DDLSError, match="out of range"):
        ddls.wrap(ShiftG(), DistanceD(), latent_shape=2, num_classes=3).energy(label=[0, 3])


def test_chunks_take_their_own_slice_of_labels():
    """Chunk k of a run with per-chain labels equals chunk k of a run where every chain has chunk k's class."""
    labels = [0, 0, 1, 1, 2, 2]
    config = ddls.RunConfig(n=6, steps=5, eps=0.05, chunk_size=2, seed=3, method="mala")
    mixed = ddls.sample(ddls.wrap(ShiftG(), DistanceD(), latent_shape=2, label=labels).energy(), config)
    for k in range(3):
        alone = ddls.sample(ddls.wrap(ShiftG(), DistanceD(), latent_shape=2, label=k).energy(), config)
        torch.testing.assert_close(mixed.latents[2 * k: 2 * k + 2], alone.latents[2 * k: 2 * k + 2])
        torch.testing.assert_close(mixed.samples[2 * k: 2 * k + 2], alone.samples[2 * k: 2 * k + 2])
        torch.testing.assert_close(mixed.acceptance[2 * k: 2 * k + 2], alone.acceptance[2 * k: 2 * k + 2])


@pytest.mark.parametrize("chunk_size", [600, 256])
def test_cycled_labels_reach_each_class_target(chunk_size):
    """Chains cycle through the 3 classes (chunks of 256 start mid-cycle); each class's chains end near
    their own target mean (CENTRE - SHIFT)[y] / 2 with variance 1/2, whatever the chunking."""
    from ddls.sampling.energy import cycle_labels

    y = cycle_labels(600, 3)
    assert y[:7].tolist() == [0, 1, 2, 0, 1, 2, 0]
    energy = ddls.wrap(ShiftG(), DistanceD(), latent_shape=2, label=y).energy()
    result = ddls.sample(energy, ddls.RunConfig(n=600, steps=300, eps=0.05, chunk_size=chunk_size, seed=1))
    for c in range(3):
        z = result.latents[y == c]
        target = (CENTRE[c] - SHIFT[c]) / 2
        # 200 chains: the mean's standard error is sqrt(0.5 / 200) = 0.05; ULA's bias at eps=0.05 is ~2%
        torch.testing.assert_close(z.mean(0), target, atol=0.2, rtol=0)
        torch.testing.assert_close(z.var(0), torch.full((2,), 0.5), atol=0.15, rtol=0)
        torch.testing.assert_close(result.samples[y == c], z + SHIFT[c])


class BatchNormG(nn.Module):
    """A generator with batch norm (running statistics apart from batch statistics) and dropout."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.norm = nn.BatchNorm1d(2)
        self.drop = nn.Dropout(0.5)
        with torch.no_grad():
            self.norm.running_mean.fill_(3.0)
            self.norm.running_var.fill_(4.0)

    def forward(self, z):
        return self.drop(self.norm(self.lin(z)))


def test_wrap_leaves_the_callers_modules_in_their_mode():
    """The energy runs G and D in eval mode (running statistics, no dropout), and each module,
    submodules included, is back in the caller's mode after every call and after sampling."""
    g, d = BatchNormG(), nn.Linear(2, 1)
    g.drop.eval()  # a mixed mode of the caller's own: it must survive too
    modes = [m.training for m in g.modules()]
    model = ddls.wrap(g, d, latent_shape=2)
    assert [m.training for m in g.modules()] == modes and d.training
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    energy = model.energy()
    with torch.no_grad():
        x = (g.lin(z) - 3.0) / math.sqrt(4.0 + g.norm.eps) * g.norm.weight + g.norm.bias  # eval-mode batch norm
        expected = hand_energy(z, d(x)[:, 0])
        torch.testing.assert_close(energy.decode(z), x)
        torch.testing.assert_close(energy(z), expected)
    ddls.sample(energy, ddls.RunConfig(n=6, steps=2, eps=1e-2))
    assert [m.training for m in g.modules()] == modes and d.training
    torch.testing.assert_close(g.norm.running_mean, torch.full((2,), 3.0))  # never updated
    assert all(p.requires_grad for p in [*g.parameters(), *d.parameters()])
