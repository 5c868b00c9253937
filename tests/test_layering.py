"""The import graph of ddls/: no cycle among modules, and no module importing from a layer above
its own, in the layer order that docs/architecture.md writes between `<!-- layers -->` markers.

Every import counts: module level, inside functions (lazy) and under TYPE_CHECKING.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ddls"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def module_files(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """{dotted module name: (file, is a package __init__)} for every .py file under `package`."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The modules of `known` that one import statement of `module` loads by name."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from pkg import sub` loads the module pkg.sub; `from pkg import name` loads pkg
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:  # `import ddls.x.y` of a name inside a module
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the ddls modules it imports}, from the source alone (nothing is imported)."""
    files = module_files(package)
    known = set(files)
    graph = {}
    for module, (path, is_package) in files.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= imported(module, is_package, node, known)
        graph[module] = edges - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def parse_layers(text: str) -> list[list[str]]:
    """The layers written between `<!-- layers -->` and `<!-- /layers -->`, bottom first: one layer a
    line, `name: module module ...`."""
    found = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", text, re.S)
    if found is None:
        raise AssertionError("docs/architecture.md has no <!-- layers --> ... <!-- /layers --> list")
    layers = []
    for line in found.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("```"):
            continue
        _, _, names = line.rpartition(":")
        layers.append(names.split())
    return layers


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The layer of the longest entry naming `module` or a package above it; the root package's entry
    (`ddls`) names the root alone."""
    best, best_len = None, -1
    for i, entries in enumerate(layers):
        for entry in entries:
            root = "." not in entry
            if module == entry or (not root and module.startswith(entry + ".")):
                if len(entry) > best_len:
                    best, best_len = i, len(entry)
    return best


def upward(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """'a (layer i) -> b (layer j)' for every import of a higher layer j > i."""
    return [f"{a} ({layer_of(a, layers)}) -> {b} ({layer_of(b, layers)})"
            for a in sorted(graph) for b in sorted(graph[a]) if layer_of(b, layers) > layer_of(a, layers)]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "modules that import each other (break the cycle): " + "; ".join(map(" <-> ".join, found))


def test_every_module_has_a_layer():
    layers = parse_layers(ARCHITECTURE.read_text())
    missing = sorted(m for m in module_files() if layer_of(m, layers) is None)
    assert not missing, f"add these to the layer list in docs/architecture.md: {', '.join(missing)}"


def test_no_upward_import():
    found = upward(import_graph(), parse_layers(ARCHITECTURE.read_text()))
    assert not found, "imports of a higher layer (see docs/architecture.md):\n" + "\n".join(found)


# the checks themselves, on a made-up package: they must see what they are meant to see

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "ddls" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "ddls"


def test_graph_sees_relative_lazy_and_submodule_imports(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from .low import thing\n",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from ..high import b\n",
        "low/c.py": "from . import a\nimport ddls.high.b as hb\n",
        "high/__init__.py": "",
        "high/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..low.a import f\n",
    })
    graph = import_graph(pkg)
    assert graph["ddls"] == {"ddls.low"}
    assert graph["ddls.low.a"] == {"ddls.high.b"}
    assert graph["ddls.low.c"] == {"ddls.low.a", "ddls.high.b"}
    assert graph["ddls.high.b"] == {"ddls.low.a"}
    assert cycles(graph) == [["ddls.high.b", "ddls.low.a"]]


def test_layers_are_parsed_and_upward_imports_found():
    layers = parse_layers("text\n<!-- layers -->\n```text\nbase: ddls.errors ddls.core\nlow: ddls.low\n"
                          "high: ddls.high ddls.low.run\ntop: ddls\n```\n<!-- /layers -->\n")
    assert layers == [["ddls.errors", "ddls.core"], ["ddls.low"], ["ddls.high", "ddls.low.run"], ["ddls"]]
    assert layer_of("ddls.low.x", layers) == 1
    assert layer_of("ddls.low.run", layers) == 2  # the longer entry wins
    assert layer_of("ddls.unlisted", layers) is None  # `ddls` names the root package alone
    graph = {"ddls.low.x": {"ddls.errors", "ddls.high.y"}, "ddls.low.run": {"ddls.high.y"}, "ddls": {"ddls.low.x"}}
    assert upward(graph, layers) == ["ddls.low.x (1) -> ddls.high.y (2)"]


@pytest.mark.parametrize("module", ["ddls.io.checkpoint", "ddls.io.resume", "ddls.metrics.intervals"])
def test_named_knots_stay_untied(module):
    """The ground floor (io) and the metrics import nothing from sampling, training, calibration or posthoc."""
    graph = import_graph()
    above = {m for m in graph[module] if m.split(".")[1] in ("sampling", "training", "calibration", "posthoc")}
    assert not above, f"{module} imports {sorted(above)}"
