"""A run whose budget ends before its first gradient update says so at the start (issue 23): it
used to exit 0 after zero updates without a word, e.g. a deprl config (200,000 warm-up steps)
shrunk to a few thousand steps."""

import pytest

from lit_rl.data.schedule import Schedule
from tests.conftest import DATA_KEY, SMOKE, load_ckpt, ok, run_cli


@pytest.mark.parametrize(
    ("before", "between", "step", "clock", "first"),
    [
        (100, 50, 2, "after_step", 100),
        (101, 50, 2, "after_step", 102),  # the first vector step reaching the warm-up
        (0, 50, 4, "after_step", 52),  # no warm-up: the first phase still waits steps_between_batches
        (200_000, 1000, 4, "before_step", 200_004),  # deprl's clock: one vector step later
    ],
)
def test_first_phase(before, between, step, clock, first):
    schedule = Schedule(10**9, 1000, 1000, before, between, 1, clock)
    assert schedule.first_phase(step) == first
    steps = [k * step for k in range(1, first // step + 1)]
    assert [s for s in steps if schedule.phase_due(s, step)] == [first]  # the clock the run uses agrees


def test_last_step_finishes_the_vector_step_that_reaches_total_steps():
    assert Schedule(401, 200, 200, 0, 1, 1).last_step(4) == 404
    assert Schedule(400, 200, 200, 0, 1, 1).last_step(4) == 400


@pytest.mark.parametrize(("before", "warns"), [(500, True), (400, False)])
def test_a_run_that_never_trains_warns_at_the_start(tmp_path, before, warns):
    """The smoke run (400 env steps, 2 envs): a warm-up of 500 trains never and says so; one of 400
    trains at the last vector step and says nothing."""
    result = ok(
        run_cli(
            "fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--data.init_args.replay.steps_before_batches", str(before),
        )
    )  # fmt: skip
    warned = "makes no gradient update" in result.stderr
    assert warned == warns, result.stderr[-3000:]
    if warns:
        assert "steps_before_batches=500" in result.stderr and "total_steps=400" in result.stderr
    checkpoint = load_ckpt(tmp_path / "smoke_ddpg_pendulum" / "checkpoints" / "last.ckpt")
    assert checkpoint[DATA_KEY]["env_steps"] == 400 and (checkpoint["updates"] == 0) == warns
