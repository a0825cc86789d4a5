"""Bad input (issue 6, point 5): each gives one clear error naming the problem before any env
worker starts or anything is written, and nothing already saved changes. The CLI runs in-process
(``lit_rl.commands.cli.main``, as ``python -m lit_rl`` does) to keep the table fast; one case also runs as a
subprocess to check that the user sees one line, not a traceback."""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_rl.algos import OffPolicyAlgorithm
from lit_rl.commands.cli import LitRLCLI, main
from lit_rl.commands.config_errors import registered
from tests.conftest import DATA_KEY, ROOT, SMOKE, load_ckpt, ok, run_cli

SMOKE_MPO = ROOT / "configs" / "smoke" / "mpo_pendulum.yaml"
DEP_MPO = ROOT / "configs" / "dep_mpo_myolegwalk.yaml"
CAR = ["--data.init_args.env.id", "MountainCarContinuous-v0", "--data.init_args.env.make_kwargs", "{}"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 200-step DDPG smoke run."""
    working_dir = tmp_path_factory.mktemp("trained")
    result = run_cli(
        "fit", "--config", str(SMOKE), "--working_dir", str(working_dir), "--name", "smoke",
        "--trainer.logger", "false", "--data.init_args.total_steps", "200",
    )  # fmt: skip
    ok(result)
    return working_dir / "smoke"


@pytest.fixture(autouse=True)
def cli_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit_rl"])  # pytest's own arguments are not the CLI's


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def fails(args: list[str], capsys) -> str:
    """Run the CLI, expect it to stop with an error, return the message the user sees."""
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2  # as argparse's errors
    return capsys.readouterr().err


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def scribble(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 16)


def replay_of(last: Path) -> Path:
    return last.parent / load_ckpt(last)[DATA_KEY]["replay_file"]


def drop_replay(last: Path) -> None:
    replay_of(last).unlink()


def truncate_replay(last: Path) -> None:
    truncate(replay_of(last))


CASES = {
    # name: (extra arguments, expected text in the message)
    "unknown key": (["--model.init_args.not_a_key", "1"], "not_a_key"),
    "wrong type": (["--data.init_args.total_steps", "many"], "total_steps"),
    "code in a string": (
        ["--data.init_args.total_steps", "__import__('os').system('touch {tmp}/pwned')"],
        "total_steps",
    ),
    "class path that is not an algorithm": (["--model", "os.system"], "os.system"),
    "batch_size 0": (["--data.init_args.replay.batch_size", "0"], "replay.batch_size must be >= 1, got 0"),
    "parallel 0": (["--data.init_args.parallel", "0"], "parallel must be >= 1, got 0"),
    "sequential -1": (["--data.init_args.sequential", "-1"], "sequential must be >= 1, got -1"),
    "return_steps 0": (["--data.init_args.replay.return_steps", "0"], "replay.return_steps must be >= 1, got 0"),
    "negative replay size": (["--data.init_args.replay.size", "-5"], "replay.size must be >= 1, got -5"),
    "replay too small for the envs": (["--data.init_args.replay.size", "4"], "replay.size 4 is too small"),
    "discount above 1": (["--data.init_args.replay.discount", "1.5"], "replay.discount must be in [0, 1]"),
    "total_steps 0": (["--data.init_args.total_steps", "0"], "total_steps must be >= 1, got 0"),
    "save_steps < epoch_steps": (
        ["--data.init_args.save_steps", "100"],
        "save_steps (100) must be >= epoch_steps (200)",
    ),
    "worker_timeout 0": (["--data.init_args.worker_timeout", "0"], "worker_timeout must be > 0"),
    "keep_checkpoints 0": (["--keep_checkpoints", "0"], "keep_checkpoints must be >= 1"),
    "unknown env id": (["--data.init_args.env.id", "Pendulim-v1"], "Closest registered ids: Pendulum-v1"),
    "missing env package": (["--data.init_args.env.imports", "[no_such_env_pkg]"], "'no_such_env_pkg' failed"),
    "missing checkpoint path": (["--ckpt_path", "{tmp}/nothing.ckpt"], "nothing.ckpt: no such checkpoint file"),
    "ckpt_path last without a checkpoint": (
        ["--name", "empty", "--ckpt_path", "last"],
        "--ckpt_path last: there is no",
    ),
    # jsonargparse's errors, one line each (issue 23): the key, the problem, the closest valid keys
    "misspelled key": (
        ["--model.init_args.actor_lrr", "1e-3"],
        "--model.init_args.actor_lrr: no such key of lit_rl.algos.DDPG; did you mean --model.init_args.actor_lr?",
    ),
    "misspelled key of a nested config": (
        ["--data.init_args.replay.batch_sise", "3"],
        "--data.init_args.replay.batch_sise: no such key of lit_rl.data.ReplayConfig; did you mean "
        "--data.init_args.replay.batch_size",
    ),
    "misspelled env key": (["--data.init_args.env.idd", "x"], "did you mean --data.init_args.env.id?"),
    "misspelled DEP key": (
        ["--config", str(DEP_MPO), "--model.init_args.dep.kapa", "1"],
        "--model.init_args.dep.kapa: no such key of lit_rl.acting.DEPConfig; did you mean --model.init_args.dep.kappa?",
    ),
    "misspelled trainer key": (
        ["--trainer.max_epohcs", "3"],
        "--trainer.max_epohcs: no such key; did you mean --trainer.max_epochs",
    ),
    # argparse took the start of a key for the key (issue 30): refused as any unknown key
    "abbreviated trainer key": (
        ["--trainer.max_epoch", "3"],
        "--trainer.max_epoch: no such key; did you mean --trainer.max_epochs",
    ),
    "abbreviated top-level key": (["--keep_checkpoint", "2"], "--keep_checkpoint: no such key; did you mean"),
    "wrong type, named": (["--data.init_args.total_steps", "abc"], "--data.init_args.total_steps abc: expected int"),
    "wrong type of an optional key": (["--keep_checkpoints", "x"], "--keep_checkpoints x: expected int or null"),
    "not one of the choices": (
        ["--model.init_args.exploration_noise", "gauss"],
        "--model.init_args.exploration_noise gauss: expected 'gaussian' or 'ornstein_uhlenbeck'",
    ),
    "unknown algorithm": (  # all of them, in the registry's order
        ["--model.class_path", "lit_rl.algos.PPO"],
        "--model lit_rl.algos.PPO: not one of the registered OffPolicyAlgorithm classes, "
        + ", ".join(registered(OffPolicyAlgorithm)),
    ),
    "misspelled algorithm": (["--model", "lit_rl.algos.DPG"], "; did you mean lit_rl.algos.DDPG?"),
    "unknown DataModule": (
        ["--data", "lit_rl.data.Rollout"],
        "registered RolloutDataModule classes, lit_rl.data.RolloutDataModule",
    ),
    "missing config file": (["--config", "{tmp}/nonexist.yaml"], "--config {tmp}/nonexist.yaml: no such file"),
    "accelerator that is not there": (
        ["--trainer.accelerator", "tpu"],
        "--trainer.accelerator tpu: this machine has no tpu",
    ),
    "accelerator that is no accelerator": (
        ["--trainer.accelerator", "gpuu"],
        "--trainer.accelerator gpuu: not an accelerator",
    ),
    "trainer argument Lightning refuses": (
        ["--trainer.devices", "0"],
        "--trainer: `Trainer(devices='0')` value is not a valid",
    ),
}
if not (torch.cuda.is_available() or torch.backends.mps.is_available()):
    CASES["no GPU"] = (["--trainer.accelerator", "gpu"], "--trainer.accelerator gpu: this machine has no gpu device")
if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
    CASES["TensorBoard not installed"] = (
        ["--trainer.logger", "TensorBoardLogger", "--trainer.logger.init_args.save_dir", "{tmp}"],
        "--trainer.logger TensorBoardLogger needs tensorboard: pip install -e '.[tensorboard]'",
    )


@pytest.mark.parametrize("case", CASES)
def test_bad_config_names_the_problem(case, tmp_path, capsys):
    extra, expected = CASES[case]
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--name", "run", "--trainer.logger", "false"]
    message = fails([*args, *extra], capsys)
    assert expected.format(tmp=tmp_path) in message, message
    assert message.startswith("lit_rl: error: ") and len(message.strip().splitlines()) == 1, message  # no usage
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.rglob("*.ckpt")), "nothing was trained"


# Checkpoint cases: (how the trained run's last.ckpt is damaged, config, extra arguments, expected text)
CHECKPOINT_CASES = {
    "corrupt checkpoint": (scribble, SMOKE, [], "is not a readable lit_rl checkpoint"),
    "truncated checkpoint": (truncate, SMOKE, [], "is not a readable lit_rl checkpoint"),
    "checkpoint of another algorithm": (None, SMOKE_MPO, [], "was written by lit_rl.algos.DDPG, but the config trains"),
    "checkpoint with other spaces": (None, SMOKE, CAR, "observations of size 3"),
    "missing replay file": (drop_replay, SMOKE, [], ".replay, which is missing"),
    "truncated replay file": (truncate_replay, SMOKE, [], "bytes instead of"),
    "model key other than the checkpoint's": (
        None,
        SMOKE,
        ["--model.init_args.actor_lr", "0.5"],
        "model.init_args.actor_lr 0.5 (checkpoint: 0.001)",
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
@pytest.mark.parametrize("how", ["auto-resume", "--ckpt_path"])
def test_bad_checkpoint_names_the_problem_and_nothing_changes(case, how, trained, tmp_path, capsys):
    damage, config, extra, expected = CHECKPOINT_CASES[case]
    run_dir = tmp_path / "smoke"
    shutil.copytree(trained, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if damage is not None:
        damage(last)
    before = snapshot(run_dir)
    args = [
        "fit",
        "--config",
        str(config),
        "--working_dir",
        str(tmp_path),
        "--name",
        "smoke",
        "--trainer.logger",
        "false",
    ]
    if how == "--ckpt_path":
        args += ["--ckpt_path", str(last)]
    message = fails([*args, *extra], capsys)
    assert expected in message and str(last) in message, message
    assert snapshot(run_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smoke"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--data.init_args.parallel", "0"], "parallel must be >= 1, got 0"),
        (
            ["--data.init_args.env.id", "Pendulim-v1"],
            "Unknown environment id 'Pendulim-v1'. Closest registered ids: Pendulum-v1, ",
        ),
    ],
    ids=["parallel 0", "unknown env id"],
)
def test_the_user_sees_one_line_not_a_traceback(extra, expected, tmp_path):
    """The error is all that is printed: not a traceback, nor Lightning's "Seed set to 0" (logged
    before the classes were built) above it."""
    result = run_cli("fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), *extra)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"lit_rl: error: {expected}"), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("modle: 3\n", "--config: modle is not a key of fit; did you mean model?"),
        (
            "model: {class_path: lit_rl.algos.DDPG, init_args: {actor_lrr: 1}}\n",
            "--model.init_args.actor_lrr: no such key of lit_rl.algos.DDPG; did you mean --model.init_args.actor_lr?",
        ),
        ("model: [\n", "Problems parsing config: while parsing a flow node did not find expected node content in"),
        # An empty mapping was dropped before its key was checked (issue 30).
        ("modle: {}\n", "--config: modle is not a key of fit; did you mean model?"),
        (
            "model: {init_args: {actor_lrr: {}}}\n",
            "--model.init_args.actor_lrr: no such key of lit_rl.algos.DDPG; did you mean --model.init_args.actor_lr?",
        ),
        ("trainer: {max_epoch: {}}\n", "--trainer.max_epoch: no such key; did you mean --trainer.max_epochs"),
        (
            "data: {init_args: {replay: {batch_sise: {}}}}\n",
            "--data.init_args.replay.batch_sise: no such key; did you mean --data.init_args.replay.batch_size",
        ),
    ],
)
def test_a_mistake_in_a_config_file_is_one_line(text, expected, tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    message = fails(["fit", "--config", str(SMOKE), "--config", str(path), "--working_dir", str(tmp_path)], capsys)
    assert message.startswith(f"lit_rl: error: {expected}") and len(message.strip().splitlines()) == 1, message


def test_an_empty_mapping_of_a_known_key_is_still_a_config(tmp_path):
    """The check above refuses unknown keys only: ``{}`` stays a valid value of known ones."""
    path = tmp_path / "mine.yaml"
    path.write_text("trainer: {}\nmodel: {init_args: {dep: {}}}\ndata: {init_args: {env: {env_args: {}}}}\n")
    LitRLCLI.check_args(["fit", "--config", str(SMOKE), "--config", str(path), "--working_dir", str(tmp_path)])


def test_a_config_mistake_is_one_line_without_the_usage(tmp_path):
    result = run_cli("fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--model.init_args.actor_lrr", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lit_rl: error: --model.init_args.actor_lrr: no such key of lit_rl.algos.DDPG; did you mean "
        "--model.init_args.actor_lr?"
    ]


FAST_ERROR = """
import sys
from lit_rl.__main__ import main
print(main(sys.argv[1:]), "lightning" in sys.modules, "torch" in sys.modules)
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", "--config", "configs/nonexist.yaml"], "lit_rl: error: --config configs/nonexist.yaml: no such file"),
        (["test", "-c=configs/nonexist.yaml"], "lit_rl: error: --config configs/nonexist.yaml: no such file"),
        (
            ["predict", "--config", str(SMOKE)],
            "lit_rl: error: no command 'predict'; the commands: fit, validate, test, ",
        ),
    ],
)
def test_mistakes_found_before_lightning_is_imported(args, expected):
    """A missing config file or an unknown command is reported at once, not after the 10-20 s
    of importing torch and Lightning."""
    result = subprocess.run([sys.executable, "-c", FAST_ERROR, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert result.stderr.startswith(expected) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {result.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB filesystem (tmpfs; needs root)."""
    mount_tmpfs(tmp_path / "disk", "size=1M")
    yield tmp_path / "disk"
    subprocess.run(["umount", str(tmp_path / "disk")], check=True)


@pytest.fixture
def read_only_dir(tmp_path, trained):
    """A read-only folder holding a copy of the trained run: a read-only mount as root (root
    ignores file modes), a folder without write permission otherwise."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        mount_tmpfs(folder, "size=16M")
        shutil.copytree(trained, folder / "smoke")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    else:
        shutil.copytree(trained, folder / "smoke")
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        yield folder
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755)


@pytest.mark.parametrize("resume", ["true", "false"])
def test_read_only_output_directory(read_only_dir, resume, capsys):
    before = snapshot(read_only_dir)
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(read_only_dir), "--name", "smoke"]
    message = fails(
        [*args, "--trainer.logger", "false", "--resume", resume, "--data.init_args.total_steps", "400"], capsys
    )
    assert f"output directory {read_only_dir} is not writable" in message, message
    assert snapshot(read_only_dir) == before


def test_full_output_directory(small_disk, capsys):
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(small_disk), "--trainer.logger", "false"]
    message = fails([*args, "--data.init_args.replay.size", "100000"], capsys)
    assert f"not enough free disk space in {small_disk}" in message, message
    assert not list(small_disk.rglob("*.ckpt"))


def test_a_save_that_hits_a_full_disk_keeps_the_previous_checkpoint(small_disk):
    from lit_rl.training.resume import RunCheckpointIO as AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = small_disk / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"step": torch.tensor(2), "big": torch.zeros(1_000_000)}, path)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in small_disk.iterdir()] == ["last.ckpt"], "the partial temporary file is removed"
