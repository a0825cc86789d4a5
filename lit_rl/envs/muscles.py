"""DEP's muscle-state sensor input, per env, from the simulator's muscle lengths and forces, and
where DEP reads and acts on a body (``DEPLayout``): its muscles, and the action dims that drive
them, on bodies that mix muscles with motors too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MUSCLE_DYNTYPE = 4  # mujoco.mjtDyn.mjDYN_MUSCLE: the activation dynamics of a <muscle> actuator


def dep_actuators(model) -> np.ndarray | None:
    """The actuators DEP reads on a MuJoCo body: the muscles (``actuator_dyntype`` muscle, as
    MyoSuite's own ``_muscle_act_ind``) of a body that has muscles and other actuators (motors, a
    prosthesis); None for every actuator, on a body of muscles only or without any muscle (a
    motor-driven robot: DEP reads its motors' lengths and forces, as deprl does)."""
    dyntype = getattr(model, "actuator_dyntype", None)
    if dyntype is None:
        return None
    muscles = np.asarray(dyntype) == MUSCLE_DYNTYPE
    if muscles.all() or not muscles.any():
        return None
    return np.flatnonzero(muscles)


class MuscleState:
    """DEP's sensor input per env from muscle lengths ``l`` and forces ``f`` (MuJoCo's
    ``data.actuator_length`` / ``data.actuator_force`` of the actuators ``dep_actuators`` names),
    with a per-env running min/max kept for the env's whole lifetime (updates skipped on NaN):

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
        """Muscle lengths and forces: MuJoCo's actuator data (the muscles only, on a body that also
        has other actuators), or a SCONE model's muscle arrays (sconegym)."""
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
        length, force = np.asarray(data.actuator_length, np.float64), np.asarray(data.actuator_force, np.float64)
        muscles = dep_actuators(model)
        if muscles is None:
            return length, force
        return length[muscles], force[muscles]

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


@dataclass(frozen=True)
class DEPLayout:
    """Where DEP reads and acts on one body.

    Attributes:
        actuators: the body's actuators (SCONE: its muscles); 0 without actuator data.
        muscles: the actuators DEP reads, one muscle state each (``MuscleState.read``).
        action_dims: the action dims DEP's outputs go to, in the order of ``muscles``; None: every
            action dim (the action space is the muscles: a body of muscles only, a motor-driven
            one, or one whose env drives its other actuators itself, as the OSL leg of
            myoChallengeOslRunFixed-v0). The other action dims get the policy's actions in DEP's
            steps (``lit_rl.acting.Actor``).
        problem: why DEP cannot act on this body (None: it can).
    """

    actuators: int
    muscles: int
    action_dims: tuple[int, ...] | None
    problem: str | None = None


def dep_layout(env) -> DEPLayout:
    """``env``'s ``DEPLayout`` (after a reset: a SCONE model reports its muscles once it is loaded).

    MuJoCo bodies: DEP reads the ``dep_actuators``. With one action per actuator (MyoSuite writes
    the action into ``data.ctrl`` in actuator order) the muscles' action dims are the muscles'
    actuator indices; with one action per muscle (the env drives the other actuators itself) it
    drives every action dim. Any other action space is a ``problem``: which action drives which
    muscle cannot be told."""
    name = env.spec.id if env.spec else type(env.unwrapped).__name__
    action_dim = int(np.prod(env.action_space.shape))
    model = getattr(env.unwrapped, "model", None)
    if hasattr(model, "muscle_fiber_length_array"):  # sconegym: every actuator is a muscle
        muscles = len(model.muscle_fiber_length_array())
        problem = None
        if muscles != action_dim:
            problem = f"{name}: DEP drives one action per muscle, but it has {muscles} muscles and {action_dim} actions"
        return DEPLayout(muscles, muscles, None, problem)
    data = getattr(env.unwrapped, "data", None)
    if data is None or not hasattr(data, "actuator_length"):
        return DEPLayout(
            0,
            0,
            None,
            f"{name} has no actuator data (env.unwrapped.data.actuator_length), so there are no muscle states for "
            "DEP to act on: DEP needs a MuJoCo env with actuators or a sconegym env",
        )
    actuators = len(data.actuator_length)
    if actuators == 0:
        return DEPLayout(0, 0, None, f"{name} has no actuators, so there are no muscle states for DEP to act on")
    index = dep_actuators(model)
    muscles = actuators if index is None else len(index)
    if action_dim == actuators:
        return DEPLayout(actuators, muscles, None if index is None else tuple(index.tolist()))
    if action_dim == muscles:
        return DEPLayout(actuators, muscles, None)
    return DEPLayout(
        actuators,
        muscles,
        None,
        f"{name}: DEP reads its {muscles} muscles, but its {action_dim} action dims are neither its {actuators} "
        "actuators nor its muscles, so which action drives which muscle is unknown",
    )
