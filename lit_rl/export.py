"""``python -m lit_rl export --ckpt_path RUN/checkpoints/last.ckpt --out policy.pt``: the
deterministic policy of a checkpoint as TorchScript, loadable with ``torch.jit.load`` alone
(no lit_rl, no Lightning), e.g. for a MyoChallenge submission.

The exported module maps a float32 observation batch ``[B, O]`` to the agent's actions
``[B, A]`` exactly as evaluation does (``act_greedy``), with the observation normaliser folded
in. The env-side action mapping of the run's config (``scaled_actions``, ``muscle_sigmoid``)
is applied by the caller, as lit_rl's envs do (``lit_rl.envs.ActionMap``).
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import sys
from pathlib import Path

import torch

from lit_rl.algos.base import OffPolicyAlgorithm
from lit_rl.files import replaced_atomically
from lit_rl.lightning_internals import tracing


class ExportError(ValueError):
    """A checkpoint that cannot be exported; printed as one line."""


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


def export_policy(ckpt_path: Path, out: Path) -> torch.jit.ScriptModule:
    """Trace the module's ``forward`` (``act_greedy``) and freeze it: weights become constants,
    networks evaluation does not use (critics, targets) drop out."""
    algorithm = load_algorithm(ckpt_path)
    example = torch.zeros(2, algorithm.observation_dim)
    with tracing(algorithm), torch.no_grad():
        traced = torch.jit.trace(algorithm, example)
    frozen = torch.jit.freeze(traced)
    out.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(out) as tmp:
        frozen.save(str(tmp))
    return frozen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lit_rl export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", type=Path, required=True, help="a lit_rl checkpoint (.ckpt)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the TorchScript policy")
    args = parser.parse_args(argv)
    try:
        export_policy(args.ckpt_path, args.out)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: torch.jit.load it; policy(observations [B, O] float32) -> actions [B, A]")
    return 0
