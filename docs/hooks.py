"""MkDocs hook: the Python API page lists every name in `ddls.__all__`, read from the package at build
time, so a name added to the API appears in the reference without editing the page."""
from __future__ import annotations

import importlib
import inspect

MARKER = "<!-- api: ddls.__all__ -->"


def api_blocks() -> str:
    ddls = importlib.import_module("ddls")
    blocks = []
    for name in sorted(ddls.__all__, key=str.lower):
        obj = getattr(ddls, name)
        if inspect.ismodule(obj):  # a namespace of the API: its own __all__, one level deep
            members = "\n".join(f"        - {m}" for m in getattr(obj, "__all__", []))
            blocks.append(f"::: ddls.{name}\n    options:\n      show_root_full_path: true\n"
                          f"      heading_level: 2\n      members:\n{members}\n")
        else:
            blocks.append(f"::: ddls.{name}\n")
    return "\n".join(blocks)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, api_blocks())
    return markdown
