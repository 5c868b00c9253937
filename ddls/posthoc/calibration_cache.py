"""Calibration fits kept in the user cache (ddls.io.cache), so that tune, compare and sample of one
checkpoint on one data source fit each calibration once."""
from __future__ import annotations

import copy
import os

import torch

from ..calibration.maps import Calibration
from ..errors import DDLSError
from ..sampling.energy import LatentEnergy


def cached_calibration(energy: LatentEnergy, calibration: str, draw_real, *, n: int, seed: int, finetune_steps: int,
                       data: str) -> tuple[LatentEnergy, Calibration, dict]:
    """make_target's fit of `calibration` (not raw) as (energy, map, record), read from the user cache when
    the same networks were fitted so on the same data, n, seed and schedule before; else fitted and stored."""
    from ..calibration import calibrate
    from ..io import cache

    if os.path.isfile(data):
        from ..io.resume import file_digest

        data = f"{os.path.abspath(data)}:{file_digest(data)}"
    own_map = energy.score_map.state() if isinstance(energy.score_map, Calibration) else repr(energy.score_map)
    parts = {"networks": cache.digest_modules(*energy.modules()), "kind": energy.kind, "score_map": own_map,
             "label": energy.label if not isinstance(energy.label, torch.Tensor) else energy.label.tolist(),
             "sigma": energy.sigma, "calibration": calibration, "seed": seed, "n": n, "data": data,
             "finetune_steps": finetune_steps}
    found = cache.load("calibration", parts)
    if found is not None:
        arrays, meta = found
        try:
            d = energy.discriminator
            if arrays:
                d = copy.deepcopy(energy.discriminator)
                d.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in arrays.items()})
            fitted = energy.replaced(discriminator=d, kind=meta["kind"], score_map=None if meta["score_map"] is None
                                     else Calibration.from_state(meta["score_map"]))
            record = {"calibration": {**meta["record"], "cached": True}, "evaluations": 0}
            return fitted, Calibration.from_state(meta["map"]), record
        except (KeyError, TypeError, ValueError, RuntimeError, DDLSError):
            pass  # an entry that does not fit these networks: fitted again below
    result = calibrate(energy, calibration, draw_real, n=n, seed=seed, steps=finetune_steps)
    fitted = result.energy
    arrays = {} if fitted.discriminator is energy.discriminator else \
        {f"d.{k}": v.detach().cpu().numpy() for k, v in fitted.discriminator.state_dict().items()}
    score_map = fitted.score_map.state() if isinstance(fitted.score_map, Calibration) else None
    if fitted.score_map is None or score_map is not None:  # a map of another kind cannot be stored
        cache.store("calibration", parts, arrays, {"kind": fitted.kind, "score_map": score_map,
                                                   "map": result.map.state(), "record": result.record})
    return fitted, result.map, {"calibration": result.record, "evaluations": result.evaluations}
