"""DEP's muscle-state sensor input, per env, from the simulator's muscle lengths and forces."""

from __future__ import annotations

import numpy as np
import torch


class MuscleState:
    """DEP's sensor input per env from actuator lengths ``l`` and forces ``f`` (MuJoCo's
    ``data.actuator_length`` / ``data.actuator_force``), with a per-env running min/max kept
    for the env's whole lifetime (updates skipped on NaN):

        x = 2 * ((l - min_l) / (max_l - min_l + 0.1) - 0.5) + force_scale * (f - min_f) / (max_f - min_f + 0.1)
    """

    def __init__(self, num_muscles: int, force_scale: float = 0.0):
        self.force_scale = force_scale
        self.max_l = np.zeros(num_muscles)
        self.min_l = np.full(num_muscles, 100.0)
        self.max_f = np.full(num_muscles, -100.0)
        self.min_f = np.full(num_muscles, 100.0)

    @staticmethod
    def read(env) -> tuple[np.ndarray, np.ndarray]:
        """Muscle lengths and forces: MuJoCo's actuator data, or a SCONE model's muscle arrays (sconegym)."""
        model = getattr(env.unwrapped, "model", None)
        if hasattr(model, "muscle_fiber_length_array"):
            return (
                np.asarray(model.muscle_fiber_length_array(), np.float64),
                np.asarray(model.muscle_force_array(), np.float64),
            )
        data = getattr(env.unwrapped, "data", None)
        if data is None or not hasattr(data, "actuator_length"):
            raise TypeError(
                f"{env.spec.id if env.spec else env}: no actuator data (env.unwrapped.data.actuator_length); "
                "muscle states, and so DEP, need a MuJoCo env with actuators or a sconegym env"
            )
        return np.asarray(data.actuator_length, np.float64), np.asarray(data.actuator_force, np.float64)

    def __call__(self, length: np.ndarray, force: np.ndarray) -> np.ndarray:
        if not np.isnan(length).any():
            np.maximum(self.max_l, length, out=self.max_l)
            np.minimum(self.min_l, length, out=self.min_l)
        if not np.isnan(force).any():
            np.maximum(self.max_f, force, out=self.max_f)
            np.minimum(self.min_f, force, out=self.min_f)
        x = 2.0 * ((length - self.min_l) / (self.max_l - self.min_l + 0.1) - 0.5)
        return x + self.force_scale * (force - self.min_f) / (self.max_f - self.min_f + 0.1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(getattr(self, name).copy()) for name in ("max_l", "min_l", "max_f", "min_f")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            getattr(self, name)[:] = value.numpy()
