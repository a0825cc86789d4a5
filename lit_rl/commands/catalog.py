"""``python -m lit_rl algorithms [--readme docs/cli.md]``: the registered algorithms and their
``model.init_args`` keys as a Markdown table; with ``--readme`` it rewrites the table of that page
(between ``<!-- algorithms:start -->`` and ``<!-- algorithms:end -->``), which
tests/test_contract.py keeps equal to this."""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

LINKED = ("observation_dim", "action_bounds")  # linked from the DataModule by the CLI, not config keys


def own_keys(cls: type) -> tuple[list[str], type | None]:
    """The config keys ``cls.__init__`` declares, and the parent whose keys its ``**kwargs`` takes."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    keys = [p.name for p in parameters if p.name != "self" and p.name not in LINKED and p.kind != p.VAR_KEYWORD]
    forwards = any(p.kind == p.VAR_KEYWORD for p in parameters)
    return keys, (cls.__mro__[1] if forwards else None)


def algorithm_table() -> str:
    from lit_rl.algos import OffPolicyAlgorithm, algorithms

    root = Path(__file__).resolve().parents[2]
    base_keys, _ = own_keys(OffPolicyAlgorithm)
    lines = [
        "| `class_path` | file | summary | keys (besides the shared ones below) |",
        "|---|---|---|---|",
    ]
    for name, cls in algorithms().items():
        keys, parent = own_keys(cls)
        keys = [k for k in keys if k not in base_keys]
        listed = ", ".join(f"`{k}`" for k in keys)
        if parent is not None and parent is not OffPolicyAlgorithm:
            listed += f", and `{parent.__name__}`'s"
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ").replace("``", "`").rstrip(".")
        path = Path(inspect.getfile(cls)).resolve().relative_to(root)
        lines.append(f"| `lit_rl.algos.{name}` | `{path}` | {summary} | {listed} |")
    shared = ", ".join(f"`{k}`" for k in base_keys)
    lines += ["", f"Shared by every algorithm (`lit_rl.algos.OffPolicyAlgorithm`): {shared}."]
    return "\n".join(lines)


START, END = "<!-- algorithms:start -->", "<!-- algorithms:end -->"


def readme_table(text: str) -> str | None:
    """The table between the markers of a page's text (None without the markers)."""
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, flags=re.S)
    return match.group(1).rstrip("\n") if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lit_rl algorithms", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readme", type=Path, help="rewrite the algorithm table of this Markdown page (docs/cli.md)")
    args = parser.parse_args(argv)
    table = algorithm_table()
    if args.readme is None:
        print(table)
        return 0
    text = args.readme.read_text()
    if readme_table(text) is None:
        print(f"error: {args.readme} has no {START} ... {END} section", file=sys.stderr)
        return 2
    new = re.sub(re.escape(START) + r"\n.*?" + re.escape(END), lambda _: f"{START}\n{table}\n{END}", text, flags=re.S)
    args.readme.write_text(new)
    print(f"rewrote the algorithm table of {args.readme}")
    return 0
