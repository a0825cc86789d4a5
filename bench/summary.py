"""The per-seed and median summary shared by the Pendulum benchmark scripts."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def report(algo: str, runs: list[dict], out: str | None = None, **extra) -> dict:
    """Print each seed and the medians; write them to ``out`` as JSON. A seed that never
    reaches -200 counts as infinitely slow in the median."""
    reached = [r["steps_to_minus_200"] for r in runs]
    result = {
        "algo": algo,
        "env": "Pendulum-v1",
        **extra,
        "runs": runs,
        "median_steps_to_minus_200": statistics.median(r if r is not None else float("inf") for r in reached),
        "median_train_seconds": statistics.median(r["train_seconds"] for r in runs),
    }
    for r in runs:
        final = "n/a" if r["final_return"] is None else f"{r['final_return']:.1f}"
        print(f"seed {r['seed']}: train {r['train_seconds']:.1f} s, -200 at {r['steps_to_minus_200']}, final {final}")
    print(f"median: -200 at {result['median_steps_to_minus_200']}, train {result['median_train_seconds']:.1f} s")
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    return result


def rewrite_section(name: str, text: str) -> None:
    """Replace what lies between ``<!-- {name}:start -->`` and ``<!-- {name}:end -->`` in BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = BENCHMARKS_MD.read_text()
    if start not in old or end not in old:
        raise ValueError(f"BENCHMARKS.md has no {start} ... {end} section")
    new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: f"{start}\n{text}\n{end}", old, flags=re.S)
    BENCHMARKS_MD.write_text(new)
