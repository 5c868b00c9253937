"""`ddls tune`'s reference file: a recipe plus the checkpoint (and discriminator) it was tuned on,
named by path and sha256 (written by ddls.tuning.recipe). Loading it checks its fields and loads
those files; the recipe's values are ddls.tuning.schema's to check (a layer above this one)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from ..errors import DDLSError
from ..io.checkpoint import Model

NAME = "ddls-tuned"
ONE_FILE = True  # it names the checkpoint (and discriminator file) it was tuned on
DESCRIPTION = "ddls-tuned (written by `ddls tune` for checkpoints of other formats)"
MAX_PATH = 4096  # characters of a path the file names
REFERENCE_FORMAT = "ddls-tuned"  # the file's `format`
REFERENCE_VERSION = 1  # the file's `format_version`; another is refused, not guessed at
RECIPE_KEY = "recipe"  # the recipe's JSON, here and in a tuned ddls checkpoint's `extra`
FILE_FIELDS = ("format", "format_version", "ckpt", "ckpt_sha256", "disc", "disc_sha256", RECIPE_KEY)
RERUN = "run `ddls tune` again to rewrite it"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def detect(payload: Any, path: Path) -> bool:
    return isinstance(payload, dict) and payload.get("format") == REFERENCE_FORMAT


def check(payload: dict, where: str | Path) -> dict:
    """The reference file's fields, each checked: the version this ddls reads, the tuned files as paths
    with their sha256, the recipe as a JSON object (its values are ddls.tuning.schema's to check)."""
    from ..io.schema import json_field

    unknown = [repr(k) for k in payload if k not in FILE_FIELDS]
    if unknown:
        raise DDLSError(f"{where}: unknown field(s) {', '.join(unknown)[:80]} in a `ddls tune` reference file; "
                        f"{RERUN}")
    version = payload.get("format_version")
    if type(version) is not int or version != REFERENCE_VERSION:
        raise DDLSError(f"{where}: reference format_version is {_short(version)}; this ddls reads version "
                        f"{REFERENCE_VERSION} only; {RERUN}")
    fields = {}
    for key, required in (("ckpt", True), ("disc", False)):
        named, digest = payload.get(key), payload.get(f"{key}_sha256")
        if named is None and digest is None and not required:
            fields[key] = fields[f"{key}_sha256"] = None
            continue
        if not isinstance(named, str) or not named or len(named) > MAX_PATH or "\0" in named:
            raise DDLSError(f"{where}: field {key!r} must be the path of the file it was tuned on, it is "
                            f"{_kind(named)}; {RERUN}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise DDLSError(f"{where}: field '{key}_sha256' must be 64 hex digits (the sha256 of {key}), it is "
                            f"{_kind(digest)}; {RERUN}")
        fields[key], fields[f"{key}_sha256"] = named, digest
    try:
        fields[RECIPE_KEY] = json_field(payload, RECIPE_KEY, where, required=True, kind=dict)
    except DDLSError as exc:
        raise DDLSError(f"{exc}; {RERUN}") from None
    return fields


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of too many digits; a list nested too deep
        text = f"a {type(value).__name__}"
    return " ".join(text.splitlines())[:40]


def _kind(value: Any) -> str:
    from ..io.schema import json_kind

    if isinstance(value, str):
        return repr(value[:40]) if value else "empty"
    return "missing" if value is None else json_kind(value)


def _checked(fields: dict, key: str, path: Path) -> str | None:
    from ..io.resume import file_digest

    named = fields[key]
    if named is None:
        return None
    if not Path(named).is_file():
        raise DDLSError(f"{path} was tuned on {named}, which is gone; put it back or run `ddls tune` again")
    if file_digest(named) != fields[f"{key}_sha256"]:
        raise DDLSError(f"{named} changed since {path} was tuned on it (sha256 differs); run `ddls tune` again")
    return named


def load(payload: Any, path: Path, disc: Any = None, disc_path: Path | None = None, *,
         factory: str | None = None, load_any: Callable[..., Model]) -> Model:
    """The model of the checkpoint `payload` names, with its recipe; `factory` builds your own networks.
    load_any: ddls.formats.load_any, which reads the named checkpoint in whatever format it is (passed in,
    since the formats package imports this module)."""
    if disc_path is not None:
        raise DDLSError(f"{path} names its own discriminator; drop the discriminator file")
    fields = check(payload, path)
    record = fields[RECIPE_KEY].get("tuning")
    recorded = record.get("factory") if isinstance(record, dict) else None
    if factory is None and isinstance(recorded, str):  # a name only: the user gives the factory again
        raise DDLSError(f"{path} was tuned on your own networks with --model {recorded[:200]!r}; pass that --model "
                        f"again")
    model = load_any(_checked(fields, "ckpt", path), _checked(fields, "disc", path), factory=factory)
    model.meta = {**(model.meta or {}), "recipe": fields[RECIPE_KEY], "tuned_from": fields["ckpt"]}
    return model
