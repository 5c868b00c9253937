"""Print the commands of the README block marked `<!-- ci:NAME -->` (the fenced block right after the
marker), one per line, comments dropped: CI runs what the README tells a user to run, not a copy."""
import re
import sys
from pathlib import Path


def block(text: str, name: str) -> list[str]:
    marker = f"<!-- ci:{name} -->"
    if marker not in text:
        raise SystemExit(f"README.md has no {marker} marker before a fenced block")
    after = text.split(marker, 1)[1]
    fence = re.search(r"```[a-z]*\n(.*?)```", after, re.S)
    if fence is None:
        raise SystemExit(f"README.md's {marker} is followed by no fenced block")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in fence.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


if __name__ == "__main__":
    readme = Path(__file__).resolve().parents[1] / "README.md"
    print("\n".join(block(readme.read_text(), sys.argv[1])))
