"""`ddls sample`: parse the options, run `ddls.sampling.run`, print what it did."""
from __future__ import annotations

import click
import numpy as np

from ..errors import DDLSError
from ..sampling.run import EACH
from .common import (CKPT_HELP, DISC_HELP, POSITIVE, STEPS, count, LabelType, chain_options, echo_err, energy_options,
                     force_option, guard_output, refuse_unused)
from .posthoc import method_option, posthoc_options


# options of the Langevin run that the post-hoc branch does not use: refused unless left at their defaults
POSTHOC_UNUSED = ("cuda_graphs", "autocast", "compile_", "channels_last", "distributed", "on_nan", "checkpoint_every")
LANGEVIN_ONLY = ("steps", "eps", "noise_scale")  # used by ddls/mala through a calibrated logit, not by the others


def fast_options(f):
    f = click.option("--channels-last", is_flag=True, help="Run the networks in channels_last layout.")(f)
    f = click.option("--cuda-graphs", is_flag=True, help="Replay each step's forward and backward as a CUDA graph.")(f)
    f = click.option("--autocast", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True,
                     help="Networks in reduced precision (fp16: CUDA only); latents stay float32.")(f)
    f = click.option("--compile", "compile_", is_flag=True, help="torch.compile the energy and its gradient.")(f)
    f = click.option("--distributed", is_flag=True,
                     help="Shard the chunks across torchrun's processes (on by itself under torchrun).")(f)
    return f


@click.command()
@guard_output("out", inputs=("ckpt", "disc"), also=("grid",))
@force_option
@click.option("--ckpt", required=True, help=CKPT_HELP)
@click.option("--disc", default=None, help=DISC_HELP)
@click.option("--label", type=LabelType(), default=None, metavar="K|each",
              help="Class of a conditional model, G(z, y) and D(x, y): K for every chain, or 'each': chain i "
                   "gets class i mod num_classes. Saved per chain as `y`.")
@click.option("--steps", type=count(0, STEPS), default=500, show_default=True, help="Langevin steps (0: generator alone).")
@click.option("--eps", type=POSITIVE, default=0.01, show_default=True, help="Langevin step size.")
@click.option("--record-every", type=count(0, STEPS), default=0, show_default=True,
              help="Keep the samples every k-th step as `trajectory` (0: final only).")
@click.option("--out", type=click.Path(dir_okay=False), default="samples.npz", show_default=True)
@click.option("--grid", type=click.Path(dir_okay=False), default=None,
              help="Also write the first 64 image samples as a PNG grid.")
@click.option("--on-nan", type=click.Choice(["stop", "restart"]), default="stop", show_default=True,
              help="Chains whose energy turns NaN/inf: stop the run, or restart them from their last "
                   "finite checked state at half their eps.")
@click.option("--checkpoint-every", type=count(0, STEPS), default=50, show_default=True,
              help="Save progress to <out>.resume.pt every k steps (0: never; off in distributed runs).")
@click.option("--resume", is_flag=True, help="Finish the interrupted run saved in <out>.resume.pt.")
@method_option
@chain_options
@energy_options
@fast_options
@posthoc_options
def sample(ckpt, disc, label, steps, eps, record_every, out, grid, on_nan, checkpoint_every, resume, method,
           noise_scale, mala, n, seed, chunk_size, temperature, sigma, energy_kind, device, distributed, compile_,
           autocast, cuda_graphs, channels_last, posthoc):
    """Draw samples with DDLS (Langevin in latent space) or another post-hoc sampler; write them as .npz."""
    from ..sampling.driver import RunConfig
    from ..sampling.fastpath import FastPath
    from ..sampling.run import SampleJob, describe_restarts, load_energy, run_posthoc_sampling, run_sampling

    if method not in ("ddls", "mala") or posthoc["calibration"] != "raw":
        if resume or record_every or mala or label == EACH:
            raise DDLSError("--resume, --record-every, --mala and --label each are for --method ddls/mala with "
                            "raw calibration")
        if grid:
            raise DDLSError("--grid is for --method ddls/mala; plot the .npz samples instead")
        refuse_unused(POSTHOC_UNUSED + (() if method in ("ddls", "mala") else LANGEVIN_ONLY),
                      f"--method {method}" + (f" and --calibration {posthoc['calibration']}"
                                              if method in ("ddls", "mala") else ""))
        model, energy = load_energy(ckpt, device, temperature, sigma, energy_kind, disc, label)
        run_posthoc_sampling(model, energy, method, out, n=n, seed=seed, chunk_size=chunk_size, steps=steps,
                             eps=eps, noise_scale=noise_scale, posthoc=posthoc, echo=echo_err,
                             meta={"ckpt": str(ckpt), "disc": disc, "label": label, "temperature": temperature,
                                   "sigma": sigma})
        return
    fast = FastPath(compile=compile_, autocast=None if autocast == "off" else autocast, cuda_graphs=cuda_graphs,
                    channels_last=channels_last)
    config = RunConfig(n=n, steps=steps, method="mala" if mala or method == "mala" else "ula", eps=eps,
                       noise_scale=noise_scale, seed=seed, chunk_size=chunk_size, record_every=record_every)
    job = SampleJob(ckpt=ckpt, out=out, run=config, disc=disc, label=label, temperature=temperature, sigma=sigma,
                    energy_kind=energy_kind, device=device, on_nan=on_nan, checkpoint_every=checkpoint_every,
                    resume=resume, distributed=distributed, fast=fast)
    done = run_sampling(job, echo=echo_err)
    if not done.written:
        return
    if grid:
        write_grid(grid, out)
    if done.restarts:
        echo_err(describe_restarts(done.restarts))
    where = f" on {done.processes} processes" if done.processes > 1 else ""
    msg = f"wrote {out}: {n} samples x {steps} steps in {done.seconds:.1f}s{where}"
    if done.acceptance is not None:
        msg += f", mean acceptance {done.acceptance:.3f}"
    echo_err(msg)


def write_grid(grid: str, samples_file: str) -> None:
    from ..viz.grids import save_grid

    with np.load(samples_file) as f:
        x = f["x"][:64]
    if x.ndim != 4:
        raise DDLSError(f"--grid needs image samples; these have shape {x.shape[1:]}")
    save_grid(grid, x)
