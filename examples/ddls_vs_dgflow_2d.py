"""DDLS against DGflow on 2-D problems whose exact log density ratio is known.

    OMP_NUM_THREADS=1 python examples/ddls_vs_dgflow_2d.py              # every case, 3 seeds (< 3 min)
    OMP_NUM_THREADS=1 python examples/ddls_vs_dgflow_2d.py --case blobs --seeds 5

The generator is a fixed map with a density we can write down, and the discriminator returns
the exact d(x) = log p_data(x) - log p_g(x) (or a damaged copy of it: scaled by c, smoothed,
plus a smooth noise field). Both go through ddls.wrap, and the samplers through
ddls.posthoc.run, so the library's own code is what is measured. Cases:

- blobs: data = 3 overlapping Gaussians with weights 0.5/0.3/0.2; G(z) = m + S z (p_g Gaussian).
  Chains can cross between the modes, so DDLS can reach its exact target p_data.
- grid: data = 25 Gaussians (std 0.1) on {-4,-2,0,2,4}^2 with equal weights; G maps each latent
  coordinate through the quantile function of a 1-D mixture with the right means, too wide (std
  0.3) and the WRONG weights (0.05, 0.2, 0.5, 0.2, 0.05): it covers every mode, the centre one 100
  times more than the corners. Modes are separated by deep valleys: no chain crosses them.
- sparse: as grid, but the outer modes have weight 0.002 per coordinate: the generator almost
  misses the 16 outer modes (8% of its mass where the data has 64%).

Prints one markdown table per case: EMD (mean and 95% interval over seeds), modes covered,
high-quality % and the share of samples per mode group. docs/results.md ("DDLS against DGflow:
why, and what to run") quotes its output.

    OMP_NUM_THREADS=1 python examples/ddls_vs_dgflow_2d.py --moves pretrained/fmnist_sngan.pt

prints, for any checkpoint (an image GAN too), how far each setting moves the latents from their
prior draws and how much it raises the mean raw logit d(G(z)): the budget view of the study.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

import ddls
from ddls.data.toy2d import Toy2D
from ddls.metrics.points2d import evaluate
from ddls.posthoc import default_config, make_target, run
from ddls.posthoc.drs import DRSConfig

torch.set_num_threads(1)  # the quoted numbers were made single-threaded
LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------- densities we can write down
@dataclass(frozen=True)
class Mixture:
    """Isotropic Gaussian mixture in `dim` dimensions: weights (K,), means (K, dim), one std."""

    weights: tuple[float, ...]
    means: tuple[tuple[float, ...], ...]
    std: float

    def log_prob(self, x: Tensor, smooth: float = 0.0) -> Tensor:
        """log density at x (B, dim), of the mixture convolved with N(0, smooth^2 I) when smooth > 0."""
        mu = torch.tensor(self.means, dtype=x.dtype, device=x.device)
        var = self.std**2 + smooth**2
        logw = torch.log(torch.tensor(self.weights, dtype=x.dtype, device=x.device))
        sq = (x[:, None, :] - mu[None]).pow(2).sum(2)
        return torch.logsumexp(logw - 0.5 * sq / var - 0.5 * x.shape[1] * (LOG_2PI + math.log(var)), 1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        idx = torch.multinomial(torch.tensor(self.weights), n, replacement=True, generator=generator)
        mu = torch.tensor(self.means)
        return mu[idx] + self.std * torch.randn(n, mu.shape[1], generator=generator)


@dataclass(frozen=True)
class Product:
    """Density of a vector whose coordinates are independent draws of one 1-D mixture."""

    coord: Mixture
    dim: int = 2

    def log_prob(self, x: Tensor, smooth: float = 0.0) -> Tensor:
        return sum(self.coord.log_prob(x[:, i : i + 1], smooth) for i in range(self.dim))

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.cat([self.coord.sample(n, generator) for _ in range(self.dim)], 1)

    def means(self) -> Tensor:
        m = torch.tensor([c[0] for c in self.coord.means])
        return torch.cartesian_prod(m, m)


@dataclass(frozen=True)
class Gaussian:
    """N(m, S S^T) for a diagonal S: the pushforward of N(0, I) by the affine map z -> m + S z."""

    mean: tuple[float, float]
    scale: tuple[float, float]

    def log_prob(self, x: Tensor, smooth: float = 0.0) -> Tensor:
        m = torch.tensor(self.mean, dtype=x.dtype)
        var = torch.tensor(self.scale, dtype=x.dtype).pow(2) + smooth**2
        return (-0.5 * (x - m).pow(2) / var - 0.5 * (LOG_2PI + var.log())).sum(1)


# ---------------------------------------------------------------- generators
class Affine(nn.Module):
    def __init__(self, p: Gaussian):
        super().__init__()
        self.register_buffer("m", torch.tensor(p.mean))
        self.register_buffer("s", torch.tensor(p.scale))

    def forward(self, z: Tensor) -> Tensor:
        return self.m + self.s * z


def _cdf(mix: Mixture, x: Tensor) -> Tensor:
    mu = torch.tensor([c[0] for c in mix.means], dtype=x.dtype)
    w = torch.tensor(mix.weights, dtype=x.dtype)
    return (w * torch.special.ndtr((x[..., None] - mu) / mix.std)).sum(-1)


class _Quantile(torch.autograd.Function):
    """x = F^{-1}(Phi(z)) by bisection; dx/dz = phi(z) / q(x) (the inverse function rule)."""

    @staticmethod
    def forward(ctx, z: Tensor, mix: Mixture) -> Tensor:
        z64 = z.double().clamp(-8, 8)
        u = torch.special.ndtr(z64)
        lo, hi = torch.full_like(z64, -12.0), torch.full_like(z64, 12.0)
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            below = _cdf(mix, mid) < u
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        x = 0.5 * (lo + hi)
        log_q = mix.log_prob(x.reshape(-1, 1)).reshape(x.shape)
        ctx.save_for_backward(torch.exp(-0.5 * z64**2 - 0.5 * LOG_2PI - log_q))
        return x.to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (dxdz,) = ctx.saved_tensors
        return grad * dxdz.to(grad.dtype), None


class Quantile(nn.Module):
    """Each latent coordinate through the quantile function of `coord`: the pushforward of N(0, I) is Product."""

    def __init__(self, coord: Mixture):
        super().__init__()
        self.coord = coord
        self.register_buffer("anchor", torch.zeros(()))  # tells LatentEnergy the device

    def forward(self, z: Tensor) -> Tensor:
        return _Quantile.apply(z, self.coord)


# ---------------------------------------------------------------- discriminators: the exact log ratio, or damaged
class LogRatio(nn.Module):
    """d(x) = scale * (log p_data - log p_g)(x), both smoothed by N(0, smooth^2), plus a smooth noise field.

    The noise is a fixed random Fourier field of standard deviation `noise` and length scale `noise_length`.
    """

    def __init__(self, data, gen, *, scale: float = 1.0, smooth: float = 0.0, noise: float = 0.0,
                 noise_length: float = 0.5, features: int = 64, seed: int = 0):
        super().__init__()
        self.data, self.gen, self.scale, self.smooth, self.noise = data, gen, scale, smooth, noise
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(2, features, generator=g) / noise_length)
        self.register_buffer("b", 2 * math.pi * torch.rand(features, generator=g))

    def forward(self, x: Tensor) -> Tensor:
        d = self.scale * (self.data.log_prob(x, self.smooth) - self.gen.log_prob(x, self.smooth))
        if self.noise:
            d = d + self.noise * math.sqrt(2 / len(self.b)) * torch.cos(x @ self.w + self.b).sum(1)
        return d


# ---------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    name: str
    data: object
    gen: object
    generator: nn.Module
    dataset: Toy2D
    max_logit: float  # max of the exact d, for exact DRS
    groups: str  # what the share column counts: nearest blob, or ring of the grid (centre/inner/outer)

    def shares(self, x: np.ndarray) -> np.ndarray:
        """Share of samples in each group: nearest blob, or the grid's centre / inner ring / outer ring."""
        if self.groups == "blob":
            g = np.linalg.norm(x[:, None] - self.dataset.means.numpy()[None], axis=2).argmin(1)
        else:
            g = np.abs(np.round(x / 2)).max(1).clip(0, 2)
        return np.bincount(g.astype(int), minlength=3)[:3] / len(x)


def _max_logit(data, gen, lim: float) -> float:
    g = torch.linspace(-lim, lim, 801, dtype=torch.float64)
    x = torch.cartesian_prod(g, g)
    return float((data.log_prob(x) - gen.log_prob(x)).max())


def blobs() -> Case:
    data = Mixture((0.5, 0.3, 0.2), ((-1.2, 0.0), (1.2, 0.0), (0.0, 1.4)), 0.45)
    gen = Gaussian((0.0, 0.3), (1.5, 1.3))
    dataset = Toy2D("blobs", data.sample, torch.tensor(data.means), data.std)
    return Case("blobs", data, gen, Affine(gen), dataset, _max_logit(data, gen, 6), "blob")


GRID = ((-4.0,), (-2.0,), (0.0,), (2.0,), (4.0,))


def grid(outer: float = 0.05, inner: float = 0.2) -> Case:
    data = Product(Mixture((0.2,) * 5, GRID, 0.1))
    gen = Product(Mixture((outer, inner, 1 - 2 * outer - 2 * inner, inner, outer), GRID, 0.35))
    name = "grid" if outer >= 0.01 else "sparse"
    dataset = Toy2D(name, data.sample, data.means(), 0.1)
    return Case(name, data, gen, Quantile(gen.coord), dataset, _max_logit(data, gen, 6), "ring")


CASES = {"blobs": blobs, "grid": grid, "sparse": lambda: grid(outer=0.002, inner=0.2)}


# ---------------------------------------------------------------- methods
@dataclass(frozen=True)
class Row:
    label: str
    method: str  # generator, ddls, mala, dgflow, drs
    temperature: float = 1.0
    d: dict = field(default_factory=dict)  # LogRatio damage: scale, smooth, noise
    steps: int = 0
    eps: float = 0.01
    noise_scale: float = 1.0
    dgflow: dict = field(default_factory=dict)  # dgflow_steps, dgflow_eta, dgflow_gamma


def ddls_row(label, steps, eps=0.01, **kw) -> Row:
    return Row(label, kw.pop("method", "ddls"), steps=steps, eps=eps, **kw)


def dgflow_row(label, steps=25, eta=0.1, gamma=0.01, **kw) -> Row:
    return Row(label, "dgflow", dgflow=dict(dgflow_steps=steps, dgflow_eta=eta, dgflow_gamma=gamma), **kw)


def exact_rows() -> list[Row]:
    return [
        Row("generator alone", "generator"),
        ddls_row("DDLS T=1, eps 0.01, 100 steps", 100),
        ddls_row("DDLS T=1, eps 0.01, 1000 steps", 1000),
        ddls_row("DDLS T=1, eps 0.003, 1000 steps", 1000, eps=0.003),
        ddls_row("DDLS T=1, eps 0.03, 1000 steps", 1000, eps=0.03),
        ddls_row("MALA T=1, eps 0.03, 1000 steps", 1000, eps=0.03, method="mala"),
        ddls_row("DDLS T=0.3, eps 0.01, 100 steps", 100, temperature=0.3),
        ddls_row("DDLS T=0.3, eps 0.01, 1000 steps", 1000, temperature=0.3),
        ddls_row("DDLS T=0.2, eps 0.01, 100 steps (DGflow's drift)", 100, temperature=0.2),
        ddls_row("DDLS noise 0.1, eps 0.01, 100 steps", 100, noise_scale=0.1),
        ddls_row("DDLS T=0.01, eps 0.002, 25 steps (= DGflow)", 25, eps=0.002, temperature=0.01),
        dgflow_row("DGflow defaults (25 steps, eta 0.1, gamma 0.01)"),
        dgflow_row("DGflow 100 steps", steps=100),
        dgflow_row("DGflow 25 steps, gamma 0.1", gamma=0.1),
        dgflow_row("DGflow 400 steps, gamma 1 (no prior: wrong target)", steps=400, gamma=1.0),
    ]


def damaged_rows() -> list[Row]:
    rows = []
    for c in (0.1, 0.3, 3.0):
        d = {"scale": c}
        rows += [ddls_row(f"d x {c:g}: DDLS T=1, 100 steps", 100, d=d),
                 ddls_row(f"d x {c:g}: DDLS T=1, 1000 steps", 1000, d=d),
                 ddls_row(f"d x {c:g}: DDLS T={c:g}, 1000 steps", 1000, temperature=c, d=d),
                 dgflow_row(f"d x {c:g}: DGflow defaults", d=d)]
    for tag, d in (("smoothed (h 0.5)", {"smooth": 0.5}), ("plus noise (sd 0.5)", {"noise": 0.5})):
        rows += [ddls_row(f"d {tag}: DDLS T=1, 1000 steps", 1000, d=d),
                 ddls_row(f"d {tag}: DDLS T=0.3, 100 steps", 100, temperature=0.3, d=d),
                 dgflow_row(f"d {tag}: DGflow defaults", d=d)]
    return rows


def grid_rows() -> list[Row]:
    return [
        Row("generator alone", "generator"),
        ddls_row("DDLS T=1, eps 0.001, 1000 steps", 1000, eps=0.001),
        ddls_row("DDLS T=1, eps 0.01, 100 steps", 100),
        ddls_row("DDLS T=1, eps 0.01, 1000 steps", 1000),
        ddls_row("MALA T=1, eps 0.003, 1000 steps", 1000, eps=0.003, method="mala"),
        ddls_row("DDLS T=0.3, eps 0.003, 100 steps", 100, eps=0.003, temperature=0.3),
        ddls_row("DDLS noise 0.1, eps 0.01, 100 steps", 100, noise_scale=0.1),
        dgflow_row("DGflow defaults"),
        dgflow_row("DGflow eta 0.01", eta=0.01),
        Row("exact DRS (reweights whole samples)", "drs"),
    ]


def sparse_rows() -> list[Row]:
    keep = ("generator alone", "DDLS T=1, eps 0.001, 1000 steps", "DDLS T=1, eps 0.01, 100 steps", "DGflow defaults",
            "DGflow eta 0.01", "exact DRS (reweights whole samples)")
    return [r for r in grid_rows() if r.label in keep]


ROWS = {"blobs": lambda: exact_rows() + damaged_rows(), "grid": grid_rows, "sparse": sparse_rows}


def draw(case: Case, row: Row, n: int, seed: int) -> np.ndarray:
    """n samples of `row` on `case`, through ddls.wrap and ddls.posthoc.run."""
    model = ddls.wrap(case.generator, LogRatio(case.data, case.gen, **row.d), latent_shape=2, kind="gan")
    target = make_target(model.energy(temperature=row.temperature), "raw")
    if row.method == "drs":
        config = DRSConfig(gamma_percentile=None, max_logit=case.max_logit, batch_size=n,
                           max_proposals_per_sample=300)
    elif row.method == "dgflow":
        config = default_config("dgflow", **row.dgflow)
    else:
        config = default_config(row.method, steps=row.steps, eps=row.eps, noise_scale=row.noise_scale)
    return run(row.method, target, n, config, seed=seed).samples.numpy()


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t interval."""
    v = np.asarray(values)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 8: 2.36, 10: 2.26}.get(len(v), 2.0)
    return float(v.mean()), float(t95 * v.std(ddof=1) / math.sqrt(len(v)))


def data_floor(case: Case, n: int, seeds: list[int]) -> list[float]:
    """EMD of fresh data draws: what a perfect sampler scores at this n."""
    return [evaluate(case.dataset.sample(n, torch.Generator().manual_seed(10_000 + s)).numpy(), case.dataset)["emd"]
            for s in seeds]


SHARES = {"blob": "share per blob %", "ring": "share centre/inner/outer %"}


def run_case(name: str, n: int, seeds: list[int]) -> None:
    case = CASES[name]()
    print(f"\n### {name}: n = {n}, seeds {seeds[0]}..{seeds[-1]}\n")
    print(f"| sampler | EMD | modes | high quality % | {SHARES[case.groups]} |\n| --- | --- | --- | --- | --- |")
    m, h = interval(data_floor(case, n, seeds))
    data = case.shares(case.dataset.sample(100_000, torch.Generator().manual_seed(0)).numpy())
    print(f"| data itself (the floor) | {m:.3f} ± {h:.3f} | | | {_shares(data)} |", flush=True)
    for row in ROWS[name]():
        try:
            samples = [draw(case, row, n, s) for s in seeds]
        except ddls.DDLSError as exc:  # exact DRS gives up when p_g nearly misses where p_data is
            print(f"| {row.label} | gave up: {str(exc).split(';')[0]} | | | |", flush=True)
            continue
        scores = [evaluate(x, case.dataset) for x in samples]
        m, h = interval([s["emd"] for s in scores])
        emd = f"{m:.3f} ± {h:.3f}" if m < 100 else "diverged (EMD > 100)"
        modes = np.mean([s["modes"] for s in scores])
        hq = np.mean([s["hq"] for s in scores])
        shares = np.mean([case.shares(x) for x in samples], 0)
        print(f"| {row.label} | {emd} | {modes:.1f} | {hq:.1f} | {_shares(shares)} |", flush=True)


def _shares(s: np.ndarray) -> str:
    return "/".join(f"{100 * v:.0f}" for v in s)


# DDLS settings in the (eps, T, steps) plane, and DGflow's defaults. DGflow (KL) is the DDLS step at
# eps = 2 eta gamma, T = gamma without the prior's pull: (0.002, 0.01, 25).
MOVES = [("generator alone", "generator", 1.0, 0.0, 0),
         ("DDLS T=1, eps 0.01, 100 steps", "ddls", 1.0, 0.01, 100),
         ("DDLS T=0.3, eps 0.01, 100 steps", "ddls", 0.3, 0.01, 100),
         ("DDLS T=0.2, eps 0.01, 100 steps", "ddls", 0.2, 0.01, 100),
         ("DDLS T=0.1, eps 0.01, 100 steps", "ddls", 0.1, 0.01, 100),
         ("DDLS noise 0.1, eps 0.01, 100 steps", "noise", 1.0, 0.01, 100),
         ("DDLS T=0.04, eps 0.002, 100 steps", "ddls", 0.04, 0.002, 100),
         ("DDLS T=0.01, eps 0.002, 25 steps", "ddls", 0.01, 0.002, 25),
         ("DGflow defaults", "dgflow", 1.0, 0.0, 25)]


def moves(ckpt: str, n: int = 64) -> None:
    """How far each setting moves the latents and how much it raises the mean raw logit, on one checkpoint."""
    model = ddls.load_any(ckpt, device="cpu")
    logit = make_target(model.energy(), "raw")
    start = run("generator", logit, n, default_config("generator"), seed=0).latents
    print(f"\n{ckpt}, {n} chains, latent size {start.shape[1]}, mean |z0| {start.norm(dim=1).mean():.2f}\n")
    print("| setting | drift eps*steps/(2T) | diffusion eps*steps | latent moved | mean norm of z | mean d |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, method, temperature, eps, steps in MOVES:
        target = make_target(model.energy(temperature=temperature), "raw")
        if method == "dgflow":
            config, drift, diffusion = default_config("dgflow"), 0.1 * steps, 2 * 0.1 * 0.01 * steps
        else:
            config = default_config("generator" if method == "generator" else "ddls", steps=steps, eps=max(eps, 1e-9),
                                    noise_scale=0.1 if method == "noise" else 1.0)
            drift, diffusion = eps * steps / (2 * temperature), eps * steps * (0.01 if method == "noise" else 1)
        z = run("ddls" if method == "noise" else method, target, n, config, seed=0).latents
        with torch.no_grad():
            d = float(logit(z).mean())
        print(f"| {label} | {drift:.2f} | {diffusion:.2f} | {float((z - start).norm(dim=1).mean()):.2f} | "
              f"{float(z.norm(dim=1).mean()):.2f} | {d:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--n", type=int, default=1000, help="samples per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..k-1 per row")
    parser.add_argument("--moves", metavar="CKPT", default=None,
                        help="instead: latent moves and logit gains of each setting on this checkpoint")
    args = parser.parse_args()
    start = time.time()
    if args.moves:
        moves(args.moves)
    else:
        for name in CASES if args.case == "all" else [args.case]:
            run_case(name, args.n, list(range(args.seeds)))
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
