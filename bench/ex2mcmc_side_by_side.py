"""ddls's Ex2MCMC beside the `ex2mcmc` package (Samsonov et al.'s own code) on the same energies, at equal
network evaluations.

    OMP_NUM_THREADS=1 python bench/ex2mcmc_side_by_side.py            # tables
    OMP_NUM_THREADS=1 python bench/ex2mcmc_side_by_side.py --json     # one JSON object instead

Needs `pip install ex2mcmc` (0.0.4: `ex2mcmc.samplers.ex2mcmc`). Rows, all from the same starting latents
(prior draws) and the same candidate count N:

  ddls ex2mcmc      ddls.posthoc.ex2mcmc.run_chains
  package ex2mcmc   ex2mcmc.samplers.ex2mcmc with the prior as proposal; its step_size s is ddls's eps / 2
                    (its move is z + s grad log p + sqrt(2 s) n). Its `n_mala_steps = m` runs 2m - 1 MALA
                    steps per global move (it calls its MALA with m samples after m - 1 burn-in), so ddls
                    runs 2m - 1 too.
  ddls mala         MALA alone (ddls.sampling.samplers.mala_step) for as many steps as fit the package's
                    evaluations.

Network evaluations are counted here, by wrapping the energy: each row of a forward pass counts one, each
row a backward pass reaches counts one (as ddls.posthoc counts them). Per global move the package scores
all N candidates (the current one again) and its MALA scores the current point once more; ddls scores only
the N - 1 fresh ones and takes a new gradient only where the chain moved, so at equal iterations ddls spends
at most what the package does, and the table shows both counts.

Energies:
  gaussian      E(z) = |z - (1, 0)|^2 / (2 0.5^2): known mean and variances;
  two-modes     E(z) = -log p(z), p = 0.2 N((-2, 0), 0.35^2 I) + 0.8 N((2, 0), 0.35^2 I): known answers
                (left weight 0.2, mean z1 1.2, sd z2 0.35) and EMD to 2,000 exact draws;
  gmm25         the shipped pretrained/gmm25_wgangp.pt, E(z) = -log p0(z) - d(G(z)): EMD to the data,
                modes and hq as `ddls eval` gives them; and against the energy itself: the 25 modes'
                weights under exp(-E) estimated by importance sampling from 4 x 10^6 prior draws (their total
                variation distance from the samples' mode weights, `mode_tv`) and EMD to 2,000 points
                resampled from those draws (`emd_target`).
Each cell is the mean over --seeds seeds (its spread: the JSON).

The package (0.0.4) reuses, for the first MALA step after a global move, the gradient of the point the
chain left (`meta["grad"]` survives the i-SIR step), so its chains do not keep exp(-E) exactly: on the
gaussian energy its variances come out above 0.25 by far more than their standard error, and they come
out right when that cached gradient is dropped before each MALA call.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddls._torch import frozen, make_generator  # noqa: E402
from ddls.metrics.emd import emd  # noqa: E402
from ddls.posthoc.ex2mcmc import Ex2MCMCConfig, run_chains  # noqa: E402
from ddls.sampling.energy import standard_normal_logpdf  # noqa: E402
from ddls.sampling.samplers import init, mala_step  # noqa: E402


class Counted:
    """An energy (B, D) -> (B,) that counts the rows of its forward passes and of the backward passes through it."""

    def __init__(self, energy):
        self.energy, self.forward, self.backward = energy, 0, 0

    def _back(self, grad):
        self.backward += len(grad)

    def __call__(self, z):
        self.forward += len(z)
        if z.requires_grad:
            z.register_hook(self._back)
        return self.energy(z)

    @property
    def total(self) -> int:
        return self.forward + self.backward


class PackageTarget:
    """The package's target: `log_prob` over (..., D) latents."""

    def __init__(self, energy: Counted):
        self.energy = energy

    def log_prob(self, z):
        flat = z.reshape(-1, z.shape[-1])
        return -self.energy(flat).reshape(z.shape[:-1])


def run_package(energy, z0, *, iterations, candidates, mala_steps, eps, seed, late=0):
    """`late` > 0 adds `late_global_acceptance`: the global acceptance over the last `late` moves."""
    from ex2mcmc.samplers import ex2mcmc

    torch.manual_seed(seed)  # the package draws from the global stream
    dim = z0.shape[1]
    prior = torch.distributions.MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    chains, meta = ex2mcmc(z0.clone(), PackageTarget(energy), prior, 1, iterations - 1, step_size=eps / 2,
                           n_particles=candidates, n_mala_steps=mala_steps)
    info = {"global_acceptance": float(np.mean(meta["sir_accept"])), "acceptance": float(np.mean(meta["mh_accept"]))}
    if late:
        info["late_global_acceptance"] = float(np.mean(meta["sir_accept"][-late:]))
    return chains[-1].detach(), info


def run_ddls(energy, z0, *, iterations, candidates, mala_steps, eps, seed, late=0):
    """`late` > 0 adds `late_global_acceptance`: the global acceptance over the last `late` moves."""
    config = Ex2MCMCConfig(iterations=iterations, candidates=candidates, mala_steps=mala_steps, eps=eps,
                           chunk_size=len(z0))
    late_moves = torch.zeros(len(z0), dtype=torch.long)

    def count_late(i, state, step_info):
        if i >= iterations - late:
            late_moves.add_(step_info.moved)

    out = run_chains(energy, z0, config, generator=make_generator(seed), hook=count_late if late else None)
    n = len(z0) * iterations
    info = {"global_acceptance": float(out.moves.sum()) / n, "acceptance": float(out.accept.sum()) / (n * mala_steps),
            "reported_evaluations": out.evaluations}
    if late:
        info["late_global_acceptance"] = float(late_moves.sum()) / (len(z0) * late)
    return out.state.position, info


def run_mala(energy, z0, *, steps, eps, seed):
    gen = make_generator(seed)
    with torch.no_grad():
        state = init(z0, energy)
        accept = 0.0
        for _ in range(steps):
            state, info = mala_step(state, energy, eps=eps, generator=gen)
            accept += float(info.accept_prob.mean())
    return state.position, {"acceptance": accept / max(steps, 1)}


# --- the energies and their scores ------------------------------------------------------------------

CENTER, SD = torch.tensor([1.0, 0.0]), 0.5


def gaussian_problem(n, center=CENTER, sd=SD):
    """N(center, sd^2 I); bench/flex2mcmc_side_by_side.py also uses one far from the prior, center (4, 0)."""
    def energy(z):
        return 0.5 * ((z - center) / sd).pow(2).sum(1)

    def score(z):
        x = z.numpy()
        return {"mean_z1": float(x[:, 0].mean()), "var_z1": float(x[:, 0].var()), "var_z2": float(x[:, 1].var())}

    return energy, (), score, {"mean_z1": float(center[0]), "var_z1": sd**2, "var_z2": sd**2}


MODES, WEIGHTS, MODE_SD = torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), torch.tensor([0.2, 0.8]), 0.35


def two_modes_energy(z):
    sq = (z[:, None, :] - MODES).pow(2).sum(2) / MODE_SD**2
    return -torch.logsumexp(WEIGHTS.log() - 0.5 * sq - math.log(2 * math.pi * MODE_SD**2), 1)


def two_modes_problem(n):
    gen = make_generator(4321)
    idx = torch.multinomial(WEIGHTS, n, replacement=True, generator=gen)
    exact = (MODES[idx] + MODE_SD * torch.randn(n, 2, generator=gen)).numpy()

    def score(z):
        x = z.numpy()
        left = x[:, 0] < 0
        return {"left_weight": float(left.mean()), "mean_z1": float(x[:, 0].mean()),
                "sd_z2": float(x[:, 1].std()), "emd_exact": emd(x, exact)}

    truth = {"left_weight": 0.2, "mean_z1": 1.2, "sd_z2": MODE_SD, "emd_exact": 0.0}
    return two_modes_energy, (), score, truth


def gmm25_problem(n, reference_draws):
    from ddls.data.toy2d import get_dataset
    from ddls.metrics.points2d import evaluate
    from ddls.sampling.run import load_energy

    _, energy = load_energy(str(ROOT / "pretrained" / "gmm25_wgangp.pt"), device="cpu")
    data = get_dataset("gmm25")
    means = data.means.numpy()
    gen = make_generator(98765)
    with torch.no_grad(), frozen(*energy.modules()):
        zs = torch.randn(reference_draws, energy.dim, generator=gen)
        log_w = torch.cat([-energy(part) - standard_normal_logpdf(part) for part in zs.split(100_000)])
        xs = torch.cat([energy.decode(part) for part in zs.split(100_000)]).numpy()
    w = torch.softmax(log_w.double(), 0)
    ess = float(1 / w.pow(2).sum())
    nearest = np.linalg.norm(xs[:, None] - means[None], axis=2).argmin(1)
    target_modes = np.bincount(nearest, weights=w.numpy(), minlength=len(means))
    ref = xs[torch.multinomial(w, n, replacement=True, generator=gen).numpy()]

    def score(z):
        with torch.no_grad():
            x = energy.decode(z).numpy()
        near = np.linalg.norm(x[:, None] - means[None], axis=2).argmin(1)
        share = np.bincount(near, minlength=len(means)) / len(x)
        return {**{k: v for k, v in evaluate(x, data).items()}, "emd_target": emd(x, ref),
                "mode_tv": float(0.5 * np.abs(share - target_modes).sum())}

    truth = {"importance_ess": round(ess), "largest_mode_weight": float(target_modes.max()),
             "smallest_mode_weight": float(target_modes.min())}
    return energy, energy.modules(), score, truth


# --- the comparison ----------------------------------------------------------------------------------

def compare(name, problem, *, n, iterations, candidates, package_mala, eps, seeds):
    energy, modules, score, truth = problem
    rows = {}
    for seed in seeds:
        z0 = torch.randn(n, 2, generator=make_generator(10_000 + seed))
        with frozen(*modules):
            runs = {}
            for label, fn in (("package ex2mcmc", run_package), ("ddls ex2mcmc", run_ddls)):
                counted = Counted(energy)
                t0 = time.perf_counter()
                z, info = fn(counted, z0, iterations=iterations, candidates=candidates,
                             mala_steps=package_mala if label.startswith("package") else 2 * package_mala - 1,
                             eps=eps, seed=seed)
                runs[label] = (z, info, counted.total, time.perf_counter() - t0)
            budget = runs["package ex2mcmc"][2]
            counted = Counted(energy)
            t0 = time.perf_counter()
            z, info = run_mala(counted, z0, steps=budget // (2 * n) - 1, eps=eps, seed=seed)
            runs["ddls mala"] = (z, info, counted.total, time.perf_counter() - t0)
        for label, (z, info, evals, seconds) in runs.items():
            if "reported_evaluations" in info:  # ddls's own count against the wrapper's
                assert info.pop("reported_evaluations") == evals, (label, evals)
            rows.setdefault(label, []).append({**score(z.detach()), **info, "evals_per_chain": evals / n,
                                               "seconds": seconds})
    return summarize(name, truth, {"n": n, "iterations": iterations, "candidates": candidates,
                                   "package_n_mala_steps": package_mala, "mala_steps_per_move": 2 * package_mala - 1,
                                   "eps": eps, "seeds": list(seeds)}, rows)


def summarize(name, truth, settings, rows) -> dict:
    """One energy's result: per row label, the mean and (population) sd over seeds of each measure, and the runs."""
    return {"energy": name, "truth": truth, "settings": settings,
            "rows": {label: {"mean": {k: statistics.fmean(r[k] for r in rs) for k in rs[0]},
                             "sd": {k: statistics.pstdev([r[k] for r in rs]) for k in rs[0]}, "runs": rs}
                     for label, rs in rows.items()}}


def table(result, spread: bool = False) -> str:
    """A markdown table of the means over seeds (with spread=True: mean ± sd)."""
    rows = result["rows"]
    keys = list(dict.fromkeys(k for r in rows.values() for k in r["mean"]))
    s = result["settings"]
    adapt = f" (the flow trained after the first {s['adapt']})" if "adapt" in s else ""
    lines = [f"## {result['energy']}: N = {s['candidates']}, {s['iterations']} global moves{adapt}, "
             f"{s['mala_steps_per_move']} MALA steps each, eps {s['eps']:g}, {s['n']} chains, seeds {s['seeds']}",
             f"truth: {json.dumps(result['truth'])}", "",
             "| sampler | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
    for label, r in rows.items():
        cells = ((f"{r['mean'][k]:.4g} ± {r['sd'][k]:.2g}" if spread else f"{r['mean'][k]:.4g}")
                 if k in r["mean"] else "-" for k in keys)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="chains")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", default="5,30", help="global moves per chain, a comma-separated list")
    p.add_argument("--candidates", type=int, default=10)
    p.add_argument("--package-mala-steps", type=int, default=2, help="the package's n_mala_steps")
    p.add_argument("--reference-draws", type=int, default=4_000_000, help="prior draws for gmm25's target")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        import ex2mcmc.samplers  # noqa: F401  (imported before any timing)
    except ImportError:
        sys.exit("this comparison needs the package: pip install ex2mcmc")
    seeds = range(a.seeds)
    problems = [("gaussian", gaussian_problem(a.n), 0.2), ("two-modes", two_modes_problem(a.n), 0.05),
                ("gmm25_wgangp.pt", gmm25_problem(a.n, a.reference_draws), 1e-3)]
    results = [compare(name, problem, n=a.n, iterations=int(it), candidates=a.candidates,
                       package_mala=a.package_mala_steps, eps=eps, seeds=seeds)
               for name, problem, eps in problems for it in a.iterations.split(",")]
    if a.json:
        print(json.dumps({"torch": torch.__version__, "results": results}, indent=1))
    else:
        print("\n\n".join(table(r) for r in results))


if __name__ == "__main__":
    main()
