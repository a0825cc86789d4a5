"""Raw simulator rate of myoLegWalk-v0 with random actions and no learning, for the env
layouts lit_rl offers: all envs in this process, or `parallel` worker processes over shared
memory each stepping `sequential` envs.

    python bench/env_throughput.py [--steps 200] [--layouts 1x20 2x10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from summary import machine_line

from lit_rl.envs import EnvConfig, make_vector_envs

MYOLEG = EnvConfig(
    id="myoLegWalk-v0",
    make_kwargs={"reset_type": "random"},
    scaled_actions=False,
    muscle_sigmoid=True,  # as configs/dep_mpo_myolegwalk.yaml
    imports=["myosuite"],
)


def measure(parallel: int, sequential: int, steps: int, muscle_states: bool) -> float:
    envs = make_vector_envs(MYOLEG, parallel, sequential, seed=0, muscle_states=muscle_states)
    try:
        envs.reset()
        rng = np.random.default_rng(0)
        actions = [rng.uniform(-1, 1, (envs.num_envs, 80)).astype(np.float32) for _ in range(steps + 10)]
        for a in actions[:10]:
            envs.step(a)
        start = time.perf_counter()
        for a in actions[10:]:
            envs.step(a)
        return envs.num_envs * steps / (time.perf_counter() - start)
    finally:
        envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="vector steps per measurement")
    parser.add_argument("--layouts", nargs="+", default=["1x20", "2x10"], help="parallel x sequential")
    args = parser.parse_args()
    print(machine_line("mujoco", "myosuite"))
    print()
    print("| parallel x sequential | muscle states | env steps/s |")
    print("|---|---|---|")
    for layout in args.layouts:
        parallel, sequential = map(int, layout.split("x"))
        for muscles in (False, True):
            rate = measure(parallel, sequential, args.steps, muscles)
            print(f"| {parallel} x {sequential} | {'yes' if muscles else 'no'} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
