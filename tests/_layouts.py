"""Checkpoints in each library's exact layout, with made-up weights, and functional references.

The references are written from the libraries' published forward passes with torch.nn.functional
calls on the raw state-dict tensors, independently of ddls's modules and key renaming.
"""
import math

import torch
import torch.nn.functional as F

GEN = torch.Generator().manual_seed(1234)


def rand(*shape, scale=None):
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return torch.randn(*shape, generator=GEN) * (scale if scale is not None else 1.0 / math.sqrt(fan_in))


def power_vectors(mat, iters=3):
    """u, v as training leaves them: a few power iterations from random starts (so sigma ~ top singular value)."""
    u = F.normalize(torch.randn(mat.shape[0], generator=GEN), dim=0)
    for _ in range(iters):
        v = F.normalize(mat.t() @ u, dim=0)
        u = F.normalize(mat @ v, dim=0)
    return u, v


def conv(state, name, c_out, c_in, k, bias=True, sn=None, transposed=False):
    w = rand(c_in, c_out, k, k) if transposed else rand(c_out, c_in, k, k)
    if sn == "torch":  # torch.nn.utils.spectral_norm: weight_orig, weight_u (rows), weight_v (cols)
        state[f"{name}.weight_orig"] = w * 3.0
        state[f"{name}.weight_u"], state[f"{name}.weight_v"] = power_vectors(w.reshape(c_out, -1))
    elif sn == "mimicry":  # torch-mimicry's own SNConv2d: weight plus sn_u (1, out) and sn_sigma (1,)
        state[f"{name}.weight"] = w * 3.0
        state[f"{name}.sn_u"] = torch.randn(1, c_out, generator=GEN)
        state[f"{name}.sn_sigma"] = torch.ones(1)
    else:
        state[f"{name}.weight"] = w
    if bias:
        state[f"{name}.bias"] = rand(c_out, scale=0.1)


def linear(state, name, f_out, f_in, bias=True, sn=None):
    conv(state, name, f_out, f_in, 1, bias=bias, sn=sn)
    for suffix in ("weight", "weight_orig"):
        if f"{name}.{suffix}" in state:
            state[f"{name}.{suffix}"] = state[f"{name}.{suffix}"][:, :, 0, 0]


def bn(state, name, c, affine=True):
    if affine:
        state[f"{name}.weight"] = 1 + rand(c, scale=0.1)
        state[f"{name}.bias"] = rand(c, scale=0.1)
    state[f"{name}.running_mean"] = rand(c, scale=0.1)
    state[f"{name}.running_var"] = 1 + torch.rand(c, generator=GEN)
    state[f"{name}.num_batches_tracked"] = torch.tensor(1000)


# ---- the reference forward pass, on raw tensors -------------------------------------------------

def weight(state, name):
    """The weight each library uses in eval mode, computed here from the paper's definitions."""
    if f"{name}.weight_orig" in state:
        w, u, v = state[f"{name}.weight_orig"], state[f"{name}.weight_u"], state[f"{name}.weight_v"]
        return w / (u @ w.reshape(w.shape[0], -1) @ v)
    w = state[f"{name}.weight"]
    if f"{name}.sn_u" in state:
        mat = w.reshape(w.shape[0], -1)
        v = state[f"{name}.sn_u"] @ mat
        v = v / v.norm()
        u = v @ mat.t()
        u = u / u.norm()
        return w / (u @ mat @ v.t())
    return w


def f_conv(state, name, x, stride=1, padding=None):
    w = weight(state, name)
    pad = w.shape[-1] // 2 if padding is None else padding
    return F.conv2d(x, w, state.get(f"{name}.bias"), stride=stride, padding=pad)


def f_linear(state, name, x):
    return F.linear(x, weight(state, name), state.get(f"{name}.bias"))


def f_bn(state, name, x, eps=1e-5):
    return F.batch_norm(x, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                        state.get(f"{name}.weight"), state.get(f"{name}.bias"), training=False, eps=eps)


# ---- pytorch-gan-collections ------------------------------------------------------------------

def collections_cnn32(z_dim, sn):
    g, d = {}, {}
    linear(g, "linear", 4 * 4 * 512, z_dim)
    bn(g, "main.0", 512)
    for t, (c_in, c_out) in zip((2, 5, 8), ((512, 256), (256, 128), (128, 64))):
        conv(g, f"main.{t}", c_out, c_in, 4, transposed=True)
        bn(g, f"main.{t + 1}", c_out)
    conv(g, "main.11", 3, 64, 3)
    chans = ((3, 64, 3), (64, 128, 4), (128, 128, 3), (128, 256, 4), (256, 256, 3), (256, 512, 4), (512, 512, 3))
    for i, (c_in, c_out, k) in enumerate(chans):
        conv(d, f"main.{2 * i}", c_out, c_in, k, sn="torch" if sn else None)
    linear(d, "linear", 1, 4 * 4 * 512, sn="torch" if sn else None)
    return g, d


def ref_collections_cnn32_g(g, z):
    x = F.linear(z, g["linear.weight"], g["linear.bias"]).view(len(z), 512, 4, 4)
    x = F.relu(f_bn(g, "main.0", x))
    for t, b in ((2, 3), (5, 6), (8, 9)):
        x = F.conv_transpose2d(x, g[f"main.{t}.weight"], g[f"main.{t}.bias"], stride=2, padding=1)
        x = F.relu(f_bn(g, f"main.{b}", x))
    return torch.tanh(f_conv(g, "main.11", x))


def ref_collections_cnn32_d(d, x):
    for i in range(7):
        x = F.leaky_relu(f_conv(d, f"main.{2 * i}", x, stride=2 if i % 2 else 1, padding=1), 0.1)
    return f_linear(d, "linear", x.flatten(1))[:, 0]


def collections_dcgan32(z_dim, width_g=128, width_d=64):
    """The library's DCGAN cnn32 (source/models/dcgan.py): G = main.0 ConvTranspose(z, 8w, 2) and four 4/2/1
    transposed convs, batch norm at main.1/4/7/10; D = 5x5/2 convs at main.0/2/5/8 with batch norm at
    main.4/7/10 (after LeakyReLU 0.2), then linear. No conv biases; the Linear has one."""
    g, d = {}, {}
    widths = (8 * width_g, 4 * width_g, 2 * width_g, width_g)
    conv(g, "main.0", widths[0], z_dim, 2, bias=False, transposed=True)
    bn(g, "main.1", widths[0])
    for t, (c_in, c_out) in zip((3, 6, 9), zip(widths, widths[1:])):
        conv(g, f"main.{t}", c_out, c_in, 4, bias=False, transposed=True)
        bn(g, f"main.{t + 1}", c_out)
    conv(g, "main.12", 3, width_g, 4, bias=False, transposed=True)
    c_in = 3
    for i, (t, c_out) in enumerate(zip((0, 2, 5, 8), (width_d, 2 * width_d, 4 * width_d, 8 * width_d))):
        conv(d, f"main.{t}", c_out, c_in, 5, bias=False)
        if i:
            bn(d, f"main.{t + 2}", c_out)
        c_in = c_out
    linear(d, "linear", 1, 2 * 2 * 8 * width_d)
    return g, d


def ref_collections_dcgan32_g(g, z):
    x = F.conv_transpose2d(z[:, :, None, None], g["main.0.weight"])
    x = F.relu(f_bn(g, "main.1", x))
    for t in (3, 6, 9):
        x = F.relu(f_bn(g, f"main.{t + 1}", F.conv_transpose2d(x, g[f"main.{t}.weight"], stride=2, padding=1)))
    return torch.tanh(F.conv_transpose2d(x, g["main.12.weight"], stride=2, padding=1))


def ref_collections_dcgan32_d(d, x):
    x = F.leaky_relu(f_conv(d, "main.0", x, stride=2, padding=2), 0.2)
    for t in (2, 5, 8):
        x = f_bn(d, f"main.{t + 2}", F.leaky_relu(f_conv(d, f"main.{t}", x, stride=2, padding=2), 0.2))
    return f_linear(d, "linear", x.flatten(1))[:, 0]


def collections_res32(z_dim, ch_g, ch_d, sn):
    g, d = {}, {}
    linear(g, "linear", 16 * ch_g, z_dim)
    for i in range(3):
        bn(g, f"blocks.{i}.residual.0", ch_g)
        conv(g, f"blocks.{i}.residual.3", ch_g, ch_g, 3)
        bn(g, f"blocks.{i}.residual.4", ch_g)
        conv(g, f"blocks.{i}.residual.6", ch_g, ch_g, 3)
        conv(g, f"blocks.{i}.shortcut.1", ch_g, ch_g, 1)
    bn(g, "output.0", ch_g)
    conv(g, "output.2", 3, ch_g, 3)
    s = "torch" if sn else None
    conv(d, "model.0.shortcut.1", ch_d, 3, 1, sn=s)
    conv(d, "model.0.residual.0", ch_d, 3, 3, sn=s)
    conv(d, "model.0.residual.2", ch_d, ch_d, 3, sn=s)
    conv(d, "model.1.shortcut.0", ch_d, ch_d, 1, sn=s)
    for i in (1, 2, 3):
        conv(d, f"model.{i}.residual.1", ch_d, ch_d, 3, sn=s)
        conv(d, f"model.{i}.residual.3", ch_d, ch_d, 3, sn=s)
    linear(d, "linear", 1, ch_d, bias=not sn, sn=s)
    return g, d


def ref_resnet_g(g, z, names, up="nearest", eps=1e-5, y=None):
    """names: fc, block(i) -> prefix, norm1, conv1, norm2, conv2, skip, norm_out, conv_out; cond: (gain, shift)."""
    ch = g[f"{names['fc']}.weight"].shape[0] // 16
    h = F.linear(z, g[f"{names['fc']}.weight"], g[f"{names['fc']}.bias"]).view(len(z), ch, 4, 4)

    def norm(prefix, x):
        if y is None:
            return f_bn(g, prefix, x, eps)
        x = f_bn(g, f"{prefix}.bn", x, eps)
        return x * (1 + g[f"{prefix}.embed0.weight"][y])[..., None, None] + g[f"{prefix}.embed1.weight"][y][..., None, None]

    def upsample(x):
        return F.interpolate(x, scale_factor=2, mode=up, **({"align_corners": False} if up == "bilinear" else {}))

    for i in range(3):
        p = names["block"](i)
        r = f_conv(g, p + names["conv1"], upsample(F.relu(norm(p + names["norm1"], h))))
        r = f_conv(g, p + names["conv2"], F.relu(norm(p + names["norm2"], r)))
        h = r + f_conv(g, p + names["skip"], upsample(h))
    return torch.tanh(f_conv(g, names["conv_out"], F.relu(f_bn(g, names["norm_out"], h, eps))))


def ref_resnet_d(d, x, names, pooling="sum"):
    """names: block(i) -> prefix, conv1, conv2, skip, fc."""
    p = names["block"](0)
    h = F.avg_pool2d(f_conv(d, p + names["conv2"], F.relu(f_conv(d, p + names["conv1"], x))), 2)
    h = h + f_conv(d, p + names["skip"], F.avg_pool2d(x, 2))
    for i in (1, 2, 3):
        p = names["block"](i)
        r = f_conv(d, p + names["conv2"], F.relu(f_conv(d, p + names["conv1"], F.relu(h))))
        if i == 1:
            h = F.avg_pool2d(r, 2) + F.avg_pool2d(f_conv(d, p + names["skip"], h), 2)
        else:
            h = r + h
    h = F.relu(h)
    h = h.sum((2, 3)) if pooling == "sum" else h.mean((2, 3))
    return f_linear(d, names["fc"], h)[:, 0], h


COLLECTIONS_RES_G = {"fc": "linear", "block": lambda i: f"blocks.{i}.", "norm1": "residual.0",
                     "conv1": "residual.3", "norm2": "residual.4", "conv2": "residual.6", "skip": "shortcut.1",
                     "norm_out": "output.0", "conv_out": "output.2"}
COLLECTIONS_RES_D = {"block": lambda i: f"model.{i}.", "conv1": "residual.1", "conv2": "residual.3",
                     "skip": "shortcut.0", "fc": "linear"}


def ref_collections_res_d(d, x):
    # The first block names its layers differently (residual.0 / residual.2 / shortcut.1).
    first = {k.replace("model.0.residual.0.", "model.0.residual.1.").replace("model.0.residual.2.", "model.0.residual.3.")
             .replace("model.0.shortcut.1.", "model.0.shortcut.0."): v for k, v in d.items()}
    return ref_resnet_d(first, x, COLLECTIONS_RES_D)[0]


# ---- torch-mimicry ---------------------------------------------------------------------------

MIMICRY_G = {"fc": "l1", "block": lambda i: f"block{i + 2}.", "norm1": "b1", "conv1": "c1", "norm2": "b2",
             "conv2": "c2", "skip": "c_sc", "norm_out": "b5", "conv_out": "c5"}
MIMICRY_D = {"block": lambda i: f"block{i + 1}.", "conv1": "c1", "conv2": "c2", "skip": "c_sc", "fc": "l5"}


def mimicry_pair(nz, ngf, ndf, sn):
    g, d = {}, {}
    linear(g, "l1", 16 * ngf, nz)
    for b in (2, 3, 4):
        conv(g, f"block{b}.c1", ngf, ngf, 3)
        conv(g, f"block{b}.c2", ngf, ngf, 3)
        bn(g, f"block{b}.b1", ngf)
        bn(g, f"block{b}.b2", ngf)
        conv(g, f"block{b}.c_sc", ngf, ngf, 1)
    bn(g, "b5", ngf)
    conv(g, "c5", 3, ngf, 3)
    for b, c_in in ((1, 3), (2, ndf), (3, ndf), (4, ndf)):
        conv(d, f"block{b}.c1", ndf, c_in, 3, sn=sn)
        conv(d, f"block{b}.c2", ndf, ndf, 3, sn=sn)
        if b <= 2:
            conv(d, f"block{b}.c_sc", ndf, c_in, 1, sn=sn)
    linear(d, "l5", 1, ndf, sn=sn)
    return g, d


# ---- StudioGAN ---------------------------------------------------------------------------------

STUDIO_G = {"fc": "linear0", "block": lambda i: f"blocks.{i}.0.", "norm1": "bn1", "conv1": "conv2d1", "norm2": "bn2",
            "conv2": "conv2d2", "skip": "conv2d0", "norm_out": "bn4", "conv_out": "conv2d5"}
STUDIO_D = {"block": lambda i: f"blocks.{i}.0.", "conv1": "conv2d1", "conv2": "conv2d2", "skip": "conv2d0",
            "fc": "linear1"}


def studiogan_pair(z_dim, ch_g, ch_d, num_classes):
    g, d = {}, {}
    linear(g, "linear0", 16 * ch_g, z_dim)
    for i in range(3):
        p = f"blocks.{i}.0"
        for n in ("bn1", "bn2"):
            if num_classes:
                bn(g, f"{p}.{n}.bn", ch_g, affine=False)
                g[f"{p}.{n}.embed0.weight"] = rand(num_classes, ch_g, scale=0.1)
                g[f"{p}.{n}.embed1.weight"] = rand(num_classes, ch_g, scale=0.1)
            else:
                bn(g, f"{p}.{n}", ch_g)
        conv(g, f"{p}.conv2d0", ch_g, ch_g, 1)
        conv(g, f"{p}.conv2d1", ch_g, ch_g, 3)
        conv(g, f"{p}.conv2d2", ch_g, ch_g, 3)
    bn(g, "bn4", ch_g)
    conv(g, "conv2d5", 3, ch_g, 3)
    for i, c_in in enumerate((3, ch_d, ch_d, ch_d)):
        p = f"blocks.{i}.0"
        if i <= 1:
            conv(d, f"{p}.conv2d0", ch_d, c_in, 1, sn="torch")
        conv(d, f"{p}.conv2d1", ch_d, c_in, 3, sn="torch")
        conv(d, f"{p}.conv2d2", ch_d, ch_d, 3, sn="torch")
    linear(d, "linear1", 1, ch_d, sn="torch")
    if num_classes:  # projection discriminator: a spectrally normalised nn.Embedding
        d["embedding.weight_orig"] = rand(num_classes, ch_d, scale=0.3)
        d["embedding.weight_u"], d["embedding.weight_v"] = power_vectors(d["embedding.weight_orig"])
    return g, d


def ref_studiogan_d(d, x, y=None):
    out, h = ref_resnet_d(d, x, STUDIO_D)
    if y is not None:
        out = out + (weight(d, "embedding")[y] * h).sum(1)
    return out
