"""Commands about checkpoints: `inspect`, `export`, `calibrate`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import DDLSError
from .common import CKPT_HELP, DISC_HELP, LR, SEED, STEPS, count, echo_err, guard_output


@click.command()
@click.option("--ckpt", required=True, help=CKPT_HELP)
@click.option("--disc", default=None, help=DISC_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inspect(ckpt, disc, as_json):
    """Show what a checkpoint holds (format, architecture, latent size, parameters) before a long run."""
    from ..formats import describe, load_any

    info = {"ckpt": str(ckpt), **({"disc": str(disc)} if disc else {}), **describe(load_any(ckpt, disc))}
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
@guard_output("out", inputs=("ckpt",))
@click.option("--ckpt", required=True, help="Checkpoint written by `ddls train` (2-D or images).")
@click.option("--steps", type=count(1, STEPS), default=2000, show_default=True,
              help="Discriminator fine-tuning steps.")
@click.option("--batch-size", type=count(2, 10 ** 6), default=256, show_default=True)
@click.option("--lr", type=LR, default=1e-4, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Calibrated checkpoint to write.")
def calibrate(ckpt, steps, batch_size, lr, seed, device, out):
    """Fine-tune the discriminator as a logistic classifier against the frozen generator."""
    from .._torch import resolve_device
    from ..calibration.finetune import calibrate_file

    done = calibrate_file(ckpt, out, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                          device=resolve_device(device))
    echo_err(f"wrote {out}: discriminator fine-tuned for {steps} steps, logistic loss "
             f"{done['first_loss']:.3f} -> {done['final_loss']:.3f}; energy kind now {done['energy']!r}")
