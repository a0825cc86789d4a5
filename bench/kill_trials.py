"""Random-moment kill trials: runs of a small DDPG Pendulum and a small DEP-MPO myoLegWalk config
(2 env workers), each killed with SIGKILL at a random moment of one kind (collection, training,
evaluation, a save; the kinds take turns), then started again with the same command (resume on,
as a requeued job). Every trial must resume, lose at most the steps since its last save, leave
no stray file, and end bit for bit where the uninterrupted run ends (weights, optimizers, replay,
env states, RNGs, DEP state, Lightning's loop counters). Episodes are cut mid-way by every save.

Writes the ``kill-trials`` section of RELIABILITY.md (``--trials`` per config, 20 by default).

    python bench/kill_trials.py [--trials 20] [--configs ddpg dep_mpo] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from summary import ROOT, machine_line, rewrite_section

sys.path.insert(0, str(ROOT))
from tests.crash_helpers import MOMENTS, TRIAL_CONFIGS, Trial, run_trials  # noqa: E402


def table(results: dict[str, list[Trial]], seed: int) -> str:
    lines = [
        machine_line("myosuite"),
        "",
        f"`python bench/kill_trials.py --trials {len(next(iter(results.values())))} --seed {seed}`",
        "",
        "| config | trials | moments hit (collection / training / evaluation / save) | resumed | "
        "identical to the uninterrupted run | stray files | steps lost: median, max (save every) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, trials in results.items():
        hits = " / ".join(str(sum(t.moment == m for t in trials)) for m in MOMENTS)
        lost = [t.lost for t in trials if t.resumed]
        lines.append(
            f"| {TRIAL_CONFIGS[name][0]} | {len(trials)} | {hits} | {sum(t.resumed for t in trials)} | "
            f"{sum(t.identical for t in trials)} | {sum(not t.clean for t in trials if t.resumed)} | "
            f"{statistics.median(lost):.0f}, {max(lost)} ({TRIAL_CONFIGS[name][2]}) |"
        )
    problems = [
        f"- {name} trial {i} ({t.target}): {t.problem}"
        for name, ts in results.items()
        for i, t in enumerate(ts)
        if t.problem
    ]
    return "\n".join(lines + ([""] + problems if problems else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--configs", nargs="+", default=list(TRIAL_CONFIGS), choices=list(TRIAL_CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill_trials_") as root:
        results = {name: run_trials(name, args.trials, args.seed, Path(root)) for name in args.configs}
    text = table(results, args.seed)
    rewrite_section("kill-trials", text, ROOT / "RELIABILITY.md")
    print(text)


if __name__ == "__main__":
    main()
