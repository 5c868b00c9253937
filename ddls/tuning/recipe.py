"""A sampling recipe (method, temperature, the method's settings) and the TUNED.pt file that carries it.

TUNED.pt takes one of two forms, so that every checkpoint `ddls sample --ckpt` reads can be tuned:
- a ddls checkpoint (.pt or .safetensors, no separate discriminator): a copy of it with the
  recipe in its `extra` JSON; it is still an ordinary ddls checkpoint;
- anything else (other libraries' formats, a separate discriminator file): a small file naming
  the checkpoint and discriminator by absolute path and sha256, plus the recipe. Loading it
  loads the named files after checking their digests (ddls.formats.tuned).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DDLSError

# the reference file's format (ddls.formats.tuned) and the key of the recipe, there and in a copy's `extra`
from ..formats.tuned import RECIPE_KEY, REFERENCE_FORMAT, REFERENCE_VERSION, RERUN  # noqa: F401

from .schema import GENERATOR, check_recipe, option_keys  # noqa: F401  (GENERATOR: the generator alone)

SHORT = {"noise_scale": "noise", "drs_gamma_percentile": "gamma%", "mh_chain_length": "K", "dot_lr": "lr",
         "dot_steps": "steps", "dgflow_eta": "eta", "dgflow_gamma": "gamma", "dgflow_steps": "steps",
         "drs_pilot": "pilot", "dot_optimizer": "opt", "dot_pairs": "pairs", "dgflow_f": "f",
         "sir_pool_factor": "K", "ex2mcmc_iterations": "moves", "ex2mcmc_candidates": "N", "ex2mcmc_mala_steps": "mala",
         "flex2mcmc_iterations": "moves", "flex2mcmc_adapt": "adapt", "flex2mcmc_candidates": "N",
         "flex2mcmc_mala_steps": "mala", "flex2mcmc_flow_layers": "layers", "flex2mcmc_flow_hidden": "hidden",
         "flex2mcmc_flow_lr": "flow_lr", "flex2mcmc_flow_steps": "flow_steps", "flex2mcmc_prior_share": "prior",
         "prior_langevin_steps": "langevin", "prior_langevin_eps": "langevin_eps"}


@dataclass(frozen=True)
class Recipe:
    """How to sample a checkpoint: `method` at `temperature` with `options` (keys of option_keys())."""

    method: str
    temperature: float = 1.0
    options: dict = field(default_factory=dict)
    calibration: str = "raw"

    def __post_init__(self):
        from ..posthoc import METHODS

        if self.method not in (GENERATOR, *METHODS):
            raise DDLSError(f"unknown method {self.method!r}; choose from {GENERATOR}, {', '.join(METHODS)}")
        unknown = sorted(set(self.options) - option_keys())
        if unknown:
            raise DDLSError(f"unknown recipe setting(s) {', '.join(unknown)}; known: {', '.join(sorted(option_keys()))}")
        if not self.temperature > 0:
            raise DDLSError(f"temperature must be > 0, got {self.temperature}")

    @property
    def label(self) -> str:
        if self.method == GENERATOR:
            return GENERATOR
        shown = " ".join(f"{SHORT.get(k, k)}={v:g}" if isinstance(v, float) else f"{SHORT.get(k, k)}={v}"
                         for k, v in self.options.items())
        on = "" if self.calibration == "raw" else f"[{self.calibration}]"
        return f"{self.method}{on} T={self.temperature:g} {shown}".strip()

    def to_dict(self) -> dict:
        return {"method": self.method, "temperature": self.temperature, "options": dict(self.options),
                "calibration": self.calibration}

    @classmethod
    def from_dict(cls, d: Any, where: str = "the tuned recipe") -> "Recipe":
        """The recipe a stored JSON object holds, each field checked as `ddls sample` checks its option
        (ddls.tuning.schema); `where` names the file in the one-line refusal."""
        return cls(**check_recipe(d, where))

    def sample_options(self) -> dict:
        """The recipe as `ddls sample`'s parameters (the generator alone: ddls with 0 steps)."""
        if self.method == GENERATOR:
            return {"method": "ddls", "steps": 0, "temperature": self.temperature, "calibration": self.calibration}
        return {"method": self.method, "temperature": self.temperature, "calibration": self.calibration,
                **self.options}


def write_tuned(ckpt: str | os.PathLike, out: str | os.PathLike, recipe: Recipe, record: dict, *,
                disc: str | os.PathLike | None = None) -> str:
    """Write TUNED.pt for `ckpt` (and `disc`); returns which form it took: 'copy' or 'reference'."""
    import torch

    from ..io.checkpoint import is_ddls_payload, read_checkpoint
    from ..io.outputs import write_bytes
    from ..io.resume import file_digest

    stored = {**recipe.to_dict(), "tuning": record}
    payload = read_checkpoint(ckpt)
    if disc is None and is_ddls_payload(payload):
        extra = json.loads(payload.get("extra") or "{}")
        payload = {**payload, "extra": json.dumps({**extra, RECIPE_KEY: stored})}
        form = "copy"
    else:
        payload = {"format": REFERENCE_FORMAT, "format_version": REFERENCE_VERSION,
                   "ckpt": str(Path(ckpt).resolve()), "ckpt_sha256": file_digest(ckpt),
                   "disc": None if disc is None else str(Path(disc).resolve()),
                   "disc_sha256": None if disc is None else file_digest(disc),
                   RECIPE_KEY: json.dumps(stored)}
        form = "reference"
    write_bytes(out, lambda fh: torch.save(payload, fh))
    return form


def stored_recipe(payload: Any, where: str = "the checkpoint") -> Any:
    """The stored recipe (a recipe's JSON with its `tuning` record, not yet checked) in an already-read
    checkpoint payload, or None when it holds none. A reference file's own fields are checked here."""
    if not isinstance(payload, dict):
        return None
    if payload.get("format") == REFERENCE_FORMAT:
        from ..formats.tuned import check

        return check(payload, where)[RECIPE_KEY]
    if payload.get("format") != "ddls" or not isinstance(payload.get("extra"), str):
        return None
    try:
        extra = json.loads(payload["extra"] or "{}")
    except (json.JSONDecodeError, RecursionError):
        return None  # a broken extra field: the schema check says so in one line when the file is loaded
    if not isinstance(extra, dict) or RECIPE_KEY not in extra:
        return None
    if extra[RECIPE_KEY] is None:  # present but null is a damaged recipe, not an untuned checkpoint
        raise DDLSError(f"{where}: the tuned recipe must be a JSON object, it is null; {RERUN}")
    return extra[RECIPE_KEY]


def read_recipe(path: str | os.PathLike) -> Recipe | None:
    """The recipe in TUNED.pt, checked (ddls.tuning.schema), or None for a checkpoint that holds none."""
    from ..io.checkpoint import read_checkpoint

    stored = stored_recipe(read_checkpoint(path), str(path))
    return None if stored is None else Recipe.from_dict(stored, str(path))
