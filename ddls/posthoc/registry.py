"""The post-hoc methods by name: each module registers its sampler with one decorator.

    @register("drs", DRSConfig, "discriminator rejection sampling",
              settings=[Setting("--drs-pilot", "pilot", click.IntRange(min=1), "...")],
              shared={"chunk_size": "batch_size"})
    def sample(target, n, config, *, seed=0): ...

An entry carries its config class (a frozen dataclass with `to_dict`), its sample function
`(target, n, config, *, seed, [draw_real], [progress]) -> PosthocResult`, how its config is made
from the command line's flat options, and its own options (`Setting`s, turned into click options
by ddls.cli). `ddls.posthoc.run`, `default_config`, `METHODS` and the CLI's `--method`,
`--methods` and post-hoc options all read the registry when they run, so a method registered
later (a plug-in, a test) is everywhere at once.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import click

from ..errors import DDLSError

# The flat options every command gives all methods (the Langevin ones and the chunk size);
# an entry's `shared` maps those it uses onto its config's fields.
SHARED = ("chunk_size", "steps", "eps", "noise_scale")
POSITIVE = click.FloatRange(min=0, min_open=True)  # the type of a step size setting
OPTIONAL_INPUTS = ("draw_real", "progress")  # passed to a sample function only when it takes them


@dataclass(frozen=True)
class Setting:
    """One field of a method's config as a command-line option: `flag` sets `config.<field>`."""

    flag: str  # "--drs-pilot"; its flat option name is "drs_pilot"
    field: str  # "pilot"
    type: Any = None  # a click ParamType (None: taken from the default)
    help: str = ""

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Method:
    name: str
    config: type  # frozen dataclass with to_dict()
    summary: str  # one line, for --method's help
    sample: Callable[..., Any]
    settings: tuple[Setting, ...] = ()
    shared: Mapping[str, str] = field(default_factory=dict)  # flat SHARED option -> config field
    make_config: Callable[..., Any] | None = None  # flat options -> config, when a field map is not enough
    needs_real: bool = False  # draws real samples (draw_real) whatever the calibration
    listed: bool = True  # False: a baseline row of `compare`, not a choice of --method
    inputs: tuple[str, ...] = ()  # which of OPTIONAL_INPUTS `sample` takes
    needs_logit: bool = False  # weighs samples by exp(d): a critic's arbitrary scale wrecks it

    def default(self, setting: Setting) -> Any:
        """The config's own default for a setting: the option's default, so the two cannot drift."""
        f = self.config.__dataclass_fields__[setting.field]
        return f.default if f.default is not dataclasses.MISSING else f.default_factory()

    def config_from(self, **flat: Any) -> Any:
        """The config from flat options; options it does not use are ignored, missing ones take its defaults."""
        if self.make_config is not None:
            return self.make_config(**flat)
        names = {**{s.name: s.field for s in self.settings}, **self.shared}
        return self.config(**{fld: flat[key] for key, fld in names.items() if key in flat})


_REGISTRY: dict[str, Method] = {}


def register(name: str, config: type, summary: str, *, settings=(), shared: Mapping[str, str] | None = None,
             make_config: Callable[..., Any] | None = None, needs_real: bool = False, listed: bool = True,
             needs_logit: bool = False):
    """Decorator: register the decorated sample function as method `name`; returns it unchanged."""
    def decorate(sample: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise DDLSError(f"a post-hoc method named {name!r} is already registered")
        taken = {s.name for m in _REGISTRY.values() for s in m.settings}.union(SHARED)
        clash = [s.flag for s in settings if s.name in taken]
        if clash:
            raise DDLSError(f"method {name!r}: option(s) {', '.join(clash)} are already taken; name them after it")
        fields = getattr(config, "__dataclass_fields__", {})
        bad = [s.flag for s in settings if s.field not in fields
               or fields[s.field].default is dataclasses.MISSING and fields[s.field].default_factory is dataclasses.MISSING]
        if bad:
            raise DDLSError(f"method {name!r}: option(s) {', '.join(bad)} name no field of {config.__name__} "
                            f"that has a default")
        params = inspect.signature(sample).parameters
        _REGISTRY[name] = Method(name, config, summary, sample, tuple(settings), dict(shared or {}), make_config,
                                 needs_real, listed, tuple(k for k in OPTIONAL_INPUTS if k in params), needs_logit)
        return sample

    return decorate


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> Method:
    if name not in _REGISTRY:
        raise DDLSError(f"unknown method {name!r}; choose one of {', '.join(names())}")
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """The methods one can choose, in registration order (baselines left out)."""
    return tuple(n for n, m in _REGISTRY.items() if m.listed)


def methods() -> tuple[Method, ...]:
    """Every entry, baselines included, in registration order."""
    return tuple(_REGISTRY.values())


def option_names() -> frozenset[str]:
    """Every flat option some method reads: SHARED and each entry's settings."""
    return frozenset(SHARED).union(s.name for m in _REGISTRY.values() for s in m.settings)
