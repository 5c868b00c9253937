"""How close DDLS's Langevin step comes to the cost of the networks, against two common loops.

    python bench/langevin.py                 # table last
    python bench/langevin.py --json          # one JSON object on stdout instead

For each model, on one batch of latents, in one process, with the methods interleaved
(repetition r times every method before repetition r + 1 starts, so load on the machine
hits all of them alike), it times per step:

  bare       one forward of G and D and the backward to z only (parameters frozen): the floor
  ddls-ula   ddls.sampling.driver.run_chain with the ULA kernel (the loop `ddls sample` runs)
  ddls-mala  the same with MALA
  studiogan  the loop StudioGAN ships (src/utils/sample.py::langevin_sampling), rewritten
             here from its description: a MultivariateNormal prior with a full covariance
             matrix, the gradient by autograd.grad(create_graph=True, retain_graph=True),
             noise from a second MultivariateNormal (which draws from the global RNG)
  naive      energy.sum().backward() with the parameters still requiring grad, and
             .item() of the mean energy logged every step

and prints, from the fastest repetition of each (load on a shared machine only slows a run;
the JSON has the medians too), step/bare, studiogan/ddls and naive/ddls, samples x steps per second and the
peak memory of a short run of each method (CPU: peak resident memory of a fresh process per
method during 3 steps, above what it held before them (Linux /proc); CUDA: torch.cuda.max_memory_allocated).
Last, `ddls sample` with N = 2,000 and N = 50,000 at the same chunk size, each in a fresh
process, compares peak resident memory (the output streams to disk chunk by chunk).

Fast paths (`--paths`, default: on CUDA every path of ddls.sampling.autofast that applies, on
the CPU plain, bf16 and compile): the ULA chain on each path of ddls.sampling.fastpath, per
step from (T(2k) - T(k)) / k so that compiling and graph capture drop out, as sample-steps/s
(chains x steps / seconds) and as a share of the device's peak: FLOPs per sample-step are
counted by torch's FlopCounterMode on the bare forward and backward, the peak is a measured
square matmul (CUDA: bf16; CPU: float32 and bf16, the larger taken).

Models: every --ckpt given (any checkpoint ddls.formats.load_any reads); the shipped
Fashion-MNIST models in pretrained/ when present, otherwise a DCGAN pair of the same size
with made-up weights (labelled so); and an SNGAN-size CIFAR-10 ResNet pair with made-up
weights (ddls.models resnet32_g/resnet32_d: z 128, G 256 channels, D 128 channels).
Made-up weights time the same arithmetic as trained ones.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddls._torch import frozen, make_generator  # noqa: E402
from ddls.sampling.driver import ChainProgress, run_chain  # noqa: E402
from ddls.sampling.energy import LatentEnergy  # noqa: E402
from ddls.sampling.samplers import make_sampler  # noqa: E402
from ddls.sampling.fastpath import FastPath, prepare  # noqa: E402

SHIPPED_FMNIST = ["fmnist_sngan.pt", "fmnist_wgangp.pt", "fmnist_ebgan.pt"]
METHODS = ["bare", "ddls-ula", "ddls-mala", "studiogan", "naive"]
EPS = 1e-3  # small enough that no chain diverges in a few steps; the cost does not depend on it


# --- made-up-weights models -------------------------------------------------------------------

class StandInG(nn.Module):
    """A DCGAN generator for 1x28x28 images, 32 channels at full size (the shipped models' size)."""

    def __init__(self, z_dim: int = 64, width: int = 32):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(z_dim, 4 * width * 7 * 7)
        self.main = nn.Sequential(
            nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 1, 3, 1, 1), nn.Tanh())

    def forward(self, z):
        return self.main(self.fc(z).view(z.shape[0], 4 * self.width, 7, 7))


class StandInD(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1), nn.LeakyReLU(0.2))
        self.fc = nn.Linear(4 * width * 4 * 4, 1)

    def forward(self, x):
        return self.fc(self.main(x).flatten(1))


def build_model(name: str, device: torch.device) -> tuple[str, LatentEnergy]:
    """(label, energy) for a model name: a checkpoint path, 'fmnist-standin' or 'cifar-sngan'."""
    torch.manual_seed(0)  # made-up weights: the same every run
    if name == "fmnist-standin":
        return ("fmnist DCGAN-32 (made-up weights)",
                LatentEnergy(StandInG().to(device), StandInD().to(device), 64))
    if name == "cifar-sngan":
        from ddls.models import build

        g = build({"arch": "resnet32_g", "z_dim": 128, "channels": 256}).to(device)
        d = build({"arch": "resnet32_d", "channels": 128}).to(device)
        return "cifar SNGAN ResNet (made-up weights)", LatentEnergy(g, d, 128)
    from ddls.formats import load_any

    return Path(name).name, load_any(name, device=device).energy()


def default_models(ckpts: list[str], cifar: bool, fmnist: bool = True) -> list[str]:
    names = list(ckpts)
    if not fmnist:
        return names + (["cifar-sngan"] if cifar else [])
    shipped = [str(ROOT / "pretrained" / f) for f in SHIPPED_FMNIST if (ROOT / "pretrained" / f).exists()]
    if not any("fmnist" in Path(c).name for c in names):
        names += shipped[:1] or ["fmnist-standin"]
    if cifar:
        names.append("cifar-sngan")
    return names


# --- the loops timed ----------------------------------------------------------------------------

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Times only the step loop of a method (its setup stays out), waiting for the GPU at both ends."""

    def __init__(self, device):
        self.device, self.seconds = device, 0.0

    def __enter__(self):
        _sync(self.device)
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        _sync(self.device)
        self.seconds = time.perf_counter() - self.t0


def bare(energy: LatentEnergy, z0, steps, gen, clock):
    g, d = energy.generator, energy.discriminator
    with frozen(g, d), clock:
        for _ in range(steps):
            z = z0.detach().requires_grad_(True)
            out = d(g(z.view(-1, *energy.latent_shape)))
            torch.autograd.grad(out.sum(), z)


def ddls_loop(method):
    def run(energy: LatentEnergy, z0, steps, gen, clock):
        sampler = make_sampler(method, EPS)
        with frozen(*energy.modules()):
            # The chain's first evaluation (init) is not a step: start run_chain from the initial state.
            state = sampler.init(z0, energy)
            start = ChainProgress(0, state, torch.zeros_like(state.energy),
                                  torch.full(state.energy.shape, -1, dtype=torch.long, device=z0.device), [],
                                  gen.get_state(), state)
            with clock:
                run_chain(sampler, energy, z0, steps=steps, generator=gen, start=start)
    return run


def studiogan(energy: LatentEnergy, z0, steps, gen, clock):
    from torch.distributions import MultivariateNormal

    dim = z0.shape[1]
    mean = torch.zeros(dim, device=z0.device)
    cov = torch.eye(dim, device=z0.device)
    prior = MultivariateNormal(loc=mean, covariance_matrix=cov)
    noise = MultivariateNormal(loc=mean, covariance_matrix=cov * 1.0)
    g, d = energy.generator, energy.discriminator
    zs = z0
    with frozen(g, d), clock:
        for _ in range(steps):
            zs = zs.detach().requires_grad_(True)
            e = -prior.log_prob(zs) - d(g(zs.view(-1, *energy.latent_shape))).view(-1)
            (grad,) = torch.autograd.grad(e, zs, grad_outputs=torch.ones_like(e), create_graph=True,
                                          retain_graph=True)
            zs = zs - 0.5 * EPS * grad + EPS**0.5 * noise.sample([zs.shape[0]])


def naive(energy: LatentEnergy, z0, steps, gen, clock):
    g, d = energy.generator, energy.discriminator
    g.eval(), d.eval()
    log = []
    z = z0.clone().requires_grad_(True)
    with clock:
        for _ in range(steps):
            e = energy(z)
            e.sum().backward()
            with torch.no_grad():
                z -= 0.5 * EPS * z.grad
                z += EPS**0.5 * torch.randn(z.shape, generator=gen, device=z.device)
            z.grad = None
            log.append(e.mean().item())
    for p in (*g.parameters(), *d.parameters()):
        p.grad = None


LOOPS = {"bare": bare, "ddls-ula": ddls_loop("ula"), "ddls-mala": ddls_loop("mala"), "studiogan": studiogan,
         "naive": naive}


def time_methods(energy: LatentEnergy, batch: int, steps: int, warmup: int, reps: int,
                 device: torch.device) -> dict[str, list[float]]:
    """Seconds per step of each method, `reps` interleaved repetitions of `steps` steps."""
    z0 = torch.randn(batch, energy.dim, generator=make_generator(1, device), device=device)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for m in METHODS:
        LOOPS[m](energy, z0, warmup, make_generator(2, device), Clock(device))
    for r in range(reps):
        order = METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]
        for m in order:
            clock = Clock(device)
            LOOPS[m](energy, z0, steps, make_generator(2, device), clock)
            times[m].append(clock.seconds / steps)
    return times


# --- fast paths ---------------------------------------------------------------------------------

def parse_path(name: str) -> FastPath:
    """'plain' or switches joined by '+': compile, cuda_graphs, bf16, fp16, channels_last."""
    if name == "plain":
        return FastPath()
    parts = set(name.split("+"))
    unknown = parts - {"compile", "cuda_graphs", "bf16", "fp16", "channels_last"}
    if unknown:
        raise SystemExit(f"unknown fast-path switch(es) {sorted(unknown)} in {name!r}")
    return FastPath(compile="compile" in parts, cuda_graphs="cuda_graphs" in parts, channels_last="channels_last" in parts,
                    autocast="bf16" if "bf16" in parts else "fp16" if "fp16" in parts else None)


def default_paths(energy: LatentEnergy) -> list[str]:
    if energy.device.type == "cuda":
        from ddls.sampling.autofast import PATHS

        return [name for name, spec in PATHS.items() if spec.applies(energy)]
    return ["plain", "bf16", "compile"]


def flops_per_sample_step(energy: LatentEnergy, batch: int = 8) -> float:
    """FLOPs of one bare forward and backward to z, per chain (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    z0 = torch.randn(batch, energy.dim, device=energy.device)
    g, d = energy.generator, energy.discriminator
    with frozen(g, d), FlopCounterMode(display=False) as counter:
        z = z0.requires_grad_(True)
        out = d(g(z.view(-1, *energy.latent_shape)))
        torch.autograd.grad(out.sum(), z)
    return counter.get_total_flops() / batch


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int | None = None, reps: int = 10) -> float:
    """FLOP/s of the fastest of `reps` square matmuls of `dtype` on `device`."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def device_peaks(device: torch.device) -> dict[str, float]:
    if device.type == "cuda":
        return {"bf16": matmul_peak(device, torch.bfloat16)}
    return {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}


def time_paths(energy: LatentEnergy, names: list[str], batch: int, steps: int, reps: int,
               device: torch.device) -> dict[str, dict]:
    """Per path: fastest seconds per step of `reps` probes, or the error that kept it from running."""
    from ddls.sampling.autofast import wall_measure

    z0 = torch.randn(batch, energy.dim, generator=make_generator(1, device), device=device)
    sampler = make_sampler("ula", EPS)
    measure = wall_measure(device, steps)
    out = {}
    with frozen(*energy.modules()):
        for name in names:
            try:
                chain_energy = prepare(energy, parse_path(name))

                def run(k, chain_energy=chain_energy):
                    run_chain(sampler, chain_energy, z0, steps=k, generator=make_generator(2, device),
                              check_every=max(k, 1))
                out[name] = {"seconds_per_step": min(measure(name, run) for _ in range(reps))}
            except Exception as exc:  # noqa: BLE001 - the table says which path could not run
                out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    return out


def paths_table(rows: list[dict], peaks: dict[str, float]) -> str:
    shares = " | ".join(f"share of {k} peak" for k in peaks)
    lines = [f"peak (measured matmul): " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items()),
             f"| model | batch | path | ms/step | sample-steps/s | {shares} |", "|---|---|---|---|---|" + "---|" * len(peaks)]
    for r in rows:
        for name, t in r["paths"].items():
            if "error" in t:
                lines.append(f"| {r['model']} | {r['batch']} | {name} | - | - | {t['error']} |")
                continue
            rate = r["batch"] / t["seconds_per_step"]
            share = " | ".join(f"{100 * rate * r['flops_per_sample_step'] / p:.1f}%" for p in peaks.values())
            lines.append(f"| {r['model']} | {r['batch']} | {name} | {1e3 * t['seconds_per_step']:.1f} | {rate:,.0f} | "
                         f"{share} |")
    return "\n".join(lines)


# --- memory ---------------------------------------------------------------------------------------

def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise SystemExit(f"/proc/self/status has no {field}")


def memory_probe(model: str, method: str, batch: int, steps: int, device: torch.device) -> float:
    """MiB of memory a short run of `method` needs above what the process held before it."""
    _, energy = build_model(model, device)
    z0 = torch.randn(batch, energy.dim, generator=make_generator(1, device), device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        LOOPS[method](energy, z0, steps, make_generator(2, device), Clock(device))
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    with open("/proc/self/clear_refs", "w") as fh:  # resets the peak (VmHWM) to what is resident now
        fh.write("5")
    before = _status_mib("VmRSS")
    LOOPS[method](energy, z0, steps, make_generator(2, device), Clock(device))
    return _status_mib("VmHWM") - before


def memory_of(model: str, batch: int, device: torch.device, steps: int = 3) -> dict[str, float]:
    """One fresh process per method, so no method's peak hides another's."""
    out = {}
    for m in METHODS:
        r = subprocess.run([sys.executable, __file__, "--memory-probe", model, m, "--batch", str(batch),
                            "--device", str(device)], capture_output=True, text=True, env=_child_env())
        if r.returncode != 0:
            raise SystemExit(f"memory probe {model}/{m} failed:\n{r.stderr[-2000:]}")
        out[m] = float(r.stdout.strip().splitlines()[-1])
    return out


def _child_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def rss_scaling(ns: list[int], chunk: int, steps: int) -> dict[str, float]:
    """Peak RSS (MiB) of `ddls sample` for each N, each in a fresh process, on a tiny 784-pixel model."""
    from ddls.io.checkpoint import save_ddls
    from ddls.models import build

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "tiny784.pt"
        g_spec = {"arch": "mlp_g", "z_dim": 8, "out_dim": 784, "hidden": 32, "depth": 1}
        d_spec = {"arch": "mlp_d", "in_dim": 784, "hidden": 32, "depth": 1}
        torch.manual_seed(0)
        save_ddls(ckpt, g=build(g_spec), d=build(d_spec), g_spec=g_spec, d_spec=d_spec, latent_shape=(8,),
                  energy_kind="gan", config_json="{}", step=0)
        out = {}
        for n in ns:
            p = subprocess.Popen([sys.executable, "-m", "ddls", "sample", "--ckpt", str(ckpt), "-n", str(n),
                                  "--chunk-size", str(chunk), "--steps", str(steps), "--eps", "0.01",
                                  "--checkpoint-every", "0", "--device", "cpu", "--out", f"{tmp}/s{n}.npz"],
                                 env={**_child_env(), "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                raise SystemExit(f"ddls sample -n {n} failed:\n{p.stderr.read()[-2000:]}")
            out[str(n)] = usage.ru_maxrss / 1024
            Path(f"{tmp}/s{n}.npz").unlink()
        return out


# --- report ------------------------------------------------------------------------------------------

def summarise(label: str, batch: int, times: dict[str, list[float]], memory: dict[str, float] | None) -> dict:
    # The fastest repetition: load from other processes on a shared machine only ever slows a run.
    med = {m: min(t) for m, t in times.items()}
    return {
        "model": label, "batch": batch,
        "seconds_per_step": med,
        "median_seconds_per_step": {m: statistics.median(t) for m, t in times.items()},
        "samples_steps_per_second": {m: batch / s for m, s in med.items()},
        "peak_memory_mib": memory,
        "step_over_bare": med["ddls-ula"] / med["bare"],
        "mala_over_bare": med["ddls-mala"] / med["bare"],
        "studiogan_over_ddls": med["studiogan"] / med["ddls-ula"],
        "naive_over_ddls": med["naive"] / med["ddls-ula"],
        "spread": {m: (min(t), max(t)) for m, t in times.items()},
    }


def table(rows: list[dict]) -> str:
    lines = ["| model | batch | method | ms/step | samples x steps/s | peak MiB | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = {"ddls-ula": f"step/bare {r['step_over_bare']:.2f}", "ddls-mala": f"step/bare {r['mala_over_bare']:.2f}",
                 "studiogan": f"studiogan/ddls {r['studiogan_over_ddls']:.2f}",
                 "naive": f"naive/ddls {r['naive_over_ddls']:.2f}"}
        for m in METHODS:
            mem = "-" if r["peak_memory_mib"] is None else f"{r['peak_memory_mib'][m]:.0f}"
            lines.append(f"| {r['model']} | {r['batch']} | {m} | {1e3 * r['seconds_per_step'][m]:.1f} | "
                         f"{r['samples_steps_per_second'][m]:.0f} | {mem} | {ratio.get(m, '')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", action="append", default=[], help="A checkpoint to time (repeatable).")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256, help="Batch for the Fashion-MNIST-size models.")
    ap.add_argument("--cifar-batch", type=int, default=None, help="Batch for the CIFAR model (CPU 16, CUDA 256).")
    ap.add_argument("--steps", type=int, default=10, help="Timed steps per repetition.")
    ap.add_argument("--cifar-steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    ap.add_argument("--no-cifar", action="store_true")
    ap.add_argument("--no-fmnist", action="store_true", help="Time only the --ckpt models (and CIFAR unless --no-cifar).")
    ap.add_argument("--no-memory", action="store_true", help="Skip the per-method memory probes.")
    ap.add_argument("--rss-n", type=int, nargs="*", default=[2000, 50000], help="N values of the RSS scaling run.")
    ap.add_argument("--rss-chunk", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--paths", default=None,
                    help="Comma-separated fast paths to time (plain, bf16, compile, cuda_graphs+bf16, ...); "
                         "'none' skips them (default: those auto chooses among; on the CPU plain,bf16,compile).")
    ap.add_argument("--paths-only", action="store_true", help="Time the fast paths only (no method comparison, "
                                                               "no memory runs).")
    ap.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.memory_probe:
        print(memory_probe(*args.memory_probe, args.batch, 3, device))
        return
    cifar_batch = args.cifar_batch or (256 if device.type == "cuda" else 16)
    rows, path_rows = [], []
    for name in default_models(args.ckpt, not args.no_cifar, not args.no_fmnist):
        label, energy = build_model(name, device)
        cifar = name == "cifar-sngan"
        batch, steps = (cifar_batch, args.cifar_steps) if cifar else (args.batch, args.steps)
        if args.paths != "none":
            names = default_paths(energy) if args.paths is None else args.paths.split(",")
            print(f"timing fast paths {', '.join(names)} on {label}, batch {batch}", file=sys.stderr)
            path_rows.append({"model": label, "batch": batch, "flops_per_sample_step": flops_per_sample_step(energy),
                              "paths": time_paths(energy, names, batch, steps, args.reps, device)})
        if args.paths_only:
            continue
        print(f"timing {label}, batch {batch}", file=sys.stderr)
        times = time_methods(energy, batch, steps, 1 if cifar else args.warmup, args.reps, device)
        memory = None if args.no_memory else memory_of(name, batch, device)
        rows.append(summarise(label, batch, times, memory))
    peaks = device_peaks(device) if path_rows else {}
    if args.paths_only:
        if args.json:
            print(json.dumps({"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
                              "peaks_flops": peaks, "paths": path_rows}, indent=2))
        else:
            print(f"{device}, {torch.get_num_threads()} threads, torch {torch.__version__}, fastest of {args.reps}")
            print(paths_table(path_rows, peaks))
        return
    rss = rss_scaling(args.rss_n, args.rss_chunk, steps=2) if len(args.rss_n) == 2 else {}
    fm = next((r for r in rows if "fmnist" in r["model"]), rows[0])
    result = {
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "steps": args.steps, "reps": args.reps, "models": rows,
        "step_over_bare": fm["step_over_bare"], "studiogan_over_ddls": fm["studiogan_over_ddls"],
        "naive_over_ddls": fm["naive_over_ddls"], "rss_mib": rss, "peaks_flops": peaks, "paths": path_rows,
        "rss_ratio_50k_over_2k": (rss[str(args.rss_n[1])] / rss[str(args.rss_n[0])]) if rss else None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if rss:
        a, b = args.rss_n
        print(f"ddls sample peak RSS, chunk {args.rss_chunk}: N={a}: {rss[str(a)]:.0f} MiB, N={b}: "
              f"{rss[str(b)]:.0f} MiB, ratio {result['rss_ratio_50k_over_2k']:.3f}")
    print(f"{device}, {torch.get_num_threads()} threads, torch {torch.__version__}, fastest of {args.reps} "
          f"interleaved repetitions")
    print(table(rows))
    if path_rows:
        print(paths_table(path_rows, peaks))


if __name__ == "__main__":
    main()
