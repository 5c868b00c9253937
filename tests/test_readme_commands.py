"""README.md's commands run as written.

A fenced block right after `<!-- runnable -->` is cheap and runs in the default suite; after
`<!-- runnable: slow -->` it runs with `-m slow`. Shell blocks run line by line through the `ddls`
of the Python that runs the tests; Python blocks run with that Python, except one whose first
line is `# NAME.py`, which is written to NAME.py for the blocks after it. Every block runs in one
scratch folder where `pretrained/` is the repository's. An untagged fence that follows a runnable
block is the output it shows, and is compared with what the command prints.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = re.compile(r"<!-- runnable(?::\s*(\w+))? -->\s*\n```(\w*)\n(.*?)```(?:\s*\n```\n(.*?)```)?", re.S)


@dataclass(frozen=True)
class Block:
    kind: str  # "cheap" or "slow"
    language: str  # "bash" or "python"
    code: str
    shown: str | None  # the output the README shows right after it, if any

    def commands(self) -> list[str]:
        lines = [re.sub(r"\s+#.*$", "", ln).strip() for ln in self.code.splitlines()]
        return [ln for ln in lines if ln and not ln.startswith("#")]


def blocks(text: str) -> list[Block]:
    return [Block(kind or "cheap", language, code, shown or None) for kind, language, code, shown in MARK.findall(text)]


def ddls_command() -> list[str]:
    """The `ddls` console script next to this Python (the venv's), else `python -m ddls`."""
    script = Path(sys.executable).with_name("ddls")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ddls"]


def scratch(tmp_path: Path) -> Path:
    (tmp_path / "pretrained").symlink_to(ROOT / "pretrained")
    return tmp_path


def run_block(block: Block, where: Path) -> list[str]:
    """Run `block` in `where`; returns what each command printed (stdout)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(where)}
    if block.language == "python":
        first = block.code.splitlines()[0].strip()
        if re.fullmatch(r"# [\w.]+\.py", first):
            (where / first[2:]).write_text(block.code)
            return []
        done = subprocess.run([sys.executable, "-c", block.code], cwd=where, env=env, capture_output=True,
                              text=True, timeout=1800)
        assert done.returncode == 0, f"README python block failed:\n{block.code}\n{done.stderr[-2000:]}"
        return [done.stdout]
    printed = []
    for line in block.commands():
        args = shlex.split(line)
        assert args[0] == "ddls", f"a runnable README command starts with ddls: {line}"
        done = subprocess.run(ddls_command() + args[1:], cwd=where, env=env, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, f"`{line}` failed:\n{done.stderr[-2000:]}"
        printed.append(done.stdout)
    return printed


def same_table(shown: str, printed: str, loose: set[str]) -> None:
    """The shown output and the printed one agree cell by cell; columns in `loose` (timings) are skipped,
    and numbers within 5% of each other count as equal (other CPUs round floats otherwise)."""
    rows = [ln.split() for ln in shown.strip().splitlines()]
    rows = [r for r in rows if len(r) == len(rows[0])]  # the table, without lines such as "wrote ..."
    got = [ln.split() for ln in printed.strip().splitlines()]
    got = [r for r in got if len(r) == len(rows[0])][-len(rows):]
    assert len(got) == len(rows), f"expected {len(rows)} lines, got:\n{printed}"
    head = rows[0]
    for want, have in zip(rows, got):
        assert len(want) == len(have), f"{have} against {want}"
        for column, a, b in zip(head + [""] * len(want), want, have):
            if column in loose:
                continue
            try:
                assert float(b) == pytest.approx(float(a), rel=0.05), f"{column}: {b} against {a}"
            except ValueError:
                assert a == b


def test_readme_has_runnable_blocks_of_both_kinds():
    found = blocks(README.read_text())
    assert {b.kind for b in found} == {"cheap", "slow"}
    assert any(b.language == "python" for b in found)


def test_every_runnable_command_parses():
    """Each `ddls` line of a runnable block names a command and options the CLI has (checked in process,
    nothing runs), and each file under pretrained/ it names exists."""
    from ddls.cli import cli

    for block in blocks(README.read_text()):
        if block.language != "bash":
            continue
        for line in block.commands():
            args = shlex.split(line)
            assert args[0] == "ddls", line
            command = cli.commands.get(args[1])
            assert command is not None, f"no command `ddls {args[1]}`"
            try:
                command.make_context(f"ddls {args[1]}", args[2:], resilient_parsing=False)
            except click.exceptions.Exit:
                pass
            except click.UsageError as exc:
                pytest.fail(f"`{line}`: {exc.format_message()}")
            for arg in args:
                if arg.startswith("pretrained/"):
                    assert (ROOT / arg).exists(), f"{line}: {arg} is not in the repository"


def test_readme_cheap_commands_print_what_it_shows(tmp_path):
    where = scratch(tmp_path)
    for block in (b for b in blocks(README.read_text()) if b.kind == "cheap"):
        printed = run_block(block, where)
        if block.shown is not None:
            assert printed[-1].strip() == block.shown.strip()


@pytest.mark.slow
def test_readme_slow_blocks_run(tmp_path):
    """Every slow block, in README order in one folder (a later block may use an earlier one's files);
    a shown table is compared column by column, timings left out."""
    where = scratch(tmp_path)
    for block in (b for b in blocks(README.read_text()) if b.kind == "slow"):
        printed = run_block(block, where)
        if block.shown is not None and printed:
            same_table(block.shown, printed[-1], loose={"seconds"})


def test_the_extraction_sees_markers_fences_and_outputs():
    text = ("<!-- runnable -->\n```bash\nddls inspect --ckpt x.pt   # what it is\n# a comment\n```\n\n```\nout\n```\n"
            "<!-- runnable: slow -->\n```python\n# mod.py\nx = 1\n```\n```bash\nddls not-marked\n```\n")
    found = blocks(text)
    assert [(b.kind, b.language, b.shown) for b in found] == [("cheap", "bash", "out\n"), ("slow", "python", None)]
    assert found[0].commands() == ["ddls inspect --ckpt x.pt"]


def test_a_table_that_differs_is_caught():
    shown = "eps  emd  seconds\ngenerator  0.43  0.05\n"
    same_table(shown, "noise\neps  emd  seconds\ngenerator  0.431  9.9\n", loose={"seconds"})
    with pytest.raises(AssertionError):
        same_table(shown, "eps  emd  seconds\ngenerator  0.60  0.05\n", loose={"seconds"})
