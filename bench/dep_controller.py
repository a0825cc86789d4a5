"""Time per vector step of the DEP controller with learning active.

Default: 200 envs x 80 muscles (myoLeg), the myoLeg DEP settings (tau 40, time_dist 5,
buffer_size 200), CPU; the history is warmed first so every timed step rebuilds the controller
matrix from a full window. Prints the median and min–max milliseconds per ``step`` (target: a
median under 2 ms), and the same for deprl's default-file settings (tau 80, time_dist 60,
buffer_size 600).

    PYTHONPATH=. python bench/dep_controller.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
from summary import machine_line, spread

from lit_rl.acting.dep import DEPConfig, DEPController

MYOLEG = DEPConfig(kappa=1169.7, tau=40, buffer_size=200, bias_rate=0.002, time_dist=5, s4avg=2)


def step_ms(config: DEPConfig, envs: int, muscles: int, steps: int, device: str) -> list[float]:
    """Milliseconds of each of ``steps`` timed controller steps."""
    controller = DEPController(envs, muscles, config, device=device)
    inputs = torch.rand(64, envs, muscles, device=device) * 2 - 1
    for i in range(config.tau + config.time_dist + 10):  # warm-up: the sum runs over the full tau
        controller.step(inputs[i % 64])
    times = []
    for i in range(steps):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        controller.step(inputs[i % 64])
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=200)
    parser.add_argument("--muscles", type=int, default=80)
    parser.add_argument("--steps", type=int, default=500, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(machine_line())
    print(f"DEP step, {args.envs} envs x {args.muscles} muscles, {args.device}, {torch.get_num_threads()} threads")
    settings = {
        "myoLeg (tau 40, time_dist 5, buffer 200)": MYOLEG,
        "deprl default (tau 80, time_dist 60, buffer 600)": DEPConfig(),
    }
    for name, config in settings.items():
        ms = step_ms(config, args.envs, args.muscles, args.steps, args.device)
        print(f"  {name}: {spread(ms, lambda v: f'{v:.3f}')} ms per vector step, median (min–max) of {args.steps}")


if __name__ == "__main__":
    main()
