"""Fingerprints of the smoke runs' final weights: a refactor that must not change behaviour keeps
the order of random draws, so every smoke run ends with bit-identical weights and optimizer
states before and after it.

Trains ``configs/smoke/<name>.yaml`` (DDPG, TD3, SAC, MPO, Dyna on Pendulum, DEP-MPO on
myoLegWalk) with ``python -m lit_rl fit`` in a temporary directory and prints one sha256 per run
over the tensors of its ``last.ckpt``'s ``state_dict`` and ``optimizer_states`` (in key order).
``--save FILE`` writes them as JSON; ``--check FILE`` compares against such a file and exits 1
on a difference.

    OMP_NUM_THREADS=1 python bench/weights_fingerprint.py --save before.json
    ... change the code ...
    OMP_NUM_THREADS=1 python bench/weights_fingerprint.py --check before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["ddpg_pendulum", "td3_pendulum", "sac_pendulum", "mpo_pendulum", "dyna_pendulum", "dep_mpo_myolegwalk"]


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(str(value.dtype).encode())
        digest.update(value.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        for item in value:
            _feed(digest, item)
    else:
        digest.update(repr(value).encode())


def fingerprint(name: str, working_dir: Path) -> str:
    command = [sys.executable, "-m", "lit_rl", "fit", "--config", f"configs/smoke/{name}.yaml"]
    command += ["--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]
    command += ["--working_dir", str(working_dir), "--name", name]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    checkpoint = torch.load(working_dir / name / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    digest = hashlib.sha256()
    _feed(digest, checkpoint["state_dict"])
    _feed(digest, checkpoint["optimizer_states"])
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", default=SMOKE)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--check", type=Path)
    args = parser.parse_args()
    expected = json.loads(args.check.read_text()) if args.check else {}
    found, differ = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            found[name] = fingerprint(name, Path(tmp))
            verdict = ""
            if name in expected:
                verdict = "  same" if expected[name] == found[name] else "  DIFFERS"
                if expected[name] != found[name]:
                    differ.append(name)
            print(f"{name:22s} {found[name]}{verdict}", flush=True)
    if args.save:
        args.save.write_text(json.dumps(found, indent=1) + "\n")
    if differ:
        raise SystemExit(f"weights differ: {', '.join(differ)}")


if __name__ == "__main__":
    main()
