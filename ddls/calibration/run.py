"""`ddls calibrate`'s work: load a ddls checkpoint, calibrate its discriminator, write the result as a checkpoint.

The written checkpoint holds the (fine-tuned) discriminator and, for platt and isotonic, the
fitted map, which its energy applies to the score: a platt map a * s + b acts on Langevin
as temperature T / a (b shifts every energy alike); an isotonic map is a step function,
which its energy refuses to gradient samplers (ddls, mala, dot, dgflow).
"""
from __future__ import annotations

import json

from ..errors import DDLSError
from .methods import calibrate


def calibrate_file(ckpt: str, out: str, *, method: str = "finetune", device="cpu", factory: str | None = None,
                   data: str | None = None, **settings) -> dict:
    """Calibrate the discriminator of ddls checkpoint `ckpt` (or of your own networks, built by `factory`
    or saved by `ddls.save`) by `method` and write `out` in the same format.

    data: the real samples (a data name or a .npy of points), by default the data the checkpoint names; the
    written checkpoint names it.
    `settings` are `calibrate`'s (n, n_heldout, steps, lr, batch_size, eval_every, patience, seed, layers,
    noise, chain_steps, chain_eps).
    Returns the calibration's record, with the energy kind before and after."""
    from ..data.real import real_source
    from ..formats import own
    from ..io.checkpoint import load_model, read_checkpoint, save_ddls

    from .maps import canonical

    if canonical(method) == "raw":
        raise DDLSError("raw calibration changes nothing; choose platt, isotonic, finetune, head or dcd")
    mine = factory is not None or own.detect(read_checkpoint(ckpt), ckpt)
    if mine:
        from ..formats import load_any

        model = load_any(ckpt, device=device, factory=factory)
    else:
        model = load_model(ckpt, device)
    energy = model.energy()
    draw_real = real_source(model, energy.sample_shape, data=data)
    if draw_real is None:
        raise DDLSError(f"{ckpt} does not say which data it was trained on; calibration needs real samples: pass "
                        f"--data points.npy (your own real points, one per row) or a data name")
    model.data = data or model.data
    result = calibrate(energy, method, draw_real, progress=True, **settings)
    stored = result.stored_map()
    kind = result.energy.kind
    if kind == "wgan" and stored is not None:
        kind = "gan"  # the critic, mapped by a map fitted as a logit, is one
    record = {**result.record, "from": str(ckpt), "method": result.map.kind, "energy_before": model.energy_kind,
              "energy": kind, "evaluations": result.evaluations,
              "score_map": None if stored is None else stored.to_dict()}
    if mine:
        model.discriminator, model.energy_kind, model.score_map = result.energy.discriminator, kind, stored
        model.meta["config"] = {**(model.meta.get("config") or {}), "calibration": record}
        own.save(model, out)
        return record
    spec = model.meta["model"]
    extra = dict(model.meta.get("extra") or {})
    extra["calibration"] = record
    save_ddls(out, g=model.generator, d=result.energy.discriminator, g_spec=spec["generator"],
              d_spec=spec["discriminator"], latent_shape=model.latent_shape, energy_kind=kind,
              config_json=json.dumps(model.meta["config"]), step=model.meta.get("step") or 0, data=model.data,
              extra=extra, score_map=None if stored is None else stored.state())
    return record
