"""End-to-end runs of ``python -m lit_rl`` with the smoke config: real envs, real offline W&B,
real checkpoints on disk."""

import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from lit_rl.__main__ import COMMANDS, TRAINER_COMMANDS
from lit_rl.commands import catalog, export, interpreter, plot, sweep
from lit_rl.commands.cli import LitRLCLI, cpu_bf16_native
from tests.conftest import DATA_KEY, ROOT, SMOKE, cli_env, load_ckpt, logged_rows, ok, run_cli


def smoke(command, working_dir, *extra, name="smoke"):
    """``python -m lit_rl <command>`` on the smoke config in ``working_dir/name``."""
    return run_cli(command, "--config", str(SMOKE), "--working_dir", str(working_dir), "--name", name, *extra)


def state_replay(checkpoints):
    """The replay file that ``last.ckpt`` in ``checkpoints`` records."""
    return load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]["replay_file"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 400-step smoke run (2 envs, checkpoints every 200 steps, the default W&B logger); what fit
    printed is in ``fit.out`` next to it."""
    working_dir = tmp_path_factory.mktemp("runs")
    (working_dir / "fit.out").write_text(ok(smoke("fit", working_dir)).stdout)
    return working_dir / "smoke"


def shown_interpreter() -> str:
    """How a command run from the checkout's root names this Python: the project's venv as
    ``.venv/bin/python``, any other by its full path."""
    executable = Path(sys.executable).absolute()
    return str(executable.relative_to(ROOT)) if executable.is_relative_to(ROOT) else sys.executable


def test_the_summary_plot_command_uses_this_python_and_runs(trained_run):
    """Not ``python -m lit_rl``: outside the venv ``python`` has no lit_rl packages (matplotlib)."""
    summary = (trained_run.parent / "fit.out").read_text().split("lit_rl: finished")[1]
    [line] = [line for line in summary.splitlines() if line.strip().startswith("curves:")]
    command = line.split("curves:", 1)[1].strip()
    assert command.startswith(f"{shown_interpreter()} -m lit_rl plot {trained_run} --out "), command
    ok(subprocess.run(shlex.split(command), cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120))
    assert (trained_run / "curves.png").stat().st_size > 10_000


def test_the_interpreter_is_shown_as_it_can_be_typed_here(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not below the interpreter's folder: its full path
    assert interpreter() == sys.executable
    venv = Path(sys.executable).absolute().parent.parent  # <venv>/bin/python
    monkeypatch.chdir(venv.parent)
    assert interpreter() == f"{venv.name}/bin/{Path(sys.executable).name}"  # .venv/bin/python in the project


def fit_in_process(*args: str) -> LitRLCLI:
    """``python -m lit_rl ARGS`` in this process (as lit_rl.api does), its ConfigError raised."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")  # pytest's own sys.argv
        return LitRLCLI(args=[*args, "--trainer.enable_progress_bar", "false"])


def evaluation_dir(stdout: str) -> Path:
    return Path(re.search(r"written to (\S+)/metrics.json", stdout)[1])


def test_test_validate_and_export_from_a_run_alone_read_its_config(trained_run, tmp_path, capsys):
    """``test --ckpt_path RUN/checkpoints/last.ckpt`` failed with "the following arguments are
    required: env.id" without ``--config``, and ``export --ckpt_path RUN`` said RUN "does not exist"."""
    run_dir = tmp_path / "smoke"
    shutil.copytree(trained_run, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    tested = ok(run_cli("test", "--ckpt_path", str(last), "--trainer.enable_progress_bar", "false"))
    assert f"lit_rl: test of {last}: test/episode_return " in tested.stdout
    assert "dirpath has changed" not in tested.stderr  # a copied run: ModelCheckpoint's bookkeeping is not used
    config = yaml.safe_load((evaluation_dir(tested.stdout) / "config.yaml").read_text())
    assert config["data"]["init_args"]["test_episodes"] == 2  # the run's config

    # The run folder: its last.ckpt. An explicit --config still wins (here: 1 test episode).
    capsys.readouterr()
    fit_in_process("validate", f"--ckpt_path={run_dir}", "--trainer.logger", "false")
    validated = capsys.readouterr().out
    assert f"lit_rl: validate of {last}: " in validated
    mine = tmp_path / "mine.yaml"
    mine.write_text((run_dir / "config.yaml").read_text().replace("test_episodes: 2", "test_episodes: 1"))
    fit_in_process("validate", "--config", str(mine), "--ckpt_path", str(run_dir), "--trainer.logger", "false")
    config = yaml.safe_load((evaluation_dir(capsys.readouterr().out) / "config.yaml").read_text())
    assert config["data"]["init_args"]["test_episodes"] == 1
    assert json.loads((evaluation_dir(validated) / "metrics.json").read_text())["ckpt_path"] == str(last)

    assert export.main(["--ckpt_path", str(run_dir), "--out", str(tmp_path / "policy.pt")]) == 0
    assert (tmp_path / "policy.pt").stat().st_size > 0

    # Without a config.yaml there is nothing to read: one line that says so.
    (run_dir / "config.yaml").unlink()
    result = run_cli("test", "--ckpt_path", str(run_dir), "--trainer.logger", "false")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lit_rl: error: --ckpt_path {run_dir}: the run's {run_dir / 'config.yaml'} is missing (it names the env); "
        "give the config with --config"
    ]


def test_a_run_without_logs_prints_no_plot_command_and_plot_says_why(tmp_path, capsys):
    """``--trainer.logger false`` (docs/dep.md's quick check): the summary printed a plot command that then failed."""
    result = ok(smoke("fit", tmp_path, "--trainer.logger", "false", "--data.init_args.total_steps", "200"))
    summary = result.stdout[result.stdout.index("lit_rl: finished") :]
    assert "checkpoint:" in summary and "plot" not in summary and "curves" not in summary
    assert plot.main([str(tmp_path / "smoke"), "--out", str(tmp_path / "curves.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'smoke'}: logged nothing: it ran with trainer.logger false (logging off), so there are "
        "no curves to plot; train with the default W&B logger or a CSVLogger to plot a run"
    )
    assert not (tmp_path / "curves.png").exists()


def test_more_cpu_processes_than_cores_are_warned_about(tmp_path, caplog):
    """``--trainer.devices 4`` on 2 cores: 4 gloo processes took 10.5 min for what 1 does in 69 s."""
    cores = len(os.sched_getaffinity(0))
    base = ["--config", str(SMOKE), "--working_dir", str(tmp_path), "--trainer.logger", "false"]
    base += ["--trainer.accelerator", "cpu"]
    with caplog.at_level(logging.WARNING, logger="lit_rl.commands.cli"):
        LitRLCLI(args=[*base, "--trainer.devices", str(cores + 1)], run=False)
    assert f"--trainer.devices {cores + 1} starts {cores + 1} training processes on {cores} CPU cores" in caplog.text, (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lit_rl.commands.cli"):
        LitRLCLI(args=[*base, "--trainer.devices", "1"], run=False)
    assert "CPU cores" not in caplog.text


def test_bf16_on_a_cpu_without_bfloat16_instructions_is_warned_about(tmp_path, caplog):
    """An Intel Xeon without AVX-512 BF16 ran the walk's MPO updates 3-4x slower in bf16-mixed than in 32-true."""
    x86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
    assert cpu_bf16_native(x86) is False
    assert cpu_bf16_native(x86.replace("avx512_vnni", "avx512_vnni avx512_bf16")) is True
    assert cpu_bf16_native("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n") is True  # ARM
    assert cpu_bf16_native("") is None
    base = ["--config", str(SMOKE), "--working_dir", str(tmp_path), "--trainer.logger", "false"]
    base += ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]
    for precision in ("bf16-mixed", "32-true"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lit_rl.commands.cli"):
            LitRLCLI(args=[*base, "--trainer.precision", precision], run=False)
        warned = "on a CPU without bfloat16 instructions" in caplog.text
        assert warned == (precision == "bf16-mixed" and cpu_bf16_native() is False), caplog.text


def test_fit_writes_wandb_run_checkpoints_and_config(trained_run):
    checkpoints = trained_run / "checkpoints"
    names = {p.name for p in checkpoints.iterdir()}
    assert {"last.ckpt", "step=200.ckpt", "step=400.ckpt"} <= names
    assert [n for n in names if n.endswith(".replay")] == [state_replay(checkpoints)]  # the old one was deleted
    wandb_runs = list((trained_run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(wandb_runs) == 1 and wandb_runs[0].stat().st_size > 0
    saved = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert saved["data"]["init_args"]["env"]["id"] == "Pendulum-v1"
    state = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]
    assert state["env_steps"] == 400
    assert state["replay_file"].startswith("last-400-")
    assert load_ckpt(checkpoints / "step=200.ckpt")[DATA_KEY]["replay_file"] is None


def test_resume_continues_env_steps_replay_and_wandb_run(trained_run, tmp_path):
    run_dir = tmp_path / "smoke"
    shutil.copytree(trained_run, run_dir)
    first_replay = (run_dir / "checkpoints" / state_replay(run_dir / "checkpoints")).read_bytes()
    ok(smoke("fit", tmp_path, "--data.init_args.total_steps", "600"))
    state = load_ckpt(run_dir / "checkpoints" / "last.ckpt")[DATA_KEY]
    assert state["env_steps"] == 600
    # 600 transitions over 2 env columns: the 400 before the restart were restored, not lost
    assert state["replay_position"] == [300, 300]
    run_ids = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert len(run_ids) == 1, "a resumed run continues the same W&B run"

    # A replay file from another save does not belong to this checkpoint: clear error, files untouched.
    (run_dir / "checkpoints" / state_replay(run_dir / "checkpoints")).write_bytes(first_replay)
    result = smoke("fit", tmp_path, "--data.init_args.total_steps", "800")
    assert result.returncode != 0
    assert "bytes instead of" in result.stderr
    assert load_ckpt(run_dir / "checkpoints" / "last.ckpt")[DATA_KEY]["env_steps"] == 600


def test_validate_from_checkpoint(trained_run):
    # "last" finds the run's last.ckpt, and the model is rebuilt with the checkpoint's
    # hyperparameters even where the config now says otherwise.
    extra = ["--ckpt_path", "last", "--model.init_args.actor_hidden", "[8]", "--trainer.logger", "false"]
    result = ok(smoke("validate", trained_run.parent, *extra))
    assert "test/episode_return" in result.stdout


def test_a_file_that_is_not_a_checkpoint_is_named(trained_run):
    bogus = trained_run / "checkpoints" / state_replay(trained_run / "checkpoints")
    result = smoke("validate", trained_run.parent, "--ckpt_path", str(bogus), "--trainer.logger", "false")
    assert result.returncode != 0
    assert f"--ckpt_path {bogus} is not a readable lit_rl checkpoint" in result.stderr


def test_resume_false_starts_fresh_and_keeps_the_old_run(trained_run, tmp_path):
    shutil.copytree(trained_run, tmp_path / "smoke")
    ok(smoke("fit", tmp_path, "--resume", "false", "--data.init_args.total_steps", "200"))
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("smoke.")]
    assert len(kept) == 1
    assert load_ckpt(kept[0] / "checkpoints" / "last.ckpt")[DATA_KEY]["env_steps"] == 400
    assert load_ckpt(tmp_path / "smoke" / "checkpoints" / "last.ckpt")[DATA_KEY]["env_steps"] == 200


def test_metric_names_with_csv_logger_and_worker_processes(tmp_path):
    # The save_dir given is the logger's (it used to be replaced by the run directory without a word).
    extra = [
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(tmp_path / "logs"),
    ]
    workers = ["--data.init_args.parallel", "2", "--data.init_args.sequential", "1"]
    result = ok(smoke("fit", tmp_path, *extra, *workers, name="csv"))
    assert not list((tmp_path / "csv").rglob("metrics.csv"))
    rows = logged_rows(tmp_path / "logs")
    # fit ends with where things are: the last test return, the checkpoint; no plot command, as
    # plot reads a run's own folder and this logger wrote elsewhere
    summary = result.stdout[result.stdout.index("lit_rl: finished") :]
    assert "test/episode_return" in summary and str(tmp_path / "csv" / "checkpoints" / "last.ckpt") in summary
    assert "-m lit_rl plot" not in summary
    names = set(rows[0])
    for name in [
        "env_steps",
        "train/episode_return",
        "train/episode_length",
        "test/episode_return",
        "test/episode_length",
        "test/episode_length_max",
        "perf/env_steps_per_s",
        "replay/size",
        "loss/actor",
        "loss/critic",
        "env/faults",
    ]:
        assert name in names
    assert max(float(r["env_steps"]) for r in rows if r["env_steps"]) == 400


def test_print_config_round_trips(tmp_path):
    printed = ok(run_cli("fit", "--config", str(SMOKE), "--model.init_args.actor_lr", "3e-4", "--print_config"))
    config = yaml.safe_load(printed.stdout)
    assert config["model"]["init_args"]["actor_lr"] == 3e-4
    assert config["data"]["init_args"]["replay"]["return_steps"] == 3
    path = tmp_path / "printed.yaml"
    path.write_text(printed.stdout)
    assert yaml.safe_load(ok(run_cli("fit", "--config", str(path), "--print_config")).stdout) == config


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--model.init_args.not_a_key", "1"], "not_a_key"),
        (["--data.init_args.total_steps", "many"], "total_steps"),
        (["--data.init_args.env.id", "Pendulim-v1"], "Pendulum-v1"),
    ],
)
def test_bad_input_fails_with_a_message_naming_it(override, expected, tmp_path):
    result = smoke("fit", tmp_path, *override)
    assert result.returncode != 0
    assert expected in result.stderr


SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))
SLOW_TO_MAKE = {"dep_mpo_myotabletennis"}  # its env takes 30-45 s to make here; its training test is slow too


@pytest.mark.parametrize(
    "config",
    [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_TO_MAKE else p for p in SHIPPED],
    ids=[p.stem for p in SHIPPED],
)
def test_every_shipped_config_builds(config, tmp_path):
    """Each config's keys exist and its model and DataModule build (the envs are probed, not run)."""
    if "scone" in config.stem and importlib.util.find_spec("sconegym") is None:
        pytest.skip("sconegym is not installed")
    cli = LitRLCLI(
        args=["--config", str(config), "--trainer.logger", "false", "--working_dir", str(tmp_path)], run=False
    )
    assert cli.model.observation_dim == cli.datamodule.observation_dim


def test_help_lists_every_command_in_one_line_each():
    result = ok(run_cli("--help"))
    lines = result.stdout.splitlines()
    for command in [*TRAINER_COMMANDS, *COMMANDS]:
        assert sum(line.startswith(f"  {command} ") for line in lines) == 1, (command, result.stdout)
    assert "predict" not in result.stdout
    assert set(TRAINER_COMMANDS) == set(LitRLCLI.subcommands())  # predict is left out of the LightningCLI


@pytest.mark.parametrize("module", [catalog, export, sweep], ids=["algorithms", "export", "sweep"])
def test_command_help_holds_the_whole_description(module, capsys):
    with pytest.raises(SystemExit) as stopped:
        module.main(["--help"])
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    assert all(line in shown for line in module.__doc__.strip().splitlines()), shown
