"""ddls's FlEx2MCMC beside the `ex2mcmc` package's `flex2mcmc` (Samsonov et al.'s own code), with both Ex2MCMCs,
on the same energies, from the same starting latents, at equal iterations (network evaluations counted).

    OMP_NUM_THREADS=1 python bench/flex2mcmc_side_by_side.py                 # tables, mean ± sd over seeds
    OMP_NUM_THREADS=1 python bench/flex2mcmc_side_by_side.py --json          # one JSON object instead
    OMP_NUM_THREADS=1 python bench/flex2mcmc_side_by_side.py --energies gaussian,far-gaussian

Needs `pip install ex2mcmc` (0.0.4). The energies, the evaluation counter, the scores and the two Ex2MCMC rows
are bench/ex2mcmc_side_by_side.py's (read its docstring: the package's `n_mala_steps = m` runs 2m - 1 MALA
steps per global move, so ddls runs 2m - 1 too; the package's step size is ddls's eps / 2). Rows:

  ddls ex2mcmc        ddls.posthoc.ex2mcmc.run_chains, the prior as proposal
  ddls flex2mcmc      ddls.posthoc.flex2mcmc.run_chunk: a RealNVP flow (--flow-layers couplings, --flow-hidden
                      units, ddls.posthoc.flows) as proposal, --flow-steps Adam steps (--flow-lr) on the forward
                      KL over the chains' latents after each of the first --adapt moves, then frozen; its
                      candidates from the flow alone unless --prior-share a > 0 (the mixture (1 - a) q + a p0)
  package ex2mcmc     ex2mcmc.samplers.ex2mcmc, the prior as proposal
  package flex2mcmc   ex2mcmc.samplers.flex2mcmc with ex2mcmc.models.rnvp_minimal.MinimalRNVP as proposal
                      (--flow-layers couplings: num_blocks = layers / 2, each block two couplings; --flow-hidden
                      units), its `optim` Adam at --flow-lr and its `scheduler` LambdaLR(it < --adapt), the
                      package's own way to stop training (it trains while the learning rate is > 0): one Adam
                      step, on its loss, after each of the first --adapt moves, then frozen. Its loss is
                      forward_kl_weight * (forward KL, the candidates weighted by their i-SIR weights) +
                      backward_kl_weight * (backward KL over the flow's candidates); here 1 and
                      --backward-kl-weight (0 by default: the forward KL alone, as ddls trains).

Evaluations: the wrapped energy counts the rows of every forward pass and of every backward pass through it.
Flow passes and Adam steps are not counted for either (they run the flow, not the energy). The package's loss
keeps the graph of the candidates' log-densities, so its loss.backward() runs a backward pass through the
energy for all N candidates of every chain at each training move, even with backward_kl_weight 0 (the zero
weight multiplies, it does not cut the graph): adapt * N more evaluations per chain than its Ex2MCMC, counted.
The package's MALA also reuses the gradient cached before each global move (as its ex2mcmc does; see
bench/ex2mcmc_side_by_side.py), and its flex2mcmc recomputes log p at the start.

Measures per row: the known answers of the energy (gaussian and far-gaussian: mean and variances; two-modes:
left-mode weight, mean, sd, EMD to exact draws; gmm25: EMD to the target and mode TV), `global_acceptance` (the
share of all global moves that chose a fresh candidate), `late_global_acceptance` (the same over the moves
after the first --adapt, every row: the flex rows' flows are frozen there), MALA `acceptance` (ddls: the mean
acceptance probability; the package: the accepted share), evaluations per chain, wall seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ex2mcmc_side_by_side as side  # noqa: E402  (puts the repository root on sys.path)

from ddls._torch import frozen, make_generator  # noqa: E402
from ddls.posthoc.flex2mcmc import FlEx2MCMCConfig, run_chunk  # noqa: E402

FAR_CENTER, FAR_SD = torch.tensor([4.0, 0.0]), 0.5


def run_ddls_flex(energy, z0, *, iterations, adapt, candidates, mala_steps, eps, seed, flow):
    config = FlEx2MCMCConfig(iterations=iterations, adapt=adapt, candidates=candidates, mala_steps=mala_steps,
                             eps=eps, flow_layers=flow["layers"], flow_hidden=flow["hidden"], flow_lr=flow["lr"],
                             flow_steps=flow["steps"], prior_share=flow["prior_share"], chunk_size=len(z0))
    out = run_chunk(energy, z0, config, generator=make_generator(seed))
    n = len(z0)
    return out.chains.state.position, {
        "global_acceptance": float(out.chains.moves.sum()) / (n * iterations),
        "late_global_acceptance": float(out.frozen_moves.sum()) / (n * (iterations - adapt)),
        "acceptance": float(out.chains.accept.sum()) / (n * iterations * mala_steps),
        "reported_evaluations": out.chains.evaluations}


def run_package_flex(energy, z0, *, iterations, adapt, candidates, mala_steps, eps, seed, flow):
    from ex2mcmc.models.rnvp_minimal import MinimalRNVP
    from ex2mcmc.samplers import flex2mcmc

    torch.manual_seed(seed)  # the package draws the flow's weights and its candidates from the global stream
    proposal = MinimalRNVP(z0.shape[1], "cpu", hidden=flow["hidden"], num_blocks=flow["layers"] // 2)
    proposal.optim = torch.optim.Adam(proposal.parameters(), lr=flow["lr"])
    proposal.scheduler = torch.optim.lr_scheduler.LambdaLR(proposal.optim, lambda it: float(it < adapt))
    chains, meta = flex2mcmc(z0.clone(), side.PackageTarget(energy), proposal, 1, iterations - 1,
                             n_particles=candidates, step_size=eps / 2, n_mala_steps=mala_steps,
                             forward_kl_weight=1.0, backward_kl_weight=flow["backward_kl_weight"])
    assert len(meta["forward_kl"]) == adapt, (len(meta["forward_kl"]), adapt)  # trained exactly `adapt` times
    return chains[-1].detach(), {"global_acceptance": statistics.fmean(meta["sir_accept"]),
                                 "late_global_acceptance": statistics.fmean(meta["sir_accept"][adapt:]),
                                 "acceptance": statistics.fmean(meta["mh_accept"])}


ROWS = (("ddls ex2mcmc", side.run_ddls), ("ddls flex2mcmc", run_ddls_flex),
        ("package ex2mcmc", side.run_package), ("package flex2mcmc", run_package_flex))


def compare(name, problem, *, n, iterations, adapt, candidates, package_mala, eps, seeds, flow):
    energy, modules, score, truth = problem
    rows = {}
    for seed in seeds:
        z0 = torch.randn(n, 2, generator=make_generator(10_000 + seed))
        for label, fn in ROWS:
            mala_steps = package_mala if label.startswith("package") else 2 * package_mala - 1
            kwargs = {"adapt": adapt, "flow": flow} if label.endswith("flex2mcmc") else {"late": iterations - adapt}
            counted = side.Counted(energy)
            with frozen(*modules):
                t0 = time.perf_counter()
                z, info = fn(counted, z0, iterations=iterations, candidates=candidates, mala_steps=mala_steps,
                             eps=eps, seed=seed, **kwargs)
                seconds = time.perf_counter() - t0
            if "reported_evaluations" in info:  # ddls's own count against the wrapper's
                assert info.pop("reported_evaluations") == counted.total, (label, counted.total)
            rows.setdefault(label, []).append({**score(z.detach()), **info, "evals_per_chain": counted.total / n,
                                               "seconds": seconds})
    settings = {"n": n, "iterations": iterations, "adapt": adapt, "candidates": candidates,
                "package_n_mala_steps": package_mala, "mala_steps_per_move": 2 * package_mala - 1, "eps": eps,
                "seeds": list(seeds), "flow": flow}
    return side.summarize(name, truth, settings, rows)


def problems(names, n, reference_draws):
    """(name, problem, eps) for each energy named: eps as bench/ex2mcmc_side_by_side.py uses."""
    make = {"gaussian": lambda: (side.gaussian_problem(n), 0.2),
            "far-gaussian": lambda: (side.gaussian_problem(n, FAR_CENTER, FAR_SD), 0.2),
            "two-modes": lambda: (side.two_modes_problem(n), 0.05),
            "gmm25": lambda: (side.gmm25_problem(n, reference_draws), 1e-3)}
    unknown = set(names) - set(make)
    if unknown:
        sys.exit(f"unknown energies {sorted(unknown)}; choose from {sorted(make)}")
    return [(name, *make[name]()) for name in names]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--energies", default="gaussian,two-modes,far-gaussian,gmm25",
                   help="comma-separated: gaussian, two-modes, far-gaussian (mean (4, 0), sd 0.5), gmm25")
    p.add_argument("--n", type=int, default=2000, help="chains")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=30, help="global moves per chain")
    p.add_argument("--adapt", type=int, default=15, help="first moves after which the flows are trained")
    p.add_argument("--candidates", type=int, default=10)
    p.add_argument("--package-mala-steps", type=int, default=2, help="the package's n_mala_steps (2m - 1 steps)")
    p.add_argument("--flow-layers", type=int, default=4, help="affine couplings of both flows (even)")
    p.add_argument("--flow-hidden", type=int, default=64, help="hidden units of the couplings' MLPs")
    p.add_argument("--flow-lr", type=float, default=0.01, help="Adam's step size on both flows")
    p.add_argument("--flow-steps", type=int, default=20, help="ddls: Adam steps per adaptation move")
    p.add_argument("--prior-share", type=float, default=0.0,
                   help="ddls: share of candidates from the prior (0: the flow alone, as the package proposes)")
    p.add_argument("--backward-kl-weight", type=float, default=0.0, help="the package's backward_kl_weight")
    p.add_argument("--reference-draws", type=int, default=4_000_000, help="prior draws for gmm25's target")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.flow_layers < 2 or a.flow_layers % 2:
        sys.exit("--flow-layers must be even: the package's MinimalRNVP stacks blocks of two couplings")
    if not 0 <= a.adapt < a.iterations:
        sys.exit("--adapt must be in [0, --iterations)")
    try:
        import ex2mcmc.models.rnvp_minimal  # noqa: F401  (imported before any timing)
        import ex2mcmc.samplers  # noqa: F401
    except ImportError:
        sys.exit("this comparison needs the package: pip install ex2mcmc")
    flow = {"layers": a.flow_layers, "hidden": a.flow_hidden, "lr": a.flow_lr, "steps": a.flow_steps,
            "backward_kl_weight": a.backward_kl_weight, "prior_share": a.prior_share}
    results = [compare(name, problem, n=a.n, iterations=a.iterations, adapt=a.adapt, candidates=a.candidates,
                       package_mala=a.package_mala_steps, eps=eps, seeds=range(a.seeds), flow=flow)
               for name, problem, eps in problems(a.energies.split(","), a.n, a.reference_draws)]
    if a.json:
        print(json.dumps({"torch": torch.__version__, "results": results}, indent=1))
    else:
        print("\n\n".join(side.table(r, spread=True) for r in results))


if __name__ == "__main__":
    main()
