"""The full state of one env in the middle of an episode, to continue it exactly after a resume.

``capture(env, pristine)`` returns bytes; ``restore(env, state)`` writes them into a
freshly made env of the same config, which then continues the episode bit for bit. A state has
two parts:

- **Python state**: the attributes of every object of the wrapper chain (``TimeLimit``'s step
  counter, the task's targets, phase and step counters, observation history, RNGs, spaces),
  pickled together so objects shared between them stay shared. Simulator objects (MuJoCo's
  model, data and spec, renderers) are not pickled: a reference to one is restored as a
  reference to the new env's own.
- **Physics state**, from a ``Physics`` handler that recognises the env's simulator. For MuJoCo
  (MyoSuite, Gymnasium's MuJoCo tasks): ``mj_getState`` of everything the integrator reads, and
  the model fields the task changed (goal sites, terrain heights, masses) against the model the
  env was made with (``pristine``).

An env whose state cannot be captured this way (a simulator object that no handler knows, or an
attribute that does not pickle) raises ``Unsupported`` naming it; the caller falls back to
starting new episodes. A simulator adds support in one place: a ``Physics`` subclass in
``PHYSICS``.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np


class Unsupported(Exception):
    """This env's state cannot be captured (the message names the env and the attribute)."""


def wrapper_chain(env) -> list:
    """``env``, the wrappers inside it, and the unwrapped env last."""
    chain = [env]
    while hasattr(chain[-1], "env") and chain[-1] is not chain[-1].unwrapped:
        chain.append(chain[-1].env)
    return chain


def _package(value) -> str:
    return type(value).__module__.split(".")[0]


def _is_mujoco(value) -> bool:
    return _package(value) == "mujoco"


def _is_renderer(value) -> bool:
    return "Renderer" in type(value).__name__


class Physics:
    """A simulator's state. ``live(value)``: the simulator objects kept by reference (not
    pickled); ``pristine(env)``: what ``capture`` compares against, taken from a freshly made env."""

    @staticmethod
    def applies(env) -> bool:
        raise NotImplementedError

    @staticmethod
    def live(value) -> bool:
        raise NotImplementedError

    @staticmethod
    def pristine(env) -> Any:
        return None

    @staticmethod
    def capture(env, pristine) -> Any:
        raise NotImplementedError

    @staticmethod
    def restore(env, state) -> None:
        raise NotImplementedError


class MujocoPhysics(Physics):
    """``env.unwrapped.model`` / ``.data`` are a ``mujoco.MjModel`` / ``MjData``."""

    @staticmethod
    def applies(env) -> bool:
        import mujoco

        unwrapped = env.unwrapped
        return isinstance(getattr(unwrapped, "model", None), mujoco.MjModel) and isinstance(
            getattr(unwrapped, "data", None), mujoco.MjData
        )

    @staticmethod
    def live(value) -> bool:
        return _is_mujoco(value) or _is_renderer(value)

    @staticmethod
    def _model_arrays(model) -> dict[str, np.ndarray]:
        arrays = {name: getattr(model, name) for name in dir(model) if not name.startswith("_")}
        arrays = {name: value for name, value in arrays.items() if isinstance(value, np.ndarray)}
        arrays.update(
            {f"opt.{name}": np.asarray(getattr(model.opt, name)) for name in dir(model.opt) if not name.startswith("_")}
        )
        return arrays

    @staticmethod
    def pristine(env) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in MujocoPhysics._model_arrays(env.unwrapped.model).items()}

    @staticmethod
    def capture(env, pristine) -> dict:
        import mujoco

        model, data = env.unwrapped.model, env.unwrapped.data
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(model, spec))
        mujoco.mj_getState(model, data, state, spec)
        changed = {
            name: value.copy()
            for name, value in MujocoPhysics._model_arrays(model).items()
            if value.shape != pristine[name].shape
            or not np.array_equal(value, pristine[name], equal_nan=value.dtype.kind == "f")
        }
        return {"state": state, "model": changed}

    @staticmethod
    def restore(env, state) -> None:
        import mujoco

        model, data = env.unwrapped.model, env.unwrapped.data
        for name, value in state["model"].items():
            if name.startswith("opt."):
                setattr(model.opt, name[4:], value)
            else:
                getattr(model, name)[...] = value
        mujoco.mj_setState(model, data, state["state"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)  # derived quantities (sensors, actuator lengths) of the restored state


class NoPhysics(Physics):
    """Envs whose whole state is Python (Pendulum, classic control): renderers are kept."""

    @staticmethod
    def applies(env) -> bool:
        return True

    @staticmethod
    def live(value) -> bool:
        return _is_renderer(value) or _package(value) == "pygame"

    @staticmethod
    def capture(env, pristine) -> None:
        return None

    @staticmethod
    def restore(env, state) -> None:
        pass


PHYSICS: list[type[Physics]] = [MujocoPhysics, NoPhysics]  # the first that applies


def physics_of(env) -> type[Physics]:
    return next(physics for physics in PHYSICS if physics.applies(env))


def _live_objects(env, physics: type[Physics]) -> dict[int, tuple]:
    """id -> (chain index, attribute) of the chain objects and the simulator objects they hold."""
    chain = wrapper_chain(env)
    live = {id(obj): ("chain", i) for i, obj in enumerate(chain)}
    for i, obj in enumerate(chain):
        for name, value in vars(obj).items():
            if id(value) not in live and physics.live(value):
                live[id(value)] = ("attr", i, name)
    return live


def _env_name(env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


class _Pickler(pickle.Pickler):
    def __init__(self, file, live: dict[int, tuple], env):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.live, self.env, self.path = live, env, ""

    def persistent_id(self, obj):
        key = self.live.get(id(obj))
        if key is None and (_is_mujoco(obj) or _is_renderer(obj)):
            raise Unsupported(
                f"{_env_name(self.env)}: attribute {self.path} holds a {type(obj).__name__} that is not one "
                "of the env's own simulator objects"
            )
        return key


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, chain: list):
        super().__init__(file)
        self.chain = chain

    def persistent_load(self, key):
        if key[0] == "chain":
            return self.chain[key[1]]
        return getattr(self.chain[key[1]], key[2])


def capture(env, pristine=None) -> bytes:
    """The env's state as bytes (``Unsupported`` if it cannot be captured)."""
    physics = physics_of(env)
    chain = wrapper_chain(env)
    live = _live_objects(env, physics)
    attributes = [
        {
            name: value
            for name, value in vars(obj).items()
            if not (i and name == "env") and live.get(id(value), ("",))[0] != "attr"
        }
        for i, obj in enumerate(chain)
    ]
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, live, env)
    try:
        for i, attrs in enumerate(attributes):  # one pickler: objects shared across the chain stay shared
            for name, value in attrs.items():
                pickler.path = f"{type(chain[i]).__name__}.{name}"
                pickler.dump((i, name, value))
        pickler.dump(None)
    except Unsupported:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the attribute's pickling raised
        raise Unsupported(f"{_env_name(env)}: attribute {pickler.path} cannot be pickled ({error})") from None
    return pickle.dumps(
        {"physics": physics.__name__, "sim": physics.capture(env, pristine), "python": buffer.getvalue()}
    )


def restore(env, state: bytes) -> None:
    """Write a ``capture`` of an env of the same config into ``env`` (freshly made)."""
    state = pickle.loads(state)
    physics = physics_of(env)
    if physics.__name__ != state["physics"]:
        raise ValueError(
            f"{_env_name(env)}: the saved state is of a {state['physics']} env, this one is {physics.__name__}"
        )
    physics.restore(env, state["sim"])
    chain = wrapper_chain(env)
    unpickler = _Unpickler(io.BytesIO(state["python"]), chain)
    while (item := unpickler.load()) is not None:
        i, name, value = item
        vars(chain[i])[name] = value  # not setattr: no property or __setattr__ of the env runs
