"""Learning speed and wall time of Stable-Baselines3 DDPG on Pendulum-v1: the baseline for lit_rl.

Trains SB3 DDPG with the rl-baselines3-zoo hyperparameters for Pendulum-v1 and, every
``--eval-every`` environment steps, plays ``--eval-episodes`` episodes with the deterministic
policy on a separate env, episode ``i`` reset with seed ``seed + 1_000_000 + i`` (the lit_rl
evaluation protocol). Reports, per seed, the training wall time (evaluation excluded), the first
environment step at which the mean eval return is >= -200, and the final eval return.

    python bench/sb3_ddpg_pendulum.py --seeds 0 1 2 --out bench_runs/sb3_ddpg.json
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DDPG
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise
from summary import report

ENV_ID = "Pendulum-v1"


class EvalTimer(BaseCallback):
    """Evaluates every ``eval_every`` env steps and keeps the time it spends doing so."""

    def __init__(self, seed: int, eval_every: int, eval_episodes: int):
        super().__init__()
        self.seed = seed
        self.eval_every = eval_every
        self.eval_episodes = eval_episodes
        self.eval_env = gym.make(ENV_ID)
        self.eval_seconds = 0.0
        self.curve: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_every == 0:
            start = time.perf_counter()
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


def make_model(seed: int) -> DDPG:
    env = gym.make(ENV_ID)
    n_actions = env.action_space.shape[0]
    # As rl-zoo builds it from `noise_std: 0.1`. SB3 adds the noise to the action rescaled to
    # [-1, 1], so this is a std of 0.2 in Pendulum's torque units.
    noise = NormalActionNoise(mean=np.zeros(n_actions), sigma=0.1 * np.ones(n_actions))
    return DDPG(
        "MlpPolicy",
        env,
        gamma=0.98,
        buffer_size=200_000,
        learning_starts=10_000,
        action_noise=noise,
        gradient_steps=1,
        train_freq=1,
        learning_rate=1e-3,
        policy_kwargs=dict(net_arch=[400, 300]),
        seed=seed,
        verbose=0,
    )


def run(seed: int, total_steps: int, eval_every: int, eval_episodes: int) -> dict:
    model = make_model(seed)
    callback = EvalTimer(seed, eval_every, eval_episodes)
    start = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    train_seconds = time.perf_counter() - start - callback.eval_seconds
    curve = callback.curve
    reached = next((steps for steps, ret in curve if ret >= -200), None)
    return {
        "seed": seed,
        "train_seconds": train_seconds,
        "steps_to_minus_200": reached,
        "final_return": curve[-1][1] if curve else None,
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", help="JSON file to write the results to")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    runs = [run(seed, args.total_steps, args.eval_every, args.eval_episodes) for seed in args.seeds]
    report("sb3_ddpg", runs, args.out)


if __name__ == "__main__":
    main()
