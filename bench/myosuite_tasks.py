"""Every env id MyoSuite registers, through lit_rl's env path: the compatibility table
docs/myosuite_tasks.md (`make myosuite-tasks`).

Each id, in a process of its own (a crash, a hang or a leak stays there): the DataModule's probe
(`lit_rl.envs.probe_env`: made and reset once, Box spaces, where DEP reads and acts), then one env
of lit_rl's vector envs with muscle states (`SequentialEnvs`) stepped with uniform random actions
for `--seconds`: observation and action sizes, muscles and other actuators, whether DEP's inputs
(the muscle states) can be read, env steps/s, and for a failure the one-line reason lit_rl gives.
Variants (Sarc, Fati, Reaf) share their task's row.

    OMP_NUM_THREADS=1 python bench/myosuite_tasks.py [--ids ID ...] [--seconds 1] [--out docs/myosuite_tasks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANT = re.compile(r"^myo(Sarc|Fati|Reaf)(?=[A-Z])")  # myoSarcLegWalk-v0 is a variant of myoLegWalk-v0
RESULT = "MYOSUITE_TASK_RESULT "  # the line a task's process reports on


def myosuite_ids() -> list[str]:
    """The ids MyoSuite registers with Gymnasium, in registration order."""
    import gymnasium as gym
    import myosuite  # noqa: F401 - registers its ids

    return [name for name, spec in gym.registry.items() if "myosuite" in str(spec.entry_point)]


def base_task(env_id: str) -> tuple[str, str | None]:
    """``(task, variant)``: ``myoSarcLegWalk-v0`` -> ``(myoLegWalk-v0, Sarc)``."""
    match = VARIANT.match(env_id)
    return (f"myo{env_id[match.end() :]}", match[1]) if match else (env_id, None)


def measure(env_id: str, seconds: float) -> dict:
    """One id through lit_rl's env path (run in its own process by ``run_one``)."""
    import numpy as np

    from lit_rl.envs import EnvConfig, EnvUnsupported, SequentialEnvs, probe_env
    from lit_rl.envs.muscles import MUSCLE_DYNTYPE

    config = EnvConfig(id=env_id, scaled_actions=False, imports=["myosuite"])  # the DEP configs' env path
    result: dict = {"id": env_id, "ok": False}
    start = time.perf_counter()
    try:
        probe = probe_env(config)
    except EnvUnsupported as refused:
        result["reason"] = str(refused)
        return result
    result["make_s"] = time.perf_counter() - start
    dep = probe.dep
    result.update(
        observation=probe.observation_dim,
        action=int(np.prod(probe.action_space.shape)),
        actuators=dep.actuators,
        muscles=dep.muscles,
        dep_action_dims=None if dep.action_dims is None else len(dep.action_dims),
        dep_problem=dep.problem,
    )
    muscle_states = dep.problem is None
    try:
        envs = SequentialEnvs(config, 1, seed=0, muscle_states=muscle_states, probe=probe)
    except EnvUnsupported as refused:
        result["reason"] = str(refused)
        return result
    try:
        envs.reset()
        rng = np.random.default_rng(0)
        low, high = envs.action_space.low, envs.action_space.high
        steps, begun = 0, None
        while True:
            step = envs.step(rng.uniform(low, high, (1, len(low))).astype(np.float32))
            steps += 1
            if muscle_states and not np.isfinite(step.muscle_states).all():
                result["dep_problem"] = "muscle states not finite"
            if steps == 5:  # a few steps to warm up, then the clock
                begun = time.perf_counter()
            elif begun is not None and steps >= 25 and time.perf_counter() - begun >= seconds:
                break
        result["steps_per_s"] = (steps - 5) / (time.perf_counter() - begun)
        model = getattr(envs.group.envs[0].unwrapped, "model", None)
        dyntype = getattr(model, "actuator_dyntype", None)
        result["muscle_actuators"] = None if dyntype is None else int((np.asarray(dyntype) == MUSCLE_DYNTYPE).sum())
        result["faults"] = envs._faults_seen
        result["ok"] = True
    except Exception as error:  # noqa: BLE001 - any failure of a stepped env is a row of the table
        first = next((line for line in str(error).splitlines() if line.strip()), "")
        result["reason"] = f"stepping failed: {type(error).__name__}: {first[:200]}"
    finally:
        envs.close()
    return result


def run_one(env_id: str, seconds: float, timeout: float) -> dict:
    """``measure(env_id)`` in a fresh process; a crash or timeout is the row's reason."""
    command = [sys.executable, __file__, "--one", env_id, "--seconds", str(seconds)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"id": env_id, "ok": False, "reason": f"timed out after {timeout:g} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT):
            result = json.loads(line[len(RESULT) :])
            result["wall_s"] = time.perf_counter() - start
            return result
    last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no output")
    return {"id": env_id, "ok": False, "reason": f"the process ended with exit code {done.returncode}: {last[:200]}"}


# ----------------------------------------------------------------------------- the table


def _actuators(row: dict) -> str:
    """``56: 54 muscles + 2 other``."""
    if "actuators" not in row:
        return ""
    total, muscles = row["actuators"], row.get("muscle_actuators")
    if muscles is None:
        return str(total)
    if muscles == total:
        return f"{total} muscles"
    if muscles == 0:
        return f"{total} motors, no muscles"
    return f"{total}: {muscles} muscles + {total - muscles} other"


def _dep(row: dict) -> str:
    """Whether DEP's inputs can be read, and what DEP drives."""
    if "actuators" not in row:
        return ""
    if row["dep_problem"] is not None:
        return f"no: {_short(row['dep_problem'], row['id'])}"
    sensors, muscles = row["muscles"], row.get("muscle_actuators")
    if muscles == 0:
        return f"yes, {sensors} (no muscles: DEP reads the motors)"
    if row["dep_action_dims"] is not None:
        rest = row["action"] - row["dep_action_dims"]
        return f"yes, {sensors}; DEP drives {row['dep_action_dims']} of {row['action']} actions, the policy {rest}"
    if sensors < row["actuators"]:
        return f"yes, {sensors}; the actions are the muscles', the env drives the other actuators"
    return f"yes, {sensors}"


def _short(reason: str, env_id: str) -> str:
    """A refusal without the env's id, its pipes escaped, for a table cell."""
    for prefix in (f"env {env_id}: ", f"env {env_id} ", f"{env_id}: ", f"{env_id} "):
        reason = reason.removeprefix(prefix)
    return reason.replace("|", "\\|")


def _status(row: dict) -> str:
    if not row["ok"]:
        return f"**fails**: {_short(row['reason'], row['id'])}"
    faults = f" ({row['faults']} simulator faults)" if row.get("faults") else ""
    return f"ok{faults}"


def _variants(rows: list[dict], base: dict | None) -> str:
    """The variants of a task: their ids, and how they differ from the task's row (status, sizes)."""
    cells = []
    for row in rows:
        differs = []
        if row["ok"] != (base or {}).get("ok"):
            differs.append(_status(row))
        elif base is not None:
            for key in ("observation", "action", "muscles", "actuators"):
                if row.get(key) != base.get(key):
                    differs.append(f"{key} {row.get(key)}")
        cells.append(f"`{row['id']}`" + (f" ({'; '.join(differs)})" if differs else ""))
    return ", ".join(cells)


def table(results: list[dict], header: str) -> str:
    """docs/myosuite_tasks.md: a summary, then one row per task with its variants."""
    tasks: dict[str, dict] = {}
    for row in results:
        task, variant = base_task(row["id"])
        entry = tasks.setdefault(task, {"base": None, "variants": []})
        if variant is None:
            entry["base"] = row
        else:
            entry["variants"].append(row)
    working = sum(row["ok"] for row in results)
    mixed = sorted(
        {base_task(r["id"])[0] for r in results if r["ok"] and 0 < (r.get("muscle_actuators") or 0) < r["actuators"]}
    )
    failures: dict[str, list[str]] = {}
    for row in results:
        if not row["ok"]:
            failures.setdefault(_kind(row["reason"]), []).append(row["id"])
    lines = [
        "# MyoSuite tasks in lit_rl",
        "",
        header,
        "",
        f"**{len(results)} env ids** ({len(tasks)} tasks and their Sarc/Fati/Reaf variants): **{working} work** "
        f"(made, reset and stepped through lit_rl's vector envs with muscle states), "
        f"**{len(results) - working} fail**"
        + (
            ": " + "; ".join(f"{kind} ({len(ids)}: {', '.join(ids)})" for kind, ids in failures.items())
            if failures
            else ""
        )  # fmt: skip
        + ".",
        "",
        f"Bodies that mix muscles with other actuators ({len(mixed)} tasks: {', '.join(mixed)}): DEP reads and "
        "drives the muscles only, and in DEP's steps the other actuators get the policy's actions, or where the "
        "actions are the muscles' only, the env's own controller drives them (OslRun's OSL leg) "
        "([DEP on mixed bodies](dep.md#bodies-with-muscles-and-motors)).",
        "",
        "| task | observation | actions | actuators | DEP input (muscle states) | env steps/s | status | variants |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, entry in tasks.items():
        row = entry["base"] or entry["variants"][0]
        shown = entry["base"] is not None
        rate = f"{row['steps_per_s']:,.0f}" if row.get("steps_per_s") else ""
        cells = [
            f"`{task}`" if shown else f"({task} is not registered)",
            str(row.get("observation", "")),
            str(row.get("action", "")),
            _actuators(row),
            _dep(row),
            rate,
            _status(row),
            _variants(entry["variants"] if shown else entry["variants"][1:], row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _kind(reason: str) -> str:
    """The kind of a failure, for the summary."""
    if "downloads data" in reason:
        return "download at make or reset (no network here)"
    if "Box" in reason:
        return "non-Box spaces"
    if "timed out" in reason:
        return "timed out"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", nargs="+", help="these ids only (default: every id MyoSuite registers)")
    parser.add_argument("--seconds", type=float, default=1.0, help="random-action stepping measured per id")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one id may take in all")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "myosuite_tasks.md")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--note", default="", help="a sentence for the header, e.g. what else ran on the machine")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # measure one id in this process and report it
    args = parser.parse_args()
    if args.one:
        print(RESULT + json.dumps(measure(args.one, args.seconds)), flush=True)
        return
    from summary import machine_line

    ids = args.ids or myosuite_ids()
    started = time.perf_counter()
    results = []
    for number, env_id in enumerate(ids, 1):
        result = run_one(env_id, args.seconds, args.timeout)
        results.append(result)
        status = f"{result.get('steps_per_s', 0):,.0f} steps/s" if result["ok"] else result["reason"][:150]
        print(f"[{number}/{len(ids)}] {env_id}: {status} ({result.get('wall_s', 0):.0f} s)", flush=True)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    header = (
        f"Generated by `make myosuite-tasks` (`bench/myosuite_tasks.py`) in {(time.perf_counter() - started) / 60:.0f} "
        f"minutes. {machine_line('myosuite', 'mujoco')} Each id in a process of its own, made as the DEP configs make "
        "it (`scaled_actions: false`, `imports: [myosuite]`) and probed as `fit` probes it (made and reset once), "
        f"then one env of lit_rl's vector envs with muscle states stepped with uniform random actions; env steps/s "
        f"over about {args.seconds:g} s after 5 warm-up steps, OMP_NUM_THREADS={threads}, one env in one process "
        f"(no workers): a short measurement, so read it as an order of magnitude. {args.note}"
    ).strip()
    args.out.write_text(table(results, header))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}: {sum(r['ok'] for r in results)} of {len(results)} ids work")


if __name__ == "__main__":
    main()
