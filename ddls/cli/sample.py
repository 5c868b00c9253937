"""`ddls sample`: parse the options, run `ddls.sampling.run`, print what it did."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..errors import DDLSError
from ..sampling.run import EACH
from .common import (CKPT_HELP, DISC_HELP, POSITIVE, STEPS, count, LabelType, chain_options, echo_err, energy_options,
                     force_option, guard_output, model_option, refuse_unused)
from .posthoc import (PosthocCommand, langevin_methods, method_option, posthoc_options, refuse_other_methods,
                      warn_logit)

# options of the Langevin run that the post-hoc branch does not use: refused unless left at their defaults
POSTHOC_UNUSED = ("cuda_graphs", "autocast", "compile_", "channels_last", "distributed", "on_nan", "checkpoint_every")
LANGEVIN_ONLY = ("steps", "eps", "noise_scale")  # used by ddls/mala through a calibrated logit, not by the others


def fast_options(f):
    f = click.option("--channels-last", is_flag=True, help="Run the networks in channels_last layout.")(f)
    f = click.option("--cuda-graphs", is_flag=True, help="Replay each whole Langevin step as one CUDA graph.")(f)
    f = click.option("--autocast", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True,
                     help="Networks in reduced precision (fp16: CUDA only); latents stay float32.")(f)
    f = click.option("--compile", "compile_", is_flag=True, help="torch.compile the energy and its gradient.")(f)
    f = click.option("--fast", "fast_mode", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
                     help="auto: on CUDA, time the fast paths on the first chunk and take the fastest whose "
                          "precision passed a check (on the CPU: the plain path); the switches below override it.")(f)
    f = click.option("--distributed", is_flag=True,
                     help="Shard the chunks across torchrun's processes (on by itself under torchrun).")(f)
    return f


@click.command(cls=PosthocCommand)
@guard_output("out", inputs=("ckpt", "disc", "data"), also=("grid",))
@force_option
@click.option("--ckpt", required=True, help=CKPT_HELP)
@click.option("--disc", default=None, help=DISC_HELP)
@model_option
@click.option("--data", default=None, metavar="POINTS.npy|NAME",
              help="Real samples, for the methods and calibrations that need them (mhgan; platt, isotonic, head, "
                   "finetune): a .npy of your own real points (N, d), or a data name (gmm25, fashion-mnist, ...); "
                   "recorded in the samples file for `ddls eval` (default: the data the checkpoint names).")
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
              help="Save progress to <out>.resume.pt every k steps and on Ctrl-C (0: never; off in distributed "
                   "runs).")
@click.option("--resume", is_flag=True, help="Finish the interrupted run saved in <out>.resume.pt.")
@method_option
@chain_options
@energy_options
@fast_options
@posthoc_options
def sample(ckpt, disc, factory, data, label, steps, eps, record_every, out, grid, on_nan, checkpoint_every, resume,
           method, noise_scale, mala, n, seed, chunk_size, temperature, sigma, energy_kind, device, distributed,
           compile_, fast_mode, autocast, cuda_graphs, channels_last, posthoc):
    """Draw samples with DDLS (Langevin in latent space) or another post-hoc sampler; write them as .npz."""
    from .._torch import resolve_device
    from ..posthoc import default_config
    from ..sampling.driver import RunConfig
    from ..sampling.fastpath import FastPath, check_device
    from ..posthoc.to_file import run_posthoc_sampling
    from ..sampling.run import SampleJob, describe_restarts, load_energy, run_sampling

    method, steps, eps, noise_scale, temperature = _tuned(ckpt, posthoc, method=method, steps=steps, eps=eps,
                                                          noise_scale=noise_scale, temperature=temperature)
    fast = FastPath(compile=compile_, autocast=None if autocast == "off" else autocast, cuda_graphs=cuda_graphs,
                    channels_last=channels_last)
    refuse_other_methods([method], posthoc["calibration"])
    check_device(fast, resolve_device(device))  # every method: a GPU switch on the CPU is an error, not a no-op
    chains = langevin_methods()  # these run through run_sampling: resumable, streamed to the file
    if method not in chains or posthoc["calibration"] != "raw":
        _refuse_chain_only(chains, method, posthoc["calibration"], resume=resume, record_every=record_every,
                           mala=mala, label=label, grid=grid)
        model, energy = load_energy(ckpt, device, temperature, sigma, energy_kind, disc, label, factory=factory)
        _refuse_no_real(ckpt, model, method, posthoc["calibration"], data)
        warn_logit([method], energy.kind, posthoc["calibration"])
        run_posthoc_sampling(model, energy, method, out, n=n, seed=seed, chunk_size=chunk_size, steps=steps,
                             eps=eps, noise_scale=noise_scale, posthoc=posthoc, data=data, echo=echo_err,
                             meta={"ckpt": str(ckpt), "disc": disc, "factory": factory, "label": label,
                                   "temperature": temperature, "sigma": sigma})
        return
    kernel = default_config(method).method  # ula, or mala
    config = RunConfig(n=n, steps=steps, method="mala" if mala else kernel, eps=eps,
                       noise_scale=noise_scale, seed=seed, chunk_size=chunk_size, record_every=record_every)
    job = SampleJob(ckpt=ckpt, out=out, run=config, disc=disc, factory=factory, data=data, label=label,
                    temperature=temperature, sigma=sigma, energy_kind=energy_kind, device=device, on_nan=on_nan,
                    checkpoint_every=checkpoint_every, resume=resume, distributed=distributed, fast=fast,
                    fast_mode=fast_mode)
    done = run_sampling(job, echo=echo_err)
    if not done.written:
        return
    if grid:
        write_grid(grid, out)
    if done.restarts:
        echo_err(describe_restarts(done.restarts))
    where = f" on {done.processes} processes" if done.processes > 1 else ""
    msg = f"wrote {out}: {n} samples x {steps} steps in {done.seconds:.1f}s{where} ({done.fast} path)"
    if done.acceptance is not None:
        msg += f", mean acceptance {done.acceptance:.3f}"
    echo_err(msg)
    note = _critic_note(ckpt, disc, factory, done.energy_kind, steps, temperature, method)
    if note:
        echo_err(note)


def _critic_note(ckpt, disc, factory, kind, steps, temperature, method) -> str | None:
    """One line when DDLS ran at T = 1 on a critic (no logit) of a checkpoint with no tuned recipe."""
    from ..tuning.recipe import read_recipe

    if kind != "wgan" or not steps or temperature != 1 or method != "ddls":  # wgan: a WGAN-GP or hinge critic
        return None
    if read_recipe(ckpt) is not None:
        return None
    command = (f"ddls tune --ckpt {ckpt}" + (f" --disc {disc}" if disc else "")
               + (f" --model {factory}" if factory else "") + f" --out {Path(str(ckpt)).stem}_tuned.pt")
    return (f"note: this {kind} critic is not a logit, and DDLS at T = 1 on a critic is often worse than the generator "
            f"alone; `{command}` checks it")


def write_grid(grid: str, samples_file: str) -> None:
    from ..viz.grids import save_grid

    with np.load(samples_file) as f:
        x = f["x"][:64]
    if x.ndim != 4:
        raise DDLSError(f"--grid needs image samples; these have shape {x.shape[1:]}")
    save_grid(grid, x)


def _tuned(ckpt, posthoc: dict, **given):
    """(method, steps, eps, noise_scale, temperature): a TUNED.pt's recipe, where no option was given."""
    from .tune import tuned_settings

    tuned, recipe = tuned_settings(ckpt, click.get_current_context())
    if recipe is None:
        return tuple(given.values())
    values = tuple(tuned.pop(k, v) for k, v in given.items())
    posthoc.update(tuned)  # the method's own settings and the calibration
    echo_err(f"{ckpt} holds the tuned recipe {recipe.label}; options given here override it")
    return values


def _refuse_no_real(ckpt, model, method: str, calibration: str, data) -> None:
    """One line, before any work, when the method or calibration needs real samples and none are named."""
    from ..posthoc.registry import get

    needs = ([f"--method {method}"] if get(method).needs_real else []) + \
            ([f"--calibration {calibration}"] if calibration != "raw" else [])
    if needs and data is None and model.data is None:
        tuned_on = (((model.meta or {}).get("recipe") or {}).get("tuning") or {}).get("data")
        hint = f" (it was tuned on {tuned_on[:200]!r})" if isinstance(tuned_on, str) else ""
        raise DDLSError(f"{' and '.join(needs)} {'needs' if len(needs) == 1 else 'need'} real samples, and {ckpt} "
                        f"names no data; pass --data points.npy (your own real points, one per row) or a data "
                        f"name{hint}")


def _refuse_chain_only(chains, method, calibration, *, resume, record_every, mala, label, grid) -> None:
    """Options only a Langevin run (raw calibration) honours are refused for the other methods."""
    if resume or record_every or mala or label == EACH:
        raise DDLSError(f"--resume, --record-every, --mala and --label each are for --method {'/'.join(chains)} "
                        f"with raw calibration")
    if grid:
        raise DDLSError(f"--grid is for --method {'/'.join(chains)}; plot the .npz samples instead")
    from ..posthoc.registry import get

    # a method takes a Langevin option when its registry entry maps it onto its config (ex2mcmc: eps)
    unused = () if method in chains else tuple(k for k in LANGEVIN_ONLY if k not in get(method).shared)
    refuse_unused(POSTHOC_UNUSED + unused,
                  f"--method {method}" + (f" and --calibration {calibration}" if method in chains else ""))
