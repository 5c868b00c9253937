"""Your own GAN as a factory: a function that builds the networks, named `pkg.mod:fn` or `path/to/gan.py:fn`.

A factory returns (G, D), a ddls Model, or a dict of `ddls.wrap` arguments. Marked with
`@ddls.factory`, it also tags what it builds with its name and arguments, so that
`ddls.save` can record them and a later load can call it again to rebuild the networks.
A checkpoint that names a factory is only followed to a marked one: a file must not
choose which code runs (a factory given by the user is run whether marked or not).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import DDLSError
from ..io.checkpoint import Model

MARK = "__ddls_factory__"  # set on functions decorated with @ddls.factory
ORIGIN = "ddls_origin"  # set on the generator a marked factory built: its Origin
_FILE_MODULE_PREFIX = "ddls_factory_file_"


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
    if not sep or not where or not name:
        raise DDLSError(f"a model factory is named module:function or path/to/file.py:function, got {spec!r}")
    return where, name


def _is_file(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where


def _load_file(where: str) -> Any:
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise DDLSError(f"model factory file {where} not found")
    name = _FILE_MODULE_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DDLSError(f"loading model factory file {where} failed: {type(exc).__name__}: {exc}") from None
    return module


def _import(where: str, from_checkpoint: bool) -> Any:
    top = where.split(".")[0]
    if from_checkpoint and top in getattr(sys, "stdlib_module_names", ()):
        raise DDLSError(f"the checkpoint names {where}, a standard-library module, as its model factory; "
                        f"ddls does not run it")
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        raise DDLSError(f"model factory module {where!r} not found ({exc}); give an importable module "
                        f"(on PYTHONPATH) or a .py file path") from None
    except Exception as exc:
        raise DDLSError(f"importing model factory module {where} failed: {type(exc).__name__}: {exc}") from None


def resolve(spec: str, *, from_checkpoint: bool = False) -> Callable:
    """The function `spec` names. from_checkpoint: the name came from a file, so it must be marked."""
    where, name = _split(spec)
    module = _load_file(where) if _is_file(where) else _import(where, from_checkpoint)
    fn: Any = module
    for part in name.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise DDLSError(f"{where} has no model factory {name!r}")
    if not callable(fn):
        raise DDLSError(f"{spec} is not callable ({type(fn).__name__}); name the function that builds the networks")
    if from_checkpoint and not getattr(fn, MARK, False):
        raise DDLSError(f"the checkpoint names {spec} as its model factory, but that function is not marked "
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


def build_from(spec: str, kwargs: dict | None = None, *, from_checkpoint: bool = False) -> Model:
    """Call the factory `spec` names (with `kwargs`) and return its networks as a Model on the CPU."""
    fn = resolve(spec, from_checkpoint=from_checkpoint)
    try:
        result = fn(**(kwargs or {}))
    except DDLSError:
        raise
    except Exception as exc:
        raise DDLSError(f"model factory {spec} failed: {type(exc).__name__}: {exc}") from None
    model = as_model(result, spec)
    origin = getattr(model.generator, ORIGIN, None)
    model.meta = {**(model.meta or {}), "format": "own", "factory": spec, "factory_kwargs": dict(kwargs or {})}
    if origin is None:  # an unmarked factory given by the user: still recorded, for ddls.save
        setattr(model.generator, ORIGIN, Origin(spec, dict(kwargs or {})))
    return model.to("cpu")


def origin_of(generator: nn.Module) -> Origin | None:
    return getattr(generator, ORIGIN, None)
