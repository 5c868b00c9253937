"""Options from the environment: `--eps` of `ddls sample` is DDLS_SAMPLE_EPS.

The rule, for every option of every command: DDLS_, the command's path in capitals, then the
option's long name in capitals with dashes as underscores (`ddls inception install --from`
is DDLS_INCEPTION_INSTALL_FROM). Click's own automatic names follow the Python parameter
(DDLS_SWEEP_EPS_VALUES for `sweep --eps`), so each option gets its name set here instead.
A DDLS_* variable that is neither an option nor one of OTHER_VARIABLES draws a warning:
a misspelt name would otherwise be ignored in silence.
"""
from __future__ import annotations

import difflib
import os
from typing import Callable, Iterator

import click

PREFIX = "DDLS"
OTHER_VARIABLES = {  # read by ddls itself or its tests, not options
    "DDLS_FASHION_MNIST_DIR": "the folder of the Fashion-MNIST IDX files",
    "DDLS_TRUST_FACTORY": "model factories a `ddls.save` file may name and have run (1, or prefixes and paths)",
    "DDLS_CACHE_DIR": "where reference statistics and calibration fits are cached (off: no cache)",
    "DDLS_TEST_DEVICE": "the device the test suite runs on",
    "DDLS_FUZZ_EXAMPLES": "examples of the slow fuzz test",
}


def _token(text: str) -> str:
    return text.strip("-").replace("-", "_").upper()


def option_envvar(path: list[str], option: click.Option) -> str:
    longs = [o for o in option.opts if o.startswith("--")] or option.opts
    return "_".join([PREFIX, *map(_token, path), _token(max(longs, key=len))])


def _options(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Option]]:
    for param in [*command.params, *getattr(command, "registry_options", list)()]:
        if isinstance(param, click.Option) and param.expose_value:
            yield path, param
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _options(sub, [*path, name])


def name_envvars(group: click.Group) -> dict[str, str]:
    """Give every option of `group`'s commands its DDLS_<COMMAND>_<OPTION> name; returns name -> option."""
    names = {}
    for path, option in _options(group, []):
        if not path:
            continue
        option.envvar = option_envvar(path, option)
        option.allow_from_autoenv = False  # only the documented name, not click's parameter-based one
        names[option.envvar] = f"ddls {' '.join(path)} {max(option.opts, key=len)}"
    return names


def unknown_variables(known: dict[str, str], environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return sorted(k for k in env if k.startswith(PREFIX + "_") and k not in known and k not in OTHER_VARIABLES)


def warn_unknown(known: dict[str, str], echo: Callable[[str], None]) -> None:
    for name in unknown_variables(known):
        names = list(known) + list(OTHER_VARIABLES)
        near = [k for k in names if name.startswith(k + "_") or k.startswith(name + "_")][:1] or \
            difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        echo(f"warning: {name} is set but is no ddls setting, so it is ignored{hint}")
