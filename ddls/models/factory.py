"""Your own GAN as a factory: a function that builds the networks, named `pkg.mod:fn` or `path/to/gan.py:fn`.

A factory returns (G, D), a ddls Model, or a dict of `ddls.wrap` arguments. Marked with
`@ddls.factory`, it also tags what it builds with its name and arguments, so that
`ddls.save` can record them and a later load can call it again to rebuild the networks.
A checkpoint names its factory as data only: ddls imports it when the user names it
(`--model`, `factory=`) or allows it (`--trust-factory`, `trust_factory=`, DDLS_TRUST_FACTORY),
and then follows it to a marked function alone (a factory the user names runs marked or not).
No `__main__` module is ever imported: importing one runs a program.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from torch import nn

from ..errors import DDLSError
from ..core.model import Model

MARK = "__ddls_factory__"  # set on functions decorated with @ddls.factory
ORIGIN = "ddls_origin"  # set on the generator a marked factory built: its Origin
_FILE_MODULE_PREFIX = "ddls_factory_file_"
TRUST_VARIABLE = "DDLS_TRUST_FACTORY"  # 1: trust what a checkpoint names; or module prefixes and paths, by commas
_YES = {"1", "true", "yes", "on", "all"}
_NO = {"", "0", "false", "no", "off", "none"}


@dataclass(frozen=True)
class Origin:
    """Which factory built a pair of networks, and with which arguments (plain JSON data)."""

    spec: str  # pkg.mod:fn or /abs/path/gan.py:fn
    kwargs: dict = field(default_factory=dict)

    def to_json(self) -> str:
        try:
            return json.dumps(self.kwargs, sort_keys=True)
        except (TypeError, ValueError):
            raise DDLSError(f"the arguments of factory {self.spec} are not plain data (numbers, strings, lists, "
                            f"dicts), so they cannot be saved: {self.kwargs!r}") from None


@dataclass(frozen=True)
class Trust:
    """Which factories a checkpoint may name and have imported: every one, or those under the module
    prefixes (`mygan`, `lab.models`) and paths (a .py file, or a folder such as `./gans/`) in `allowed`."""

    everything: bool = False
    allowed: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: "bool | str | Iterable[str] | Trust | None") -> "Trust":
        """True/False, '1'/'0' (and yes/no, true/false), or module prefixes and paths (a list, or one string
        separated by commas)."""
        if isinstance(value, Trust):
            return value
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(everything=True)
        if isinstance(value, str):
            word = value.strip()
            if word.lower() in _YES or word.lower() in _NO:
                return cls(everything=word.lower() in _YES)
            value = word.split(",")
        if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in value):
            raise DDLSError(f"trust_factory takes True, False, or module prefixes and paths (strings), "
                            f"got {type(value).__name__}")
        return cls(allowed=tuple(v.strip() for v in value if v.strip()))

    def allows(self, where: str) -> bool:
        if self.everything:
            return True
        if _is_file(where):
            path = _resolved(where)
            folders = [f for f in (_resolved(a) for a in self.allowed if _is_path(a)) if f is not None]
            return path is not None and any(path == f or f in path.parents for f in folders)
        return any(where == a or where.startswith(a + ".") for a in self.allowed if not _is_path(a))


_TRUST: ContextVar[Trust | None] = ContextVar("ddls_trust_factory", default=None)


def current_trust() -> Trust:
    """The trust set by `trusting` (--trust-factory, trust_factory=), else DDLS_TRUST_FACTORY's."""
    given = _TRUST.get()
    return given if given is not None else Trust.parse(os.environ.get(TRUST_VARIABLE))


@contextmanager
def trusting(trust: "bool | str | Iterable[str] | Trust | None") -> Iterator[None]:
    """Within the block, checkpoints may have the factories `trust` allows imported; None leaves it as it is."""
    if trust is None:
        yield
        return
    token = _TRUST.set(Trust.parse(trust))
    try:
        yield
    finally:
        _TRUST.reset(token)


def factory(fn: Callable) -> Callable:
    """Mark `fn` as a factory of networks: what it builds remembers `fn` and its arguments."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def build(*args, **kwargs):
        arguments = {}
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            else:
                arguments[name] = value
        result = fn(*args, **kwargs)
        generator = _generator_of(result)
        if generator is not None:
            setattr(generator, ORIGIN, Origin(spec_of(fn), arguments))
        return result

    setattr(build, MARK, True)
    return build


def spec_of(fn: Callable) -> str:
    """How to name `fn` so that a later process finds it: its module, or the file it was loaded from."""
    module = sys.modules.get(fn.__module__)
    name = fn.__qualname__
    if fn.__module__ == "__main__" or fn.__module__.startswith(_FILE_MODULE_PREFIX):
        file = getattr(module, "__file__", None)
        if file is None:
            raise DDLSError(f"factory {name} was defined interactively; define it in a module or a .py file "
                            f"so it can be found again")
        return f"{Path(file).resolve()}:{name}"
    return f"{fn.__module__}:{name}"


def _generator_of(result: Any) -> nn.Module | None:
    if isinstance(result, Model):
        return result.generator
    if isinstance(result, dict):
        result = result.get("generator")
        return result if isinstance(result, nn.Module) else None
    if isinstance(result, (tuple, list)) and result and isinstance(result[0], nn.Module):
        return result[0]
    return None


def _split(spec: str) -> tuple[str, str]:
    where, sep, name = str(spec).rpartition(":")
    if not sep or not where or not name or not str(spec).isprintable():
        raise DDLSError(f"a model factory is named module:function or path/to/file.py:function, "
                        f"got {shown(ascii(spec))}")
    return where, name


def _is_file(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where


def _is_path(allowed: str) -> bool:
    return _is_file(allowed) or allowed.startswith(("~", "."))


def _resolved(where: str) -> Path | None:
    try:
        return Path(where).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):
        return None


def _names_main(where: str) -> bool:
    if _is_file(where):  # a link named gan.py to a __main__.py counts too
        return "__main__.py" in (Path(where).name, getattr(_resolved(where), "name", None))
    return "__main__" in where.split(".")


def shown(spec: str, limit: int = 200) -> str:
    """`spec` fit for a one-line message: quoted when it holds odd characters, cut when long."""
    text = spec if spec.isprintable() else ascii(spec)
    return text if len(text) <= limit else text[:limit] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return shown(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__, 300)


def _guarded(what: str, action: Callable[[], Any]) -> Any:
    """action(), with any failure but Ctrl-C as one DDLSError: a module that calls sys.exit on import
    (a program's `__main__`) must not end ddls without a word."""
    try:
        return action()
    except (DDLSError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # SystemExit included
        raise DDLSError(f"{what} failed: {_first_line(exc)}") from None


def _load_file(where: str) -> Any:
    path = _resolved(where)
    if path is None or not path.is_file():
        raise DDLSError(f"model factory file {shown(where)} not found")
    name = _FILE_MODULE_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        _guarded(f"loading model factory file {shown(where)}", lambda: loader_spec.loader.exec_module(module))
    except DDLSError:
        del sys.modules[name]
        raise
    return module


@contextmanager
def _cwd_importable(where: str) -> Iterator[None]:
    """Module `where` found in the current folder too (mygan.py, or mygan/), as `python -m` finds it:
    the `ddls` console script does not put the current folder on sys.path."""
    cwd = os.getcwd()
    top = where.split(".")[0]
    if _is_file(where) or not (os.path.isfile(os.path.join(cwd, f"{top}.py"))
                               or os.path.isfile(os.path.join(cwd, top, "__init__.py"))):
        yield
        return
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)


def _import(where: str) -> Any:
    def load():
        try:
            return importlib.import_module(where)
        except ModuleNotFoundError as exc:
            if exc.name and (where == exc.name or where.startswith(exc.name + ".")):
                raise DDLSError(f"model factory module {shown(repr(where))} not found; give an importable module "
                                f"(on PYTHONPATH or in the current folder) or a .py file path") from None
            raise

    return _guarded(f"importing model factory module {shown(where)}", load)


def _check_allowed(where: str, spec: str, source: str | None) -> None:
    """Refuse, before anything is imported, a factory a file names that the user has not allowed."""
    named = f"{source or 'the checkpoint'} names its model factory {shown(spec)}"
    if not _is_file(where) and where.split(".")[0] in getattr(sys, "stdlib_module_names", ()):
        raise DDLSError(f"{named}, a standard-library module; ddls does not run it")
    trust = current_trust()
    if not trust.allows(where):
        but = f" (only {', '.join(trust.allowed)} are trusted)" if trust.allowed else ""
        raise DDLSError(f"{named}, and ddls runs no code a file names{but}: add --trust-factory to run it "
                        f"(DDLS_TRUST_FACTORY=1 for every run; trust_factory=True in Python), or name it "
                        f"yourself with --model {shown(spec)}")


def resolve(spec: str, *, from_checkpoint: bool = False, source: str | None = None) -> Callable:
    """The function `spec` names. from_checkpoint: the name came from a file (`source`), so it is imported
    only when trusted (see Trust) and must be marked @ddls.factory."""
    where, name = _split(spec)
    if _names_main(where):
        raise DDLSError(f"model factory {shown(spec)} is in a __main__ module, which runs a program when "
                        f"imported; ddls never imports one: name the module or .py file that defines it")
    if from_checkpoint:
        _check_allowed(where, spec, source)
    module = _load_file(where) if _is_file(where) else _import(where)
    fn: Any = module
    for part in name.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise DDLSError(f"{shown(where)} has no model factory {name!r}")
    if not callable(fn):
        raise DDLSError(f"{shown(spec)} is not callable ({type(fn).__name__}); name the function that builds "
                        f"the networks")
    if from_checkpoint and not getattr(fn, MARK, False):
        raise DDLSError(f"the checkpoint names {shown(spec)} as its model factory, but that function is not marked "
                        f"@ddls.factory; mark it, or give the factory yourself")
    return fn


def as_model(result: Any, spec: str) -> Model:
    """A factory's result as a Model: (G, D), a Model, or a dict of ddls.wrap arguments."""
    from .wrap import wrap

    wrong = (f"model factory {spec} returned {type(result).__name__}; it must return (generator, discriminator) "
             f"modules, a ddls Model, or a dict of ddls.wrap arguments")
    if isinstance(result, Model):
        return result
    if isinstance(result, dict):
        try:
            return wrap(**result)
        except TypeError as exc:
            raise DDLSError(f"model factory {spec} returned a dict that ddls.wrap does not take ({exc})") from None
    if isinstance(result, (tuple, list)):
        if len(result) != 2 or not all(isinstance(m, nn.Module) for m in result):
            raise DDLSError(wrong.replace(type(result).__name__, f"a {type(result).__name__} of "
                                          f"{', '.join(type(m).__name__ for m in result)}"))
        return wrap(*result)
    raise DDLSError(wrong)


def build_from(spec: str, kwargs: dict | None = None, *, from_checkpoint: bool = False,
               source: str | None = None) -> Model:
    """Call the factory `spec` names (with `kwargs`) and return its networks as a Model on the CPU.
    from_checkpoint: `spec` was read from the file `source` (see resolve)."""
    with _cwd_importable(_split(spec)[0]):  # also for imports the factory makes when called
        fn = resolve(spec, from_checkpoint=from_checkpoint, source=source)
        result = _guarded(f"model factory {shown(spec)}", lambda: fn(**(kwargs or {})))
    model = as_model(result, spec)
    origin = getattr(model.generator, ORIGIN, None)
    model.meta = {**(model.meta or {}), "format": "own", "factory": spec, "factory_kwargs": dict(kwargs or {})}
    if origin is None:  # an unmarked factory given by the user: still recorded, for ddls.save
        setattr(model.generator, ORIGIN, Origin(spec, dict(kwargs or {})))
    return model.to("cpu")


def origin_of(generator: nn.Module) -> Origin | None:
    return getattr(generator, ORIGIN, None)
