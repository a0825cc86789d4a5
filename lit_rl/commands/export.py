"""``python -m lit_rl export --ckpt_path RUN/checkpoints/last.ckpt --out policy.onnx``: the
deterministic policy of a checkpoint (or of a run folder ``RUN``: its ``last.ckpt``) as ONNX
(``--format onnx``, the default for a ``.onnx`` file; run it with ``onnxruntime`` or any ONNX
runtime) or TorchScript (``--format torchscript``, loadable with ``torch.jit.load`` alone), with
no lit_rl and no Lightning needed to run it, e.g. for a MyoChallenge submission.

The exported policy maps a float32 observation batch ``[B, O]`` to the agent's actions
``[B, A]`` exactly as evaluation does (``act_greedy``), with the observation normaliser folded
in. With ``--env_actions`` it also applies the env-side action mapping of the run's config
(``scaled_actions``, ``muscle_sigmoid``, clipping to the env's bounds; read from the run's
``config.yaml``, as ``lit_rl.envs.ActionMap`` does), so its actions go straight into the env.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pickle
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

from lit_rl.algos.base import OffPolicyAlgorithm
from lit_rl.training.files import replaced_atomically, run_dir_of
from lit_rl.training.lightning_internals import tracing

FORMATS = ("onnx", "torchscript")


class ExportError(ValueError):
    """A checkpoint that cannot be exported; printed as one line."""


def checkpoint_of(path: Path) -> Path:
    """A checkpoint file as given, or a run folder's ``checkpoints/last.ckpt``."""
    path = Path(path)
    return path / "checkpoints" / "last.ckpt" if path.is_dir() else path


def load_algorithm(ckpt_path: Path) -> OffPolicyAlgorithm:
    if not ckpt_path.is_file():
        raise ExportError(f"--ckpt_path {ckpt_path} does not exist")
    try:
        class_path = torch.load(ckpt_path, map_location="cpu", weights_only=True)["hyper_parameters"]["_class_path"]
        module_name, _, class_name = class_path.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, OffPolicyAlgorithm)):
            raise ExportError(f"--ckpt_path {ckpt_path} was written by {class_path}, not a lit_rl algorithm")
        module = cls.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=False)
    except ExportError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError, ImportError) as error:
        raise ExportError(
            f"--ckpt_path {ckpt_path} is not a readable lit_rl checkpoint ({type(error).__name__}: {error})"
        ) from error
    if module.dep_mode == 4:
        raise ExportError(f"--ckpt_path {ckpt_path} is a DEP mode 4 run: it trains no policy to export")
    return module.eval()


class EnvActions(torch.nn.Module):
    """``lit_rl.envs.ActionMap`` in torch: the agent's actions to the env's."""

    def __init__(self, low, high, scaled: bool, sigmoid: bool):
        super().__init__()
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.scaled, self.sigmoid = scaled, sigmoid

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        if self.scaled:
            actions = actions.clamp(-1.0, 1.0)
            return self.low + (actions + 1.0) * 0.5 * (self.high - self.low)
        if self.sigmoid:
            actions = 1.0 / (1.0 + torch.exp(-5.0 * (actions.clamp(-1.0, 1.0) - 0.5)))
        return torch.minimum(torch.maximum(actions, self.low), self.high)


def env_actions(ckpt_path: Path) -> EnvActions:
    """The action mapping of the run the checkpoint belongs to (``<run dir>/config.yaml``)."""
    from lit_rl.envs import ActionMap, EnvConfig

    config_path = run_dir_of(ckpt_path) / "config.yaml"
    if not config_path.is_file():
        raise ExportError(f"--env_actions needs the run's config, {config_path}, which is missing")
    action_map = ActionMap.of(EnvConfig(**yaml.safe_load(config_path.read_text())["data"]["init_args"]["env"]))
    return EnvActions(action_map.low, action_map.high, action_map.scaled, action_map.sigmoid)


class Policy(torch.nn.Module):
    """What is exported: ``act_greedy``, then the env's action mapping if given."""

    def __init__(self, algorithm: OffPolicyAlgorithm, mapping: EnvActions | None):
        super().__init__()
        self.algorithm, self.mapping = algorithm, mapping

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        actions = self.algorithm(observations)
        return actions if self.mapping is None else self.mapping(actions)


def export_policy(ckpt_path: Path, out: Path, format: str = "torchscript", with_env_actions: bool = False) -> None:
    """TorchScript: trace ``forward`` and freeze it (weights become constants, networks
    evaluation does not use drop out). ONNX: ``torch.export`` of the same, with a dynamic batch
    dimension (input ``observations``, output ``actions``)."""
    if format not in FORMATS:
        raise ExportError(f"--format {format!r}: one of {', '.join(FORMATS)}")
    ckpt_path = checkpoint_of(ckpt_path)
    algorithm = load_algorithm(ckpt_path)
    policy = Policy(algorithm, env_actions(ckpt_path) if with_env_actions else None).eval()
    example = torch.zeros(2, algorithm.observation_dim)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tracing(algorithm), torch.no_grad(), replaced_atomically(out) as tmp:
        if format == "torchscript":
            torch.jit.freeze(torch.jit.trace(policy, example)).save(str(tmp))
        else:
            with _quiet_onnx_exporter():
                program = torch.onnx.export(
                    policy, (example,), input_names=["observations"], output_names=["actions"],
                    dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True,
                )  # fmt: skip
            program.save(str(tmp))


@contextmanager
def _quiet_onnx_exporter() -> Iterator[None]:
    """The exporter logs its progress and warns about optional packages (torchvision) it does not use."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lit_rl export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ckpt_path", type=Path, required=True, help="a lit_rl checkpoint (.ckpt), or a run folder (its last.ckpt)"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the policy (.onnx or .pt)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="onnx or torchscript (default: onnx for a .onnx file, else torchscript)",
    )
    parser.add_argument(
        "--env_actions",
        action="store_true",
        help="include the config's action mapping: actions go straight into the env",
    )
    args = parser.parse_args(argv)
    format = args.format or ("onnx" if args.out.suffix == ".onnx" else "torchscript")
    try:
        export_policy(args.ckpt_path, args.out, format, args.env_actions)
    except ExportError as error:
        print(f"lit_rl: error: {error}", file=sys.stderr)
        return 2
    space = "env" if args.env_actions else "agent"
    how = "onnxruntime.InferenceSession(path)" if format == "onnx" else "torch.jit.load(path)"
    print(f"wrote {args.out} ({format}): load it with {how}; observations [B, O] float32 -> {space} actions [B, A]")
    return 0
