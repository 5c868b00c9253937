"""The documentation site: every page in the navigation, the API page covering `ddls.__all__`, the
pages free of words about how or when they were written, and (slow) `mkdocs build --strict`."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# words that date a page or speak of who wrote it on which machine, not of the project
DIARY = re.compile(r"\b((?<![\w-])20\d\d-\d\d-\d\d(?![\w-])|sessions?|this machine|today|yesterday|was lent|no GPU was|"
                   r"[Ii]ssue \d+|measured on the shared|later on|earlier section)\b")


def nav_pages(text: str) -> set[str]:
    return set(re.findall(r":\s*([\w/.-]+\.md)\s*$", text, re.M))


def test_every_page_is_in_the_navigation_and_exists():
    nav = nav_pages((ROOT / "mkdocs.yml").read_text())
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav == pages, f"in docs/ but not in mkdocs.yml: {sorted(pages - nav)}; missing: {sorted(nav - pages)}"


def test_the_api_page_documents_every_exported_name():
    import ddls

    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    assert hooks.MARKER in (DOCS / "api.md").read_text()
    rendered = hooks.on_page_markdown(hooks.MARKER, None, None, None)
    documented = set(re.findall(r"^::: ddls\.(\w+)$", rendered, re.M))
    assert documented == set(ddls.__all__)


def test_the_cli_page_is_generated_from_the_command_group():
    text = (DOCS / "cli.md").read_text()
    assert "::: mkdocs-click" in text and ":module: ddls.cli" in text and ":command: cli" in text


@pytest.mark.parametrize("page", ["README.md", "pretrained/README.md",
                                  *sorted(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md"))])
def test_pages_speak_of_the_project_not_of_how_they_were_written(page):
    found = [m.group(0) for m in DIARY.finditer((ROOT / page).read_text())]
    assert not found, f"{page}: {found[:5]}"


def test_the_diary_check_can_fail():
    assert DIARY.search("Run on 2026-11-23 in the third session")
    assert not DIARY.search("DDLS at T = 0.3, eps 1e-4, 100 steps")


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocs_click")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").exists()
    cli_page = (tmp_path / "site" / "cli" / "index.html").read_text()
    from ddls.cli import cli

    for name in cli.commands:
        assert f"ddls {name}" in cli_page, f"the CLI reference lacks `ddls {name}`"
