"""Stable-Baselines3 DDPG, TD3 and SAC, and sb3-contrib's CrossQ, with the rl-baselines3-zoo hyperparameters: the
baselines of lit_rl's algorithms.

Trains ``--algo`` on ``--env`` (Pendulum-v1, or HalfCheetah-v5 with rl-zoo's MuJoCo settings) and,
every ``--eval-every`` environment steps, plays ``--eval-episodes`` episodes with the deterministic
policy on a separate env, episode ``i`` reset with seed ``seed + 1_000_000 + i`` (the lit_rl
evaluation protocol). Reports, per seed, the training wall time (evaluation excluded), the first
environment step at which the mean eval return is >= -200 (Pendulum), and the final eval return.

``ZOO`` holds rl-zoo's values (hyperparams/{ddpg,td3,sac,crossq}.yml at commit 22e3ff24, 2026-04-23;
its HalfCheetah-v4 entries, used for v5); what it does not set is SB3's (sb3-contrib's) default.
``--log-dir`` keeps each seed's evaluations as a CSV (``<algo>_<env>_seed<seed>.csv``: env steps,
eval return, training seconds so far).

    python bench/sb3_baseline.py --algo td3 --env Pendulum-v1 --seeds 0 1 2 --out bench_runs/sb3_td3.json
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import CrossQ
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise
from summary import report

ALGOS = {"ddpg": DDPG, "td3": TD3, "sac": SAC, "crossq": CrossQ}
# Per (algo, env): rl-zoo's arguments; noise_std is rl-zoo's `noise_type: normal` with that std,
# added by SB3 to the action rescaled to [-1, 1].
ZOO = {
    ("ddpg", "Pendulum-v1"): dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, noise_std=0.1,
                                  gradient_steps=1, train_freq=1, learning_rate=1e-3, net_arch=[400, 300]),
    ("td3", "Pendulum-v1"): dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, noise_std=0.1,
                                 gradient_steps=1, train_freq=1, learning_rate=1e-3, net_arch=[400, 300]),
    ("sac", "Pendulum-v1"): dict(learning_rate=1e-3),
    ("td3", "HalfCheetah-v5"): dict(learning_starts=10_000, noise_std=0.1, train_freq=1, gradient_steps=1,
                                    learning_rate=1e-3, batch_size=256, net_arch=[400, 300]),
    ("sac", "HalfCheetah-v5"): dict(learning_starts=10_000),
    # CrossQ: a list net_arch is both the policy's and the critics' (sb3-contrib's default critics are 1024-1024)
    ("crossq", "Pendulum-v1"): dict(policy_delay=2, net_arch=[256, 256]),
    ("crossq", "HalfCheetah-v5"): dict(buffer_size=1_000_000, learning_rate=1e-3, learning_starts=5_000,
                                       policy_delay=3, net_arch=dict(pi=[256, 256], qf=[2048, 2048])),
}  # fmt: skip


class EvalTimer(BaseCallback):
    """Evaluates every ``eval_every`` env steps and keeps the time it spends doing so."""

    def __init__(self, env_id: str, seed: int, eval_every: int, eval_episodes: int):
        super().__init__()
        self.seed = seed
        self.eval_every = eval_every
        self.eval_episodes = eval_episodes
        self.eval_env = gym.make(env_id)
        self.eval_seconds = 0.0
        self.curve: list[tuple[int, float]] = []
        self.train_seconds_at: list[float] = []  # training time (evaluation excluded) at each evaluation
        self.start = time.perf_counter()  # run() sets it again right before learn()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_every == 0:
            start = time.perf_counter()
            self.train_seconds_at.append(start - self.start - self.eval_seconds)
            self.curve.append((self.num_timesteps, self._evaluate()))
            self.eval_seconds += time.perf_counter() - start
        return True

    def _evaluate(self) -> float:
        returns = []
        for index in range(self.eval_episodes):
            # Fixed per-episode seeds make evaluations comparable across steps and with lit_rl.
            obs, _ = self.eval_env.reset(seed=self.seed + 1_000_000 + index)
            total, done = 0.0, False
            while not done:
                action, _ = self.model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = self.eval_env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns))

    def _on_training_end(self) -> None:
        self.eval_env.close()


def make_model(algo: str, env_id: str, seed: int):
    settings = dict(ZOO[(algo, env_id)])
    env = gym.make(env_id)
    if "noise_std" in settings:
        n_actions = env.action_space.shape[0]
        std = settings.pop("noise_std")
        settings["action_noise"] = NormalActionNoise(mean=np.zeros(n_actions), sigma=std * np.ones(n_actions))
    if "net_arch" in settings:
        settings["policy_kwargs"] = dict(net_arch=settings.pop("net_arch"))
    return ALGOS[algo]("MlpPolicy", env, seed=seed, verbose=0, **settings)


def write_log(path: Path, callback: EvalTimer) -> None:
    """One seed's evaluations, one row each: the per-epoch log behind a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_steps", "eval_return", "train_seconds"])
        for (steps, ret), seconds in zip(callback.curve, callback.train_seconds_at, strict=True):
            writer.writerow([steps, ret, f"{seconds:.3f}"])


def run(algo: str, env_id: str, seed: int, total_steps: int, eval_every: int, eval_episodes: int,
        log_dir: Path | None = None) -> dict:  # fmt: skip
    model = make_model(algo, env_id, seed)
    callback = EvalTimer(env_id, seed, eval_every, eval_episodes)
    callback.start = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    train_seconds = time.perf_counter() - callback.start - callback.eval_seconds
    curve = callback.curve
    if log_dir is not None:
        write_log(log_dir / f"{algo}_{env_id}_seed{seed}.csv", callback)
    reached = next((steps for steps, ret in curve if ret >= -200), None)
    return {
        "seed": seed,
        "train_seconds": train_seconds,
        "steps_to_minus_200": reached,
        "final_return": curve[-1][1] if curve else None,
        "curve": curve,
        "train_seconds_at": callback.train_seconds_at,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=sorted(ALGOS), default="ddpg")
    parser.add_argument("--env", default="Pendulum-v1", help=f"one of {sorted({env for _, env in ZOO})}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", help="JSON file to write the results to")
    parser.add_argument("--log-dir", type=Path, help="keep each seed's evaluations there as a CSV")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if (args.algo, args.env) not in ZOO:
        parser.error(f"no rl-zoo settings for {args.algo} on {args.env}; there are: {sorted(ZOO)}")
    runs = [
        run(args.algo, args.env, s, args.total_steps, args.eval_every, args.eval_episodes, args.log_dir)
        for s in args.seeds
    ]
    report(f"sb3_{args.algo}", runs, args.out, env=args.env)


if __name__ == "__main__":
    main()
