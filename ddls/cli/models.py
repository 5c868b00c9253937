"""Commands about checkpoints: `inspect`, `export`, `calibrate`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import DDLSError
from .common import CKPT_HELP, DISC_HELP, LR, SEED, STEPS, count, echo_err, guard_output, model_option, was_given


@click.command()
@click.option("--ckpt", required=True, help=CKPT_HELP)
@click.option("--disc", default=None, help=DISC_HELP)
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inspect(ckpt, disc, factory, as_json):
    """Show what a checkpoint holds (format, architecture, latent size, parameters) before a long run."""
    from ..formats import describe, load_any

    model = load_any(ckpt, disc, factory=factory)
    info = {"ckpt": str(ckpt), **({"disc": str(disc)} if disc else {}), **describe(model)}
    if as_json:
        click.echo(json.dumps(info))
    else:
        for k, v in info.items():
            click.echo(f"{k}: {f'{v:,}' if isinstance(v, int) and k.endswith('parameters') else v}")


@click.command()
@guard_output("out", inputs=("ckpt",))
@click.option("--ckpt", required=True, help="Checkpoint written by `ddls train` or `ddls calibrate`.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write (.safetensors).")
def export(ckpt, out):
    """Write a ddls checkpoint as .safetensors (weights and metadata, no optimiser states)."""
    from ..io.checkpoint import FORMAT, model_from_payload, read_checkpoint
    from ..io.safetensors_io import write_safetensors

    if not str(out).endswith(".safetensors"):
        raise DDLSError(f"--out must end in .safetensors, got {out}")
    payload = read_checkpoint(ckpt)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DDLSError(f"{ckpt} is not a ddls checkpoint; export takes files written by `ddls train`")
    model_from_payload(payload, Path(ckpt))  # every field checked: broken metadata is never copied
    write_safetensors(out, payload)
    echo_err(f"wrote {out}")


@click.command()
@guard_output("out", inputs=("ckpt", "data"))
@click.option("--ckpt", required=True, help="Checkpoint written by `ddls train` (2-D or images) or `ddls.save`.")
@model_option
@click.option("--data", default=None, metavar="POINTS.npy|NAME",
              help="Real samples to calibrate against: a .npy of your own real points (N, d) or a data name "
                   "(default: the data the checkpoint names); the calibrated checkpoint names it.")
@click.option("--method", default="finetune", show_default=True,
              help="finetune: fine-tune D, early-stopped on held-out data; head: refit D's last layer exactly "
                   "(logistic regression on D's features, in seconds); platt (= logistic): fit a * score + b; "
                   "isotonic: a monotone step map (for drs and mhgan only); dcd: fine-tune D by contrastive "
                   "divergence against DDLS's own samples, early-stopped on a held-out likelihood bound.")
@click.option("--steps", type=count(1, STEPS), default=2000, show_default=True,
              help="finetune/dcd: most fine-tuning steps (early stopping may end sooner).")
@click.option("--batch-size", type=count(2, 10 ** 6), default=256, show_default=True)
@click.option("--lr", type=LR, default=1e-4, show_default=True)
@click.option("--n-heldout", type=count(2, 10 ** 7), default=1000, show_default=True,
              help="finetune/head/dcd: held-out real and generated samples, each.")
@click.option("--eval-every", type=count(1, STEPS), default=50, show_default=True,
              help="finetune/dcd: steps between held-out evaluations.")
@click.option("--patience", type=count(1, 10 ** 6), default=5, show_default=True,
              help="finetune/dcd: evaluations without a new best held-out score before stopping.")
@click.option("--layers", type=click.Choice(["all", "last"]), default="all", show_default=True,
              help="finetune/dcd: train all of D, or only its last layer.")
@click.option("--noise", type=click.FloatRange(min=0, max=1e6), default=0.0, show_default=True,
              help="finetune: std of Gaussian noise added to D's training inputs (instance noise); the held-out "
                   "loss is measured on clean inputs.")
@click.option("--chain-steps", type=count(1, 10 ** 4), default=5, show_default=True,
              help="dcd: Langevin steps of the persistent latent chains (the negatives) before each update.")
@click.option("--chain-eps", type=click.FloatRange(min=0, max=10, min_open=True), default=0.01, show_default=True,
              help="dcd: the chains' Langevin step size.")
@click.option("--n", "n", type=count(2, 10 ** 7), default=5000, show_default=True,
              help="platt/isotonic/head: real and generated samples, each, to fit on.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Calibrated checkpoint to write.")
def calibrate(ckpt, factory, data, method, steps, batch_size, lr, n_heldout, eval_every, patience, layers, noise,
              chain_steps, chain_eps, n, seed, device, out):
    """Calibrate the discriminator into a logit against the frozen generator; write a ddls checkpoint."""
    from .._torch import resolve_device
    from ..calibration.run import calibrate_file

    _refuse_unused(method)

    done = calibrate_file(ckpt, out, method=method, device=resolve_device(device), steps=steps,
                          batch_size=batch_size, lr=lr, n_heldout=n_heldout, eval_every=eval_every,
                          patience=patience, n=n, seed=seed, factory=factory, data=data, layers=layers,
                          noise=noise, chain_steps=chain_steps, chain_eps=chain_eps)
    if done["kind"] == "finetune":
        held, train = done["heldout_loss"], done["train_loss"]
        how = (f"held-out logistic loss {held['first']:.3f} -> {held['best']:.3f} (best at step {done['best_step']}, "
               f"final {held['final']:.3f}; training loss {train['first']:.3f} -> {train['final']:.3f}), "
               f"{done['steps_run']} steps, stopped by {done['stopped']}")
        if not done["improved"]:
            how += "; no step improved on the start, so the discriminator is unchanged"
    elif done["kind"] == "dcd":
        held = done["heldout_bound"]
        how = (f"held-out likelihood bound {held['first']:.3f} -> {held['best']:.3f} (best at step "
               f"{done['best_step']}, final {held['final']:.3f}), {done['steps_run']} steps, stopped by "
               f"{done['stopped']}")
        if not done["improved"]:
            how += "; no step improved on the start, so the discriminator is unchanged"
    elif done["kind"] == "head":
        held = done["heldout_loss"]
        how = (f"last layer refitted on {done['features']} features, held-out logistic loss {held['first']:.3f} -> "
               f"{held['best']:.3f}" + (f" (L2 strength {done['strength']:g})" if done["improved"] else
                                        "; no refit improved on the start, so the discriminator is unchanged"))
    elif done["kind"] == "platt":
        how = f"Platt map {done['a']:.4g} * score + {done['b']:.4g} (on Langevin: temperature / {done['a']:.4g})"
    else:
        how = f"isotonic map with {done['knots']} knots (for drs and mhgan; gradient samplers refuse it)"
    echo_err(f"wrote {out}: {how}; energy kind now {done['energy']!r}")


# which `ddls calibrate` options each method reads; one given to a method that ignores it is refused
CALIBRATE_OPTIONS = {
    "finetune": ("steps", "batch_size", "lr", "n_heldout", "eval_every", "patience", "layers", "noise"),
    "dcd": ("steps", "batch_size", "lr", "n_heldout", "eval_every", "patience", "layers", "chain_steps", "chain_eps"),
    "head": ("n", "n_heldout"), "platt": ("n",), "isotonic": ("n",),
}


def _refuse_unused(method: str) -> None:
    from ..calibration.maps import canonical

    used = CALIBRATE_OPTIONS.get(canonical(method), ())
    for name in dict.fromkeys(n for names in CALIBRATE_OPTIONS.values() for n in names):
        if name not in used and was_given(name):
            takers = [m for m, names in CALIBRATE_OPTIONS.items() if name in names]
            raise DDLSError(f"--{name.replace('_', '-')} is an option of --method {'/'.join(takers)}, not of "
                            f"{method}; drop it or choose that method")
