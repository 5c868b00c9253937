"""`ddls sweep`: the generator alone against DDLS at several step sizes (`ddls.sampling.sweep`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (POSITIVE, STEPS, bootstrap_option, chain_options, count, echo_err, energy_options, force_option,
                     guard_output, image_metric_options, model_option)


@click.command()
@guard_output("out_dir", inputs=("ckpt", "stats", "classifier"), folder=True,
              default=lambda kw: f"sweep-{Path(kw['ckpt']).stem}")
@force_option
@click.option("--ckpt", required=True, help="Checkpoint: 2-D or image, written by `ddls train` (or `ddls calibrate`).")
@model_option
@click.option("--eps", "eps_values", type=POSITIVE, multiple=True, default=(1e-2, 1e-3, 1e-4, 1e-5),
              show_default=True, help="Step sizes to try (repeat the option).")
@click.option("--steps", type=count(1, STEPS), default=1000, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for sweep.csv and sweep.png (default: sweep-<ckpt name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
@bootstrap_option
@image_metric_options
@click.option("--grid-chains", type=count(1, 10 ** 4), default=8, show_default=True,
              help="Images: chains shown in chains.png (at the eps with the best FID).")
@click.option("--grid-every", type=count(1, STEPS), default=25, show_default=True,
              help="Images: chains.png shows every k-th Langevin step.")
@chain_options
@energy_options
def sweep(ckpt, factory, eps_values, steps, out_dir, as_json, resamples, features, stats, data, ref_n, classifier, grid_chains,
          grid_every, noise_scale, mala, n, seed, chunk_size, temperature, sigma, energy_kind, device):
    """Compare the generator alone with DDLS at several step sizes.

    2-D data: EMD, modes, high-quality % against the checkpoint's data or --data (a .npy of your own
    points). Images: FID in --features space against --stats (or the statistics of the checkpoint's
    data set, computed on the fly).
    """
    from ..sampling.driver import RunConfig
    from ..sampling.run import load_energy
    from ..sampling.sweep import format_table, sweep_2d, sweep_images

    model, energy = load_energy(ckpt, device, temperature, sigma, energy_kind, factory=factory)
    out = Path(out_dir or f"sweep-{Path(ckpt).stem}")
    base = RunConfig(n=n, steps=steps, method="mala" if mala else "ula", noise_scale=noise_scale, seed=seed,
                     chunk_size=chunk_size)
    record = {"ckpt": str(ckpt), **({"factory": factory} if factory else {}), "temperature": temperature,
              "sigma": sigma, "energy": energy.kind}
    if len(energy.sample_shape) == 3:  # (C, H, W)
        rows, columns, files = sweep_images(ckpt, model, energy, base, list(eps_values), out, record,
                                            features=features, stats=stats, data=data, ref_n=ref_n,
                                            classifier=classifier, grid_chains=grid_chains, grid_every=grid_every,
                                            resamples=resamples, note=echo_err)
    else:
        rows, columns, files = sweep_2d(ckpt, model, energy, base, list(eps_values), out, record,
                                         resamples=resamples, data=data)
    click.echo(json.dumps(rows) if as_json else format_table(rows, columns))
    echo_err(f"wrote {', '.join(map(str, files[:-1]))} and {files[-1]}")
