"""Seeds and sweeps with honest statistics: ``lit_rl.commands.stats`` (the rliable protocol), ``python -m
lit_rl sweep`` (a 3-seed x 2-value grid of the DDPG Pendulum smoke config cut to 200 steps, killed
with SIGKILL part way and started again) and ``python -m lit_rl compare`` on what it leaves."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import trim_mean

from lit_rl.commands import compare, sweep
from lit_rl.commands.stats import improvement_interval, iqm, iqm_interval, probability_of_improvement
from lit_rl.commands.sweep import DONE
from tests.conftest import ROOT, SMOKE, cli_env, ok, run_cli

SWEEP = ["--config", str(SMOKE), "--seeds", "0-2", "--set", "model.init_args.actor_lr=1e-3,1e-4", "--jobs", "2"]
NAMES = [f"actor_lr={lr}_seed{seed}" for lr in ("1e-3", "1e-4") for seed in range(3)]


def test_iqm_is_the_mean_of_the_middle_half_and_its_interval_holds_it():
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    assert iqm(scores) == pytest.approx(3.5) == trim_mean(scores, 0.25)  # 2, 3, 4, 5
    assert iqm(np.array([1.0, 2.0, 9.0])) == pytest.approx(4.0)  # 3 runs: nothing trimmed
    value, low, high = iqm_interval(scores)
    assert low <= value <= high and low < high
    curves = np.stack([scores, scores * 2], axis=1)  # 8 runs x 2 evaluation points
    value, low, high = iqm_interval(curves)
    assert value.shape == low.shape == (2,) and np.all(low <= value) and np.all(value <= high)


def test_probability_of_improvement_counts_ties_half():
    assert probability_of_improvement([3, 4, 5], [0, 1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [1, 2]) == 0.5
    p, low, high = improvement_interval([3, 4, 5], [0, 1, 2])
    assert (p, low, high) == (1.0, 1.0, 1.0)
    p, low, high = improvement_interval([0.0, 2.0, 4.0], [1.0, 3.0, 5.0])
    assert low < p < high


def test_print_gives_one_fit_command_per_run(tmp_path):
    result = ok(
        run_cli("sweep", *SWEEP, "--dir", str(tmp_path), "--print", "--", "--data.init_args.total_steps", "200")
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6
    # The Python that ran the sweep (run from the checkout's root: the project's .venv/bin/python), not a
    # `python` on PATH, which may lack lit_rl's packages.
    executable = Path(sys.executable).absolute()
    python = str(executable.relative_to(ROOT)) if executable.is_relative_to(ROOT) else sys.executable
    assert all(line.startswith(f"{python} -m lit_rl fit --config") for line in lines), lines
    assert all(line.endswith("total_steps 200") for line in lines)
    assert "--seed_everything 2 --model.init_args.actor_lr 1e-4" in lines[5] and f"--name {NAMES[5]}" in lines[5]
    assert not list(tmp_path.iterdir())  # nothing run


def test_sweep_survives_a_kill_and_compare_reports_iqm_and_intervals(tmp_path, capsys):
    csv_logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger"]  # the table and compare read metrics.csv
    budget = ["--data.init_args.total_steps", "200", "--data.init_args.epoch_steps", "100",
              "--data.init_args.save_steps", "100"]  # fmt: skip
    arguments = [*SWEEP, "--dir", str(tmp_path), "--", *csv_logger, *budget]
    command = [sys.executable, "-m", "lit_rl", "sweep", *arguments]
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115
    first = subprocess.Popen(command, cwd=ROOT, env=cli_env(), stdout=log, stderr=log, start_new_session=True)

    def done(name) -> bool:
        return (tmp_path / name / DONE).is_file()

    def saved_mid_run(name) -> bool:  # its last.ckpt is the one at 100 of 200 steps (written after step=100.ckpt)
        checkpoints = tmp_path / name / "checkpoints"
        return (
            all((checkpoints / f).is_file() for f in ("step=100.ckpt", "last.ckpt"))
            and not (checkpoints / "step=200.ckpt").is_file()
        )

    deadline = time.monotonic() + 300
    while not (any(map(done, NAMES)) and any(map(saved_mid_run, NAMES))):
        assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the sweep and its running fit processes, as a cancelled job
    first.wait()
    finished = {n: (tmp_path / n / DONE).stat().st_mtime_ns for n in NAMES if (tmp_path / n / DONE).is_file()}
    assert 0 < len(finished) < 6

    second = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    ok(second)
    assert f"{len(finished)} finished before, {6 - len(finished)} to run" in second.stdout
    assert all((tmp_path / n / DONE).stat().st_mtime_ns == t for n, t in finished.items())  # not run again
    resumed = [
        n
        for n in NAMES
        if n not in finished and "Restored all states" in (tmp_path / ".sweep" / f"{n}.log").read_text()
    ]
    assert resumed, "a killed run resumed from its checkpoint"
    table = second.stdout
    assert all(f"| {n} |" in table for n in NAMES)
    assert "| actor_lr=1e-3 | 3 |" in table and "| actor_lr=1e-4 | 3 |" in table

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name[0] != ".") == sorted(NAMES)  # DIR/*
    result = ok(run_cli("compare", *(str(tmp_path / n) for n in NAMES), "--out", str(tmp_path / "compare.png")))
    rows = [line for line in result.stdout.splitlines() if line.startswith("| actor_lr=")]
    assert len(rows) == 2 + 2 and "| 3 |" in rows[0]  # two configs, then P(X > Y) both ways
    value, low, high = (
        float(v) for v in rows[0].split("|")[3].replace("[", " ").replace("]", " ").replace(",", " ").split()
    )
    assert low <= value <= high
    assert (tmp_path / "compare.png").stat().st_size > 10_000

    # Evaluating a run (with the config it saved, as a user would) leaves the training results alone.
    evaluated = tmp_path / NAMES[0]
    before = (evaluated / "config.yaml").read_bytes()
    ok(run_cli("test", "--config", str(evaluated / "config.yaml"), "--ckpt_path", "last"))
    assert (evaluated / "config.yaml").read_bytes() == before
    [evaluation] = (evaluated / "eval").iterdir()
    assert {"config.yaml", "metrics.json"} <= {p.name for p in evaluation.iterdir()}
    # In this process from here (the commands' `python -m lit_rl` entries ran above): compare again, and
    # a sweep started once more, which runs nothing and prints the same table.
    capsys.readouterr()
    assert compare.main([*(str(tmp_path / n) for n in NAMES), "--out", str(tmp_path / "compare.png")]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| actor_lr=")] == rows
    assert sweep.main(arguments) == 0
    third = capsys.readouterr().out
    assert "6 finished before, 0 to run" in third
    assert [line for line in third.splitlines() if line.startswith("| ")] == [
        line for line in table.splitlines() if line.startswith("| ")
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            "model.init_args.actor_lrr=1e-3,1e-4",
            "--set model.init_args.actor_lrr=1e-3: --model.init_args.actor_lrr: no such key of lit_rl.algos.DDPG; "
            "did you mean --model.init_args.actor_lr?",
        ),
        (
            "model.init_args.actor_lr=1e-3,fast",
            "--set model.init_args.actor_lr=fast: --model.init_args.actor_lr fast: ",
        ),
    ],
)
def test_a_bad_set_key_or_value_stops_the_sweep_before_any_run(values, expected, tmp_path):
    result = run_cli("sweep", "--config", str(SMOKE), "--seeds", "0-1", "--set", values, "--dir", str(tmp_path / "s"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lit_rl: error: {expected}"), result.stderr
    assert not (tmp_path / "s").exists() and result.stdout == ""
