"""What a stored recipe must hold, checked before anything runs from it.

A recipe is a set of `ddls sample` options (Recipe.sample_options), so each of its values is
held to the type and range of the option it becomes: the ranges of ddls.core.options and each
method's settings in the post-hoc registry, bounded as the command line bounds them (its types
come from the same places; tests/test_recipe_schema.py holds the two to each other). Every
refusal is one line naming the file, the field and what it may hold. Whether a checked recipe
also finishes in time is ddls.tuning.runnable's question.
"""
from __future__ import annotations

from typing import Any

import click

from ..errors import DDLSError
from ..formats.tuned import RERUN
from ..io.schema import json_kind

GENERATOR = "generator"  # the generator alone: no post-hoc method
FIELDS = ("method", "temperature", "options", "calibration", "tuning")  # what a stored recipe holds
SHOWN = 40  # characters of a refused value shown in the error line


def option_keys() -> frozenset[str]:
    """The settings a recipe may hold: the flat options of ddls.posthoc.default_config, as `ddls sample`
    names them, less the chunk size (the user's, not the recipe's). Read from the registry when asked."""
    from ..posthoc.registry import option_names

    return option_names() - {"chunk_size"}


def recipe_options() -> dict[str, tuple[str, click.ParamType]]:
    """{recipe field: (the `ddls sample` option it becomes, that option's type)}. Read when asked, so a
    method registered later brings its settings."""
    from ..core.options import NONNEG, POSITIVE, STEPS, bounded, count
    from ..core.score_map import ALIASES, KINDS
    from ..posthoc.registry import methods

    table = {"temperature": ("--temperature", POSITIVE), "steps": ("--steps", count(0, STEPS)),
             "eps": ("--eps", POSITIVE), "noise_scale": ("--noise-scale", NONNEG),
             "calibration": ("--calibration", click.Choice([*KINDS, *ALIASES]))}
    for method in methods():
        for s in method.settings:  # typed by the setting, else by its default, as the command line types it
            declared = s.type if s.type is not None else click.types.convert_type(None, method.default(s))
            table[s.name] = (s.flag, bounded(declared))
    return table


def langevin_settings() -> frozenset[str]:
    """The flat options the Langevin methods read: the registry's shared ones but the chunk size."""
    from ..posthoc.registry import SHARED

    return frozenset(SHARED) - {"chunk_size"}


def reads(method: str) -> frozenset[str]:
    """The recipe settings `method` reads: its own settings, and the Langevin ones if it runs chains of the
    sampling driver (as `ddls sample` takes them: the others refuse --steps, --eps, --noise-scale)."""
    from ..posthoc.registry import get
    from ..sampling.driver import RunConfig

    if method == GENERATOR:
        return frozenset()
    entry = get(method)
    own = frozenset(s.name for s in entry.settings)
    return own | langevin_settings() if entry.config is RunConfig else own


def check_recipe(stored: Any, where: str) -> dict:
    """The fields of the recipe in `stored` (a recipe's JSON object), each checked and converted as `ddls
    sample` converts its option: Recipe's arguments (method, temperature, options, calibration). `where`
    names the file in the one-line refusal."""
    from ..posthoc import METHODS

    if not isinstance(stored, dict):
        raise DDLSError(f"{where}: the tuned recipe must be a JSON object, it is {json_kind(stored)}; {RERUN}")
    unknown = [repr(k) for k in stored if k not in FIELDS]
    if unknown:
        raise DDLSError(f"{where}: unknown recipe field(s) {_clip(', '.join(unknown), SHOWN)}; a recipe holds "
                        f"{', '.join(FIELDS)}; {RERUN}")
    method = stored.get("method")
    methods = (GENERATOR, *METHODS)
    if not isinstance(method, str) or method not in methods:
        raise DDLSError(f"{where}: recipe field 'method' is {_show(method)}; allowed: one of {', '.join(methods)}; "
                        f"{RERUN}")
    options = stored.get("options", {})
    if not isinstance(options, dict):
        raise DDLSError(f"{where}: recipe field 'options' must be a JSON object of `ddls sample` settings, it is "
                        f"{json_kind(options)}; {RERUN}")
    tuning = stored.get("tuning", {})
    if not isinstance(tuning, dict):
        raise DDLSError(f"{where}: recipe field 'tuning' must be a JSON object (the search's record), it is "
                        f"{json_kind(tuning)}; {RERUN}")
    _check_settings(method, options, where)
    table = recipe_options()
    temperature = _convert("temperature", stored.get("temperature", 1.0), *table["temperature"], where)
    calibration = _convert("calibration", stored.get("calibration", "raw"), *table["calibration"], where)
    settings = {key: _convert(f"options.{key}", value, *table[key], where) for key, value in options.items()}
    return {"method": method, "temperature": temperature, "options": settings, "calibration": calibration}


def _check_settings(method: str, options: dict, where: str) -> None:
    """Every setting is one `method` reads, as `ddls sample --method <method>` would take it."""
    known = option_keys()
    unknown = [repr(k) for k in options if k not in known]
    if unknown:
        raise DDLSError(f"{where}: unknown recipe setting(s) {_clip(', '.join(unknown), SHOWN)}; known: "
                        f"{', '.join(sorted(known))}; {RERUN}")
    read = reads(method)
    stray = [k for k in options if k not in read]
    if stray:
        whose = "the generator alone takes no settings" if method == GENERATOR else \
            f"{method} reads {', '.join(sorted(read)) or 'no settings'}"
        raise DDLSError(f"{where}: recipe setting {stray[0]} is not one that method {method} reads "
                        f"({whose}); {RERUN}")


def _convert(field: str, value: Any, flag: str, kind: click.ParamType, where: str) -> Any:
    """`value` as `ddls sample` takes the option `flag` of type `kind`, from a JSON value of the matching kind."""
    def refused(why: str) -> DDLSError:
        return DDLSError(f"{where}: recipe field {field} is {_show(value)}{why}; allowed: {_allowed(kind)} (as "
                         f"`ddls sample {flag}` takes it); {RERUN}")

    if isinstance(value, bool) or not isinstance(value, _json_kinds(kind)):
        raise refused(f" ({json_kind(value)})")
    try:
        return kind.convert(value, None, None)
    except click.BadParameter as exc:  # a type of the registry's own says why; a range or choice says it all
        described = isinstance(kind, (click.IntRange, click.FloatRange, click.Choice))
        raise refused("" if described else f" ({_clip(str(exc.message), 120)})") from None
    except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
        raise refused(f" ({type(exc).__name__})") from None


def _json_kinds(kind: click.ParamType) -> tuple[type, ...]:
    """The JSON values an option of this type is stored as: integers for counts, numbers for amounts, text for
    choices; a type of the registry's own (e.g. a percentile or 'none') gets any scalar and decides itself."""
    if isinstance(kind, click.types.IntParamType):
        return (int,)
    if isinstance(kind, click.types.FloatParamType):
        return (int, float)
    if isinstance(kind, click.Choice):
        return (str,)
    return (int, float, str, type(None))


def _allowed(kind: click.ParamType) -> str:
    """What an option of this type accepts, in words (from the type's public bounds and choices)."""
    integer = isinstance(kind, click.types.IntParamType)
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        low = "-inf" if kind.min is None else f"{kind.min:d}" if integer else f"{kind.min:g}"
        high = "inf" if kind.max is None else f"{kind.max:d}" if integer else f"{kind.max:g}"
        return (f"{'an integer' if integer else 'a number'} in {'(' if kind.min_open else '['}{low}, {high}"
                f"{')' if kind.max_open else ']'}")
    if isinstance(kind, click.Choice):
        return "one of " + ", ".join(map(str, kind.choices))
    if integer:
        return "an integer"
    if isinstance(kind, click.types.FloatParamType):
        return "a number"
    return kind.name


def _show(value: Any, limit: int = SHOWN) -> str:
    """A short repr of a value from a file (which may be huge or deeply nested)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of too many digits; a list nested too deep
        text = f"a {type(value).__name__}"
    return _clip(text, limit)


def _clip(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(text.splitlines())
    return text if len(text) <= limit else text[:limit - 3] + "..."
