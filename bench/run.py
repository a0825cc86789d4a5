"""`make bench`: DDPG on Pendulum-v1, lit_rl against Stable-Baselines3, seeds 0-2, one run;
then the DEP-MPO myoLegWalk throughput and DEP controller timings (bench/dep_mpo_throughput.py);
then Dyna against DDPG on Pendulum-v1 by real environment steps (bench/dyna_pendulum.py).

Both Pendulum sides run one after the other on this machine, so their wall times compare as a
ratio. Writes bench_runs/*.json and rewrites the tables in BENCHMARKS.md.

    python bench/run.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from summary import rewrite_section

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_runs"


def run(script: str, seeds: list[str], out: Path) -> dict:
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--seeds", *seeds, "--out", str(out)], cwd=ROOT, check=True
    )
    return json.loads(out.read_text())


def fmt_steps(value) -> str:
    return "never" if value is None or value == float("inf") else f"{int(value):,}"


def table(ours: dict, sb3: dict) -> str:
    lines = [
        "| implementation | seed | steps to test return >= -200 | final test return | training time (s) |",
        "|---|---|---|---|---|",
    ]
    for name, result in (("lit_rl DDPG", ours), ("SB3 DDPG (rl-zoo)", sb3)):
        for r in result["runs"]:
            lines.append(
                f"| {name} | {r['seed']} | {fmt_steps(r['steps_to_minus_200'])} | "
                f"{r['final_return']:.1f} | {r['train_seconds']:.1f} |"
            )
        lines.append(
            f"| **{name}** | median | **{fmt_steps(result['median_steps_to_minus_200'])}** | | "
            f"**{result['median_train_seconds']:.1f}** |"
        )
    ratio = ours["median_train_seconds"] / sb3["median_train_seconds"]
    lines.append("")
    lines.append(
        f"lit_rl / SB3 median training time: **{ratio:.2f}**. Measured {time.strftime('%Y-%m-%d')} on "
        f"{platform.machine()}, {platform.python_version()}, one `make bench` run."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    ours = run("lit_rl_pendulum.py", args.seeds, OUT / "lit_rl_ddpg_pendulum.json")
    sb3 = run("sb3_ddpg_pendulum.py", args.seeds, OUT / "sb3_ddpg_pendulum.json")
    report = table(ours, sb3)
    print(report)
    rewrite_section("pendulum-table", report)
    subprocess.run([sys.executable, str(ROOT / "bench" / "dep_mpo_throughput.py")], cwd=ROOT, check=True)
    dyna = [sys.executable, str(ROOT / "bench" / "dyna_pendulum.py"), "--seeds", *args.seeds]
    subprocess.run(dyna, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
