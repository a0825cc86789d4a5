"""README.md and the pages it links (docs/*.md, BENCHMARKS.md, RELIABILITY.md): every relative
link points at a file that exists and, with an anchor, at a heading of that file; the README's
first screen holds the two commands and links every docs page."""

import re
from pathlib import Path

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "RELIABILITY.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def outside_code(text: str) -> list[str]:
    lines, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = [line.lstrip("#").strip() for line in outside_code(path.read_text()) if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for line in outside_code(page.read_text()):
            for target in LINK.findall(line):
                if target.startswith(("http://", "https://", "mailto:", "bench_runs/")):
                    continue  # bench_runs/: written by `make bench-quick`, not committed
                path, _, anchor = target.partition("#")
                file = (page.parent / path).resolve() if path else page
                if not file.exists() or anchor and file.suffix == ".md" and anchor not in anchors(file):
                    broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_readme_starts_with_the_two_commands_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make train" in first_screen and "make test" in first_screen
    linked = set(LINK.findall(readme))
    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} <= linked
