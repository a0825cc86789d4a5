"""The adaptive energy replay option (deprl's ``AdaptiveEnergyBuffer``, algorithms.md section 8):
sampled rewards are relabelled with a muscle-energy cost whose weight grows once the agent's
episode scores pass a threshold and shrinks while they are below it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lit_rl.contract import Batch


@dataclass
class AdaptiveEnergyConfig:
    """deprl's ``AdaptiveEnergyBuffer`` arguments (``replay.adaptive_energy``).

    Args:
        num_acts: muscle activations, the last ``num_acts`` entries of the observation (18 for
            sconegym H0918, 22 for H1622, 90 for H2190).
        alpha: smoothing of the running score and success averages.
        threshold: episode score above which the energy cost weight grows.
        lr: step of the cost weight.
        lr_decimation: ``lr`` is multiplied by this when the score first passes the threshold
            (success average below 0.5).
        cost_function: 0 ``4 * sum(a + a^2 + a^3 + a^4)``, 1 the same with a mean over muscles,
            2 ``mean(a^3)``, 3 ``sum(a^3)``, 4 ``-sum(exp(-5 a))``.
    """

    num_acts: int
    alpha: float = 0.8
    threshold: float = 1000.0
    lr: float = 9e-4
    lr_decimation: float = 0.9
    cost_function: int = 3

    def __post_init__(self):
        if self.num_acts < 1:
            raise ValueError(f"replay.adaptive_energy.num_acts must be >= 1, got {self.num_acts}")
        if self.cost_function not in range(5):
            raise ValueError(f"replay.adaptive_energy.cost_function must be 0-4, got {self.cost_function}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"replay.adaptive_energy.alpha must be in [0, 1], got {self.alpha}")


def energy_cost(activations: torch.Tensor, cost_function: int) -> torch.Tensor:
    """Per-transition cost ``[B]`` of muscle activations ``[B, num_acts]`` (reduced over muscles
    only, unlike deprl, whose batch-wide ``np.sum`` gives every transition the same cost)."""
    a = activations
    if cost_function == 0:
        return 4 * (a + a**2 + a**3 + a**4).sum(-1)
    if cost_function == 1:
        return 4 * (a + a**2 + a**3 + a**4).mean(-1)
    if cost_function == 2:
        return (a**3).mean(-1)
    if cost_function == 3:
        return (a**3).sum(-1)
    return -torch.exp(-5 * a).sum(-1)


class AdaptiveEnergy:
    """The adaptive cost weight and the reward relabelling. The DataModule feeds it the score of
    every finished episode of its first env and relabels every sampled batch."""

    def __init__(self, config: AdaptiveEnergyConfig, observation_dim: int):
        if config.num_acts > observation_dim:
            raise ValueError(
                f"replay.adaptive_energy.num_acts is {config.num_acts} but observations have only "
                f"{observation_dim} entries"
            )
        self.config = config
        self.action_cost = 0.0
        self.lr = config.lr
        self.score_avg = 0.0
        self.cdt_avg = 0.0

    def relabel(self, batch: Batch) -> None:
        """``r <- r - action_cost * cost(activations of next_obs)``, in place."""
        if self.action_cost == 0.0:
            return
        activations = batch.next_observations[:, -self.config.num_acts :]
        batch.rewards = batch.rewards - self.action_cost * energy_cost(activations, self.config.cost_function)

    def episode_finished(self, score: float) -> None:
        cfg = self.config
        self.score_avg = cfg.alpha * self.score_avg + (1 - cfg.alpha) * score
        above = self.score_avg > cfg.threshold
        if above and self.cdt_avg < 0.5:
            self.lr *= cfg.lr_decimation
            self.action_cost += self.lr
        elif above:
            self.action_cost += self.lr
        elif self.score_avg < cfg.threshold:
            self.action_cost -= self.lr
        self.cdt_avg = cfg.alpha * self.cdt_avg + (1 - cfg.alpha) * float(above)
        self.action_cost = min(max(self.action_cost, 0.0), 100.0)

    def metrics(self) -> dict[str, float]:
        return {
            "energy/action_cost": self.action_cost,
            "energy/lr": self.lr,
            "energy/score_avg": self.score_avg,
            "energy/cdt_avg": self.cdt_avg,
        }

    def state_dict(self) -> dict[str, float]:
        return {"action_cost": self.action_cost, "lr": self.lr, "score_avg": self.score_avg, "cdt_avg": self.cdt_avg}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.action_cost, self.lr = state["action_cost"], state["lr"]
        self.score_avg, self.cdt_avg = state["score_avg"], state["cdt_avg"]
