"""``python -m lit_rl convert deprl_config.{yaml,json} > configs/mine.yaml``: a deprl experiment file as a
lit_rl config.

deprl runs the strings of its ``tonic`` block (``header``, ``agent``, ``environment``, ``trainer``) with
``exec``/``eval``. This module never does: it parses them with :mod:`ast` and reads the call tree. The only
values it computes are literals (numbers, strings, booleans, None), ``-x``/``+x`` of numbers and
``int(...)``/``float(...)`` of one such value; any other expression is a :class:`ConvertError` naming the
key and the expression.

Every deprl key that has no place in lit_rl is reported (one line each, on stderr from the CLI), never
dropped silently.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class ConvertError(ValueError):
    """A deprl config that cannot be converted (unknown agent, unreadable expression, bad value)."""


# --------------------------------------------------------------------------- what maps where

MPO = "lit_rl.algos.MPO"


def tonic_agents() -> dict[str, tuple[str, tuple[str, ...]]]:
    """deprl/tonic agent class -> (lit_rl class path, the names of its constructor's positional
    parameters), from the ``tonic_agents`` literal of every algorithm class in lit_rl/algos/. Read
    from the source, because importing the algorithms imports Lightning (seconds);
    tests/test_convert.py checks it against the imported classes."""
    agents = {}
    for path in sorted((Path(__file__).parents[1] / "algos").rglob("*.py")):  # packages (dyna/) too
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                if any(isinstance(t, ast.Name) and t.id == "tonic_agents" for t in targets):
                    for name, params in ast.literal_eval(statement.value).items():
                        agents[name] = (f"lit_rl.algos.{node.name}", tuple(params))
    return agents


AGENTS = tonic_agents()
DEP_FACTORY = "deprl.custom_agents.dep_factory"
DEP_MODES = range(5)  # deprl's dep_factory: 0 no DEP, 1 InitExplore, 2 DetSwitch, 3 StochSwitch, 4 pure DEP

# mpo_args (TunedMPO.set_params) that are MPO init_args, with their types.
MPO_ARGS = {"hidden_size": int, "lr_actor": float, "lr_critic": float, "lr_dual": float}
# mpo_args that TunedMPO.set_params writes into the replay.
MPO_ARGS_TO_REPLAY = ("batch_size", "return_steps")

BUFFERS = {
    "deprl.replays.buffers.Buffer",
    "deprl.vendor.tonic.replays.buffers.Buffer",
    "deprl.vendor.tonic.replays.Buffer",
    "tonic.replays.buffers.Buffer",
    "tonic.replays.Buffer",
}
BUFFER_PARAMS = (
    "size",
    "return_steps",
    "batch_iterations",
    "batch_size",
    "discount_factor",
    "steps_before_batches",
    "steps_between_batches",
)
# deprl Buffer argument -> lit_rl ReplayConfig field, in ReplayConfig's order.
REPLAY_KEYS = {
    "size": "size",
    "return_steps": "return_steps",
    "discount_factor": "discount",
    "batch_size": "batch_size",
    "steps_before_batches": "steps_before_batches",
    "steps_between_batches": "steps_between_batches",
    "batch_iterations": "batch_iterations",
}

# --- deprl's computation where lit_rl's defaults differ (docs/dep.md, "What differs from deprl") --------------
# tonic's actors never see the observation normaliser (Actor.initialize passes it into the encoder's
# action_space slot) and its MeanStd sums in float32; deprl's Sequential workers read the muscle state
# after a terminal step too; its trainer hands Buffer.ready the step count from before the vector step.
DEPRL_COMPUTATION = {
    "model": {"normalize_observations": "critic", "normalizer_statistics": "float32"},
    "data": {"terminal_muscle_range": True},  # with DEP only
    "replay": {"phase_clock": "before_step"},
}

# --- The adaptive energy replay ---------------------------------------------------------------------------
# deprl.custom_replay_buffers.AdaptiveEnergyBuffer (sconegym walk configs) is a Buffer whose own arguments
# become `replay.adaptive_energy` (lit_rl.data.AdaptiveEnergyConfig).
ADAPTIVE_ENERGY_BUFFERS = {
    "deprl.custom_replay_buffers.AdaptiveEnergyBuffer",
    "deprl.custom_replay_buffers.action_cost_replay.AdaptiveEnergyBuffer",
}
ADAPTIVE_ENERGY_INTEGERS = ("num_acts", "cost_function")
ADAPTIVE_ENERGY_KEYS = (*ADAPTIVE_ENERGY_INTEGERS, "alpha", "threshold", "lr", "lr_decimation")

# MyoSuite 3 changed these tasks' actions from [-1, 1] through a sigmoid (MyoSuite 2, deprl's) to raw
# activations in [0, 1]; `muscle_sigmoid: true` restores the mapping deprl's values were tuned with.
MYOSUITE3_RAW_ACTIVATIONS = re.compile(r"myo(Sarc|Fati)?Leg(\w*Walk|Directional\w+)-v\d+")
MUSCLE_SIGMOID = (
    "MyoSuite 3 takes raw activations in [0, 1] for this task where MyoSuite 2 (deprl) mapped [-1, 1] through "
    "1 / (1 + exp(-5 (a - 0.5))); the config sets muscle_sigmoid: true to keep deprl's mapping"
)
# MyoSuite 3 clips these all-muscle tasks' actions to [-1, 1] before its sigmoid, MyoSuite 2 did not:
# `normalize_act: false` makes the env take raw activations and `muscle_sigmoid: true` maps as MyoSuite 2.
MYOSUITE3_CLIPPED_SIGMOID = re.compile(r"myoChallenge(ChaseTag|Relocate)P\d-v\d+")
UNCLIPPED_SIGMOID = (
    "MyoSuite 3 clips this task's actions to [-1, 1] before its sigmoid, where MyoSuite 2 (deprl) took the sigmoid "
    "of the unclipped action; the config sets make_kwargs normalize_act: false (raw activations) and "
    "muscle_sigmoid: true to keep deprl's mapping"
)

ENV_BUILDERS = {"deprl.environments.Gym", "deprl.vendor.tonic.environments.Gym", "tonic.environments.Gym"}
# deprl's build_environment parameters before the gym.make keyword arguments.
GYM_PARAMS = ("name", "terminal_timeouts", "time_feature", "max_episode_steps", "scaled_actions", "header")

TRAINERS = {"deprl.custom_trainer.Trainer", "deprl.vendor.tonic.Trainer", "tonic.Trainer"}
TRAINER_PARAMS = ("steps", "epoch_steps", "save_steps", "test_episodes", "show_progress", "replace_checkpoint")
# deprl Trainer argument -> RolloutDataModule argument.
TRAINER_KEYS = {
    "steps": "total_steps",
    "epoch_steps": "epoch_steps",
    "save_steps": "save_steps",
    "test_episodes": "test_episodes",
}

# Header imports that are deprl's own machinery, not env registrations.
EXCLUDED_IMPORTS = {"deprl", "tonic", "gym", "gymnasium"}

NO_CODE = "lit_rl runs no code from configs"
SCONE_WORKING_DIR = (
    "deprl ignores working_dir for sconegym runs (they go to SCONE's results folder); "
    "lit_rl writes every run to <working_dir>/<name>, by default runs/<name>"
)
TONIC_UNUSED = {
    "before_training": NO_CODE,
    "after_training": NO_CODE,
    "environment_name": "deprl's log label; lit_rl names the run directory and the W&B run by `name`",
    "path": "deprl's output path; lit_rl writes to <working_dir>/<name>",
    "cpu_override": "lit_rl picks the device with the Lightning trainer (e.g. --trainer.accelerator cpu)",
}
TONIC_CONVERTED = {
    "header",
    "agent",
    "environment",
    "test_environment",
    "trainer",
    "parallel",
    "sequential",
    "seed",
    "name",
    "resume",
    "full_save",
    "checkpoint",
}
TOP_CONVERTED = {"tonic", "working_dir", "env_args", "test_env_args", "mpo_args", "DEP"}

Report = list[str]


def _report(report: Report, key: str, value: Any, why: str) -> None:
    report.append(f"deprl key {key} = {value!r}: {why}")


def _report_source(report: Report, key: str, node: ast.AST, why: str) -> None:
    """Report part of a deprl expression, as its source text (never evaluated)."""
    report.append(f"deprl key {key} = {ast.unparse(node)}: {why}")


# --------------------------------------------------------------------------- safe expression reading


class _Expression:
    """One deprl expression string, parsed (never evaluated), with errors that name its key."""

    def __init__(self, key: str, source: Any):
        self.key = key
        if not isinstance(source, str):
            raise ConvertError(f"{key}: expected a Python expression string, got {source!r}")
        self.source = source
        try:
            self.tree = ast.parse(source.strip(), mode="eval").body
        except SyntaxError as error:
            raise ConvertError(f"{key}: not a Python expression ({error.msg}): {source!r}") from None
        except (ValueError, RecursionError, MemoryError) as error:
            raise ConvertError(f"{key}: not a readable Python expression ({error}): {source!r}") from None

    def error(self, node: ast.AST, why: str) -> ConvertError:
        part = ast.unparse(node)
        whole = ast.unparse(self.tree)
        where = "" if part == whole else f" in {self.source.strip()!r}"
        return ConvertError(f"{self.key}: {why}: {part}{where}")

    def call(self, node: ast.AST, names: set[str] | dict[str, str], what: str) -> tuple[str, ast.Call]:
        """``node`` must be a call of one of ``names`` (dotted names); returns the name and the call."""
        name = _dotted(node.func) if isinstance(node, ast.Call) else None
        if name not in names:
            raise self.error(node, f"expected {what} ({', '.join(sorted(names))})")
        return name, node

    def bind(self, call: ast.Call, params: tuple[str, ...]) -> dict[str, ast.expr]:
        """The call's arguments by name: positional ones take the names in ``params``."""
        if len(call.args) > len(params):
            raise self.error(call, f"too many positional arguments (at most {len(params)}: {', '.join(params)})")
        bound: dict[str, ast.expr] = {}
        for name, arg in zip(params, call.args, strict=False):
            if isinstance(arg, ast.Starred):
                raise self.error(arg, "*arguments are not supported")
            bound[name] = arg
        for keyword in call.keywords:
            if keyword.arg is None:
                raise self.error(keyword.value, "**arguments are not supported")
            if keyword.arg in bound:
                raise self.error(call, f"argument {keyword.arg!r} given twice")
            bound[keyword.arg] = keyword.value
        return bound

    def value(self, node: ast.AST) -> Any:
        """A literal, ``-x``/``+x`` of a number, or ``int(x)``/``float(x)`` of one such number. Nothing else."""
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool | int | float | str)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.value(node.operand)
            if _is_number(operand):
                return -operand if isinstance(node.op, ast.USub) else +operand
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("int", "float")
            and len(node.args) == 1
            and not node.keywords
        ):
            argument = self.value(node.args[0])
            if _is_number(argument):
                try:
                    return int(argument) if node.func.id == "int" else float(argument)
                except (OverflowError, ValueError) as error:
                    raise self.error(node, str(error)) from None
        raise self.error(
            node,
            "unsupported expression (only literals, -x, +x and int()/float() of a number are read; nothing is run)",
        )

    def integer(self, node: ast.AST) -> int:
        value = self.value(node)
        try:
            return _integer(value)
        except ValueError:
            raise self.error(node, f"expected a whole number, got {value!r}") from None

    def boolean(self, node: ast.AST) -> bool:
        value = self.value(node)
        try:
            return _boolean(value)
        except ValueError:
            raise self.error(node, f"expected true or false, got {value!r}") from None


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> int:
    """An int from an int or an integral float (deprl writes step counts as 2e5); ValueError otherwise."""
    if _is_number(value) and math.isfinite(value) and value == int(value):
        return int(value)
    raise ValueError(value)


def _boolean(value: Any) -> bool:
    """deprl writes flags as true/false or 1/0."""
    if isinstance(value, bool):
        return value
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(value)


def _plain(key: str, value: Any, cast: Callable[[Any], Any]) -> Any:
    """A plain (non-expression) config value, as ``cast`` wants it."""
    try:
        if cast is float:
            if not _is_number(value):
                raise ValueError(value)
            return float(value)
        return cast(value)
    except ValueError:
        kind = {_integer: "a whole number", _boolean: "true or false", float: "a number"}.get(cast, "a valid value")
        raise ConvertError(f"{key}: expected {kind}, got {value!r}") from None


# --------------------------------------------------------------------------- the parts


def _header_imports(source: Any, report: Report) -> list[str]:
    """The modules ``tonic.header`` imports, minus deprl's machinery; the header itself is reported."""
    if source is None or source == "":
        if source is not None:
            _report(report, "tonic.header", source, f"{NO_CODE} (empty here)")
        return []
    if not isinstance(source, str):
        raise ConvertError(f"tonic.header: expected Python import statements, got {source!r}")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ConvertError(f"tonic.header: not Python code ({error.msg}): {source!r}") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ConvertError(f"tonic.header: not readable Python code ({error}): {source!r}") from None
    modules: list[str] = []
    skipped: list[str] = []
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            names = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            # `from myosuite.utils import gym` needs no entry of its own when `myosuite` is imported.
            if any(statement.module == name or statement.module.startswith(name + ".") for name in modules):
                continue
            names = [statement.module]
        else:
            skipped.append(ast.unparse(statement))
            continue
        for name in names:
            if name.split(".")[0] not in EXCLUDED_IMPORTS and name not in modules:
                modules.append(name)
    why = f"{NO_CODE}; its imports became env.imports {modules}"
    if skipped:
        why += f"; these statements are not converted: {'; '.join(skipped)}"
    _report(report, "tonic.header", source, why)
    return modules


def _convert_env(key: str, source: Any, env_args: dict, imports: list[str], report: Report) -> dict:
    """``deprl.environments.Gym('id', scaled_actions=False, **make_kwargs)`` -> an ``EnvConfig`` dict."""
    expr = _Expression(key, source)
    _, call = expr.call(expr.tree, ENV_BUILDERS, "an environment builder")
    bound = expr.bind(call, GYM_PARAMS)
    if "name" not in bound:
        raise expr.error(call, "the environment id (first argument) is missing")
    env_id = expr.value(bound.pop("name"))
    if not isinstance(env_id, str):
        raise expr.error(call, f"the environment id must be a string, got {env_id!r}")
    scaled_actions = expr.boolean(bound.pop("scaled_actions")) if "scaled_actions" in bound else True
    make_kwargs: dict[str, Any] = {}
    raw = MYOSUITE3_RAW_ACTIVATIONS.fullmatch(env_id) is not None
    clipped = MYOSUITE3_CLIPPED_SIGMOID.fullmatch(env_id) is not None and "normalize_act" not in bound
    muscle_sigmoid = not scaled_actions and (raw or clipped)
    if muscle_sigmoid:
        _report(report, f"{key}[scaled_actions]", scaled_actions, MUSCLE_SIGMOID if raw else UNCLIPPED_SIGMOID)
        if clipped:
            make_kwargs["normalize_act"] = False
    for name, node in bound.items():
        where = f"{key}[{name}]"
        if name == "terminal_timeouts":
            if expr.boolean(node):  # False is lit_rl's behaviour
                _report_source(report, where, node, "lit_rl always treats time limits as truncations, not terminals")
        elif name == "time_feature":
            if expr.boolean(node):
                _report_source(report, where, node, "lit_rl has no time-feature observation wrapper")
        elif name == "max_episode_steps":
            value = expr.value(node)
            if value != "default":  # "default" is the env's own limit, as in lit_rl
                make_kwargs["max_episode_steps"] = expr.integer(node)
        elif name == "header":
            _report_source(report, where, node, "deprl ignores this argument too")
        else:
            make_kwargs[name] = expr.value(node)
    return {
        "id": env_id,
        "scaled_actions": scaled_actions,
        **({"muscle_sigmoid": True} if muscle_sigmoid else {}),
        "make_kwargs": make_kwargs,
        "env_args": dict(env_args),
        "imports": list(imports),
    }


def _convert_adaptive_energy(expr: _Expression, energy: dict[str, ast.expr], call: ast.Call) -> dict:
    """AdaptiveEnergyBuffer's own arguments -> a ``replay.adaptive_energy`` dict."""
    if "num_acts" not in energy:
        raise expr.error(call, "AdaptiveEnergyBuffer needs num_acts (the number of muscle activations)")
    converted: dict[str, Any] = {}
    for name, node in energy.items():
        if name in ADAPTIVE_ENERGY_INTEGERS:
            converted[name] = expr.integer(node)
        else:
            value = expr.value(node)
            if not _is_number(value):
                raise expr.error(node, f"{name}: expected a number, got {value!r}")
            converted[name] = float(value)
    return converted


def _convert_replay(expr: _Expression, node: ast.AST, report: Report) -> dict:
    """``deprl.replays.buffers.Buffer(...)`` (or AdaptiveEnergyBuffer) -> a ``ReplayConfig`` dict."""
    key = f"{expr.key}[replay]"
    name, call = expr.call(node, BUFFERS | ADAPTIVE_ENERGY_BUFFERS, "a replay buffer")
    bound = expr.bind(call, BUFFER_PARAMS)
    replay: dict[str, Any] = {}
    if name in ADAPTIVE_ENERGY_BUFFERS:
        energy = {k: bound.pop(k) for k in ADAPTIVE_ENERGY_KEYS if k in bound}
        replay["adaptive_energy"] = _convert_adaptive_energy(expr, energy, call)
    for deprl_key, lit_key in REPLAY_KEYS.items():
        if deprl_key in bound:
            node = bound.pop(deprl_key)
            if lit_key == "discount":
                value = expr.value(node)
                if not _is_number(value):
                    raise expr.error(node, f"expected a number, got {value!r}")
                replay[lit_key] = float(value)
            else:
                replay[lit_key] = expr.integer(node)
    for deprl_key, value in bound.items():
        _report_source(report, f"{key}.{deprl_key}", value, "not a replay setting lit_rl knows")
    return replay


def _convert_agent(source: Any, report: Report) -> tuple[str, int, dict]:
    """``dep_factory(N, Agent())(replay=Buffer(...))`` or ``Agent(replay=...)`` -> class path, dep_mode, replay."""
    expr = _Expression("tonic.agent", source)
    node = expr.tree
    if not isinstance(node, ast.Call):
        raise expr.error(node, "expected an agent call, e.g. deprl.custom_agents.dep_factory(3, TunedMPO())(...)")
    factory = node.func
    if isinstance(factory, ast.Call) and _dotted(factory.func) == DEP_FACTORY:
        if len(factory.args) != 2 or factory.keywords:
            raise expr.error(factory, "dep_factory takes two positional arguments: (dep_mode, agent instance)")
        dep_mode = expr.integer(factory.args[0])
        if dep_mode not in DEP_MODES:
            raise expr.error(factory.args[0], f"dep_factory mode must be one of {list(DEP_MODES)}")
        agent_name, inner = expr.call(factory.args[1], AGENTS, "an agent")
        for argument in [*inner.args, *inner.keywords]:
            _report_source(
                report,
                "tonic.agent[dep_factory agent]",
                argument,
                "dep_factory keeps only the agent's class, so deprl ignores this argument too",
            )
    else:
        if _dotted(factory) == DEP_FACTORY:
            raise expr.error(node, "dep_factory(mode, agent) returns a class; call it: dep_factory(3, Agent())(...)")
        agent_name, _ = expr.call(node, AGENTS, "an agent")
        dep_mode = 0
    class_path, params = AGENTS[agent_name]
    bound = expr.bind(node, params)
    replay_node = bound.pop("replay", None)
    replay = _convert_replay(expr, replay_node, report) if replay_node is not None else {}
    for name, value in bound.items():
        _report_source(
            report, f"tonic.agent[{name}]", value, f"lit_rl builds the {name}; set it through the model's init_args"
        )
    return class_path, dep_mode, replay


def _convert_trainer(source: Any, report: Report) -> dict:
    """``deprl.custom_trainer.Trainer(steps=..., epoch_steps=..., save_steps=...)`` -> DataModule arguments."""
    expr = _Expression("tonic.trainer", source)
    _, call = expr.call(expr.tree, TRAINERS, "a trainer")
    bound = expr.bind(call, TRAINER_PARAMS)
    data = {
        TRAINER_KEYS[name]: expr.integer(bound.pop(name))
        for name in TRAINER_PARAMS
        if name in TRAINER_KEYS and name in bound
    }
    for name, value in bound.items():
        _report_source(report, f"tonic.trainer[{name}]", value, "no lit_rl equivalent")
    return data


# --------------------------------------------------------------------------- the whole file


def convert(deprl_config: dict) -> tuple[dict, list[str]]:
    """A deprl experiment config (the parsed YAML/JSON) -> (lit_rl config, report lines).

    The report has one line per deprl key that has no place in lit_rl. Raises ``ConvertError`` for what
    cannot be converted: no ``tonic`` block, an unknown agent/environment/trainer, an expression that is
    not a plain value.
    """
    if not isinstance(deprl_config, dict) or not isinstance(deprl_config.get("tonic"), dict):
        raise ConvertError("not a deprl config: it has no `tonic` block")
    tonic = deprl_config["tonic"]
    report: Report = []
    for required in ("agent", "environment"):
        if tonic.get(required) is None:
            raise ConvertError(f"tonic.{required} is missing")

    env_args = deprl_config.get("env_args") or {}
    if not isinstance(env_args, dict):
        raise ConvertError(f"env_args: expected a mapping, got {env_args!r}")
    test_env_args = deprl_config.get("test_env_args", env_args) or {}
    if not isinstance(test_env_args, dict):
        raise ConvertError(f"test_env_args: expected a mapping, got {test_env_args!r}")

    imports = _header_imports(tonic.get("header"), report) if "header" in tonic else []
    class_path, dep_mode, replay = _convert_agent(tonic["agent"], report)
    env = _convert_env("tonic.environment", tonic["environment"], env_args, imports, report)
    test_env = None
    if tonic.get("test_environment") is not None:
        test_env = _convert_env("tonic.test_environment", tonic["test_environment"], test_env_args, imports, report)
    elif "test_env_args" in deprl_config:  # deprl tests on the training env with these env_args
        test_env = {**env, "make_kwargs": dict(env["make_kwargs"]), "env_args": dict(test_env_args)}
    schedule = _convert_trainer(tonic["trainer"], report) if tonic.get("trainer") is not None else {}

    # The model.
    init_args: dict[str, Any] = {}
    mpo_args = deprl_config.get("mpo_args")
    if mpo_args is not None and not isinstance(mpo_args, dict):
        raise ConvertError(f"mpo_args: expected a mapping, got {mpo_args!r}")
    if mpo_args and class_path != MPO:
        _report(report, "mpo_args", mpo_args, f"mpo_args only apply to MPO, not to {class_path}")
    elif mpo_args:
        for name, value in mpo_args.items():
            if name in MPO_ARGS and value is not None:
                init_args[name] = _plain(f"mpo_args.{name}", value, _integer if MPO_ARGS[name] is int else float)
            elif name in MPO_ARGS_TO_REPLAY and value is not None:  # TunedMPO.set_params overrides the replay's
                replay[name] = _plain(f"mpo_args.{name}", value, _integer)
            elif value is not None:
                _report(report, f"mpo_args.{name}", value, "no lit_rl MPO setting")
    init_args.update(DEPRL_COMPUTATION["model"])
    init_args["dep_mode"] = dep_mode
    dep = deprl_config.get("DEP")
    if dep is not None and not isinstance(dep, dict):
        raise ConvertError(f"DEP: expected a mapping, got {dep!r}")
    if dep_mode > 0 and dep:
        init_args["dep"] = dict(dep)
    elif dep:
        _report(report, "DEP", dep, "the agent is not wrapped by deprl.custom_agents.dep_factory (dep_mode 0)")

    # The data.
    data: dict[str, Any] = {"env": env, "test_env": test_env}
    for key in ("parallel", "sequential"):
        if tonic.get(key) is not None:
            data[key] = _plain(f"tonic.{key}", tonic[key], _integer)
    if dep_mode > 0:
        data.update(DEPRL_COMPUTATION["data"])
    order = [*REPLAY_KEYS.values(), "adaptive_energy"]
    data["replay"] = {lit_key: replay[lit_key] for lit_key in order if lit_key in replay}
    data["replay"].update(DEPRL_COMPUTATION["replay"])
    data.update(schedule)

    config: dict[str, Any] = {}
    if tonic.get("seed") is not None:
        config["seed_everything"] = _plain("tonic.seed", tonic["seed"], _integer)
    if deprl_config.get("working_dir") is not None:
        if "sconegym" in env["imports"]:
            _report(report, "working_dir", deprl_config["working_dir"], SCONE_WORKING_DIR)
        else:
            config["working_dir"] = str(deprl_config["working_dir"])
    if tonic.get("name") is not None:
        config["name"] = str(tonic["name"])
    for key in ("resume", "full_save"):
        if tonic.get(key) is not None:
            config[key] = _plain(f"tonic.{key}", tonic[key], _boolean)
    config["model"] = {"class_path": class_path, "init_args": init_args}
    config["data"] = {"class_path": "lit_rl.data.RolloutDataModule", "init_args": data}

    # What has no place in lit_rl.
    checkpoint = tonic.get("checkpoint", "last")
    if checkpoint != "last":
        _report(
            report,
            "tonic.checkpoint",
            checkpoint,
            "lit_rl resumes from last.ckpt only; pass --ckpt_path to start from another checkpoint",
        )
    for key, value in tonic.items():
        if key in TONIC_UNUSED:
            why = TONIC_UNUSED[key]
            _report(report, f"tonic.{key}", value, f"{why} (empty here)" if why == NO_CODE and not value else why)
        elif key not in TONIC_CONVERTED:
            _report(report, f"tonic.{key}", value, "not a deprl setting lit_rl knows; not converted")
    for key, value in deprl_config.items():
        if key not in TOP_CONVERTED:
            _report(report, key, value, "not a deprl setting lit_rl knows; not converted")
    return config, report


# --------------------------------------------------------------------------- the CLI


def load(path: Path) -> dict:
    """Read a deprl config file: JSON for ``.json``, YAML otherwise."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lit_rl convert",
        description="Convert a deprl experiment file (YAML or JSON) into a lit_rl config, printed on stdout. "
        "deprl keys that have no place in lit_rl are listed on stderr.",
    )
    parser.add_argument("path", type=Path, help="the deprl config, e.g. experiments/myoLegWalk.yaml")
    args = parser.parse_args(argv)
    path: Path = args.path
    try:
        deprl_config = load(path)
    except FileNotFoundError:
        print(f"error: deprl config {path} not found", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        print(f"error: cannot read deprl config {path}: {error}", file=sys.stderr)
        return 2
    try:
        config, report = convert(deprl_config)
    except ConvertError as error:
        print(f"error: {path}: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(f"# converted from {path} by python -m lit_rl convert\n")
    sys.stdout.write(yaml.safe_dump(config, sort_keys=False))
    for line in report:
        print(line, file=sys.stderr)
    return 0
