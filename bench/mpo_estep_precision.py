"""Does bf16-mixed blur MPO's E-step as the critic's Q grows? For saved checkpoints of a DEP-MPO run:
the target critic's Q of ``num_samples`` target-policy actions per state, in float32 and under CPU
bf16 autocast (what ``precision: bf16-mixed`` runs), the E-step weights ``softmax(Q / eta)`` of
both, their total variation distance, and the cosine between the actor's policy-loss gradients
computed from the two sets of weights. The states come from the last checkpoint's exploring policy
from random starts, the same for every checkpoint. Prints a markdown table.

    python bench/mpo_estep_precision.py ~/lit_rl_runs/myoleg_walk/dep_mpo_seed0 \
        --steps 1200000 2000000 3000000 4000000 5000000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lit_rl.algos.mpo import gaussian_log_prob
from lit_rl.api import load_policy


def states(run: Path, step: int, count: int) -> torch.Tensor:
    policy = load_policy(run / "checkpoints" / f"step={step}.ckpt")
    env, rng = policy.make_env(), np.random.default_rng(0)
    observation, _ = env.reset(seed=0)
    collected = []
    while len(collected) < count:
        collected.append(np.asarray(observation, np.float32))
        with torch.no_grad():
            mean, std = policy.module.policy(torch.as_tensor(collected[-1])[None])
        action = policy.action_map((mean + std * torch.randn_like(mean)).numpy())[0]
        observation, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            observation, _ = env.reset(seed=int(rng.integers(1 << 30)))
    return torch.as_tensor(np.stack(collected))


def actor_gradient(module, observations, actions, target_mean, target_std, weights) -> torch.Tensor:
    module.actor.zero_grad()
    mean, std = module.policy(observations)
    log_prob_mean = gaussian_log_prob(actions, mean, target_std).sum(-1)  # MPO's decoupled M-step
    log_prob_std = gaussian_log_prob(actions, target_mean, std).sum(-1)
    (-(weights * (log_prob_mean + log_prob_std)).sum(0).mean()).backward()
    return torch.cat([p.grad.flatten() for p in module.actor.parameters()]).double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory with checkpoints/step=N.ckpt")
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="checkpoints to compare")
    parser.add_argument("--states", type=int, default=512)
    args = parser.parse_args()
    torch.manual_seed(0)
    observations = states(args.run, max(args.steps), args.states)
    print(
        "| env steps | Q mean | temperature | Q spread over the sampled actions | bf16 Q error | E-step weights: "
        "total variation | effective samples (of N) | actor gradient cosine |\n|---|---|---|---|---|---|---|---|"
    )
    for step in args.steps:
        module = load_policy(args.run / "checkpoints" / f"step={step}.ckpt").module
        torch.manual_seed(1)
        with torch.no_grad():
            actions, target_mean, target_std = module.sample_target_policy(observations)  # [N, B, A]
            q32 = module.q(observations, actions, target=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                q16 = module.q(observations, actions, target=True).float()
            temperature = module.dual(module.raw_temperature)
        w32, w16 = torch.softmax(q32 / temperature, 0), torch.softmax(q16 / temperature, 0)
        total_variation = 0.5 * (w32 - w16).abs().sum(0).mean()
        effective = (1 / (w32**2).sum(0)).mean()
        g32, g16 = (actor_gradient(module, observations, actions, target_mean, target_std, w) for w in (w32, w16))
        print(
            f"| {step:,} | {q32.mean():.1f} | {temperature.item():.2f} | {q32.std(0).mean():.2f} | "
            f"{(q16 - q32).abs().mean():.3f} | {total_variation:.3f} | {effective:.1f} of {len(actions)} | "
            f"{F.cosine_similarity(g32, g16, dim=0).item():.4f} |"
        )


if __name__ == "__main__":
    main()
