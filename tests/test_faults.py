"""Faults during training (issue 6, point 4): envs that raise, return NaN/inf, hang or die, env
worker processes killed from outside, and non-finite losses. Real envs (``tests/faulty_envs.py``),
real worker processes, real training runs."""

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from lit_rl.envs import EnvConfig, ParallelEnvs, SequentialEnvs, make_vector_envs
from lit_rl.envs.vector import MAX_WORKER_RESTARTS
from tests.conftest import DATA_KEY, ROOT, SMOKE, cli_env, last_logged, load_ckpt, logged_rows, ok, run_cli


def faulty(**make_kwargs) -> EnvConfig:
    make_kwargs = {"faults": False, **make_kwargs}
    return EnvConfig(id="FaultyPendulum-v0", make_kwargs=make_kwargs, imports=["tests.faulty_envs"])


def zeros(envs) -> np.ndarray:
    return np.zeros((envs.num_envs, 1), np.float32)


def test_a_hung_worker_is_replaced_and_its_step_ends_as_a_fault(tmp_path):
    envs = ParallelEnvs(faulty(hang_at=3, once_file=str(tmp_path / "hung")), 2, 2, seed=0, worker_timeout=2)
    try:
        envs.reset()
        steps = [envs.step(zeros(envs)) for _ in range(3)]
        hung = [i for i in range(2) if envs.restarts[i]]
        assert len(hung) == 1, "exactly the worker whose env hung was replaced"
        lost = slice(2 * hung[0], 2 * hung[0] + 2)
        assert steps[2].faults == 2
        assert steps[2].terminated[lost].all() and (steps[2].rewards[lost] == 0).all()
        assert not np.delete(steps[2].terminated, lost).any(), "the other worker's envs went on"
        assert [length for _, length in steps[2].finished] == [3, 3]  # the cut episodes, reported
        for _ in range(5):  # the replacement steps normally
            step = envs.step(zeros(envs))
            assert step.faults == 0 and not step.resets.any() and np.isfinite(step.observations).all()
    finally:
        envs.close()


def test_a_worker_killed_from_outside_is_replaced():
    envs = ParallelEnvs(faulty(), 2, 1, seed=0, worker_timeout=10)
    try:
        envs.reset()
        envs.step(zeros(envs))
        os.kill(envs.processes[1].pid, signal.SIGKILL)
        step = envs.step(zeros(envs))
        assert envs.restarts == [0, 1]
        assert step.faults == 1 and step.terminated.tolist() == [False, True]
        assert envs.processes[1].is_alive()
        assert not envs.step(zeros(envs)).resets.any()
    finally:
        envs.close()


def kill(envs, worker: int) -> None:
    os.kill(envs.processes[worker].pid, signal.SIGKILL)
    envs.processes[worker].join(timeout=10)


def test_a_worker_lost_while_the_states_are_read_is_replaced_and_its_episodes_end_at_the_next_step():
    """Lost while a checkpoint reads the envs' RNG and full states: the answers are the
    replacement's, at the start of new episodes; the next step ends the lost episodes as a fault
    without the replacement stepping, as if the worker had been lost in that step."""
    envs = ParallelEnvs(faulty(), 2, 1, seed=0, worker_timeout=10)
    try:
        envs.reset()
        returns = sum(envs.step(zeros(envs)).rewards for _ in range(3))
        acted_on = envs.current_observations()
        kill(envs, 1)
        assert len(envs.rng_states()) == 2 and envs.restarts == [0, 1]
        kill(envs, 1)  # again, while the full states are read
        states = envs.env_states()
        assert envs.restarts == [0, 2]
        assert [state["length"] for state in states] == [3, 0]
        step = envs.step(zeros(envs))
        assert step.faults == 1 and step.terminated.tolist() == [False, True] and step.rewards[1] == 0
        assert np.array_equal(step.next_observations[1], acted_on[1]), "the lost episode ends where it was acted on"
        assert step.finished == [(pytest.approx(float(returns[1])), 4)]
        assert np.array_equal(step.observations[1], states[1]["observation"].numpy()), "the replacement's start"
        assert [state["length"] for state in envs.env_states()] == [4, 0], "the replacement did not step"
        step = envs.step(zeros(envs))
        assert step.faults == 0 and not step.resets.any()
        assert [state["length"] for state in envs.env_states()] == [5, 1]
    finally:
        envs.close()


def test_a_worker_lost_while_states_are_restored_is_replaced_by_one_that_restores_them():
    """Lost in ``load_env_states`` or ``set_rng_states`` (a resume, before the first reset): the
    replacement gets the same states, and the run goes on exactly as without the loss."""
    reference = ParallelEnvs(faulty(), 2, 1, seed=0, worker_timeout=10)
    restored = ParallelEnvs(faulty(), 2, 1, seed=0, worker_timeout=10)
    reseeded = ParallelEnvs(faulty(), 2, 1, seed=0, worker_timeout=10)
    try:
        reference.reset()
        for _ in range(5):
            reference.step(zeros(reference))
        states, rng = reference.env_states(), reference.rng_states()
        kill(restored, 0)
        assert restored.load_env_states(states) and restored.restarts == [1, 0]
        assert np.array_equal(restored.current_observations(), reference.current_observations())
        actions = np.random.default_rng(0).uniform(-1, 1, (8, 2, 1)).astype(np.float32)
        for action in actions:
            x, y = reference.step(action), restored.step(action)
            for name in ("observations", "next_observations", "rewards", "terminated", "truncated"):
                assert np.array_equal(getattr(x, name), getattr(y, name)), name
            assert x.finished == y.finished and y.faults == 0
        rng = reference.rng_states()
        kill(reseeded, 1)
        reseeded.set_rng_states(rng)
        assert reseeded.restarts == [0, 1]
        reference.set_rng_states(rng)
        assert np.array_equal(reseeded.reset(), reference.reset())
        assert np.array_equal(reseeded.step(actions[0]).observations, reference.step(actions[0]).observations)
    finally:
        for envs in (reference, restored, reseeded):
            envs.close()


def test_a_worker_that_keeps_dying_stops_the_run_with_its_name():
    envs = ParallelEnvs(faulty(die_at=2), 2, 1, seed=0, worker_timeout=10)
    try:
        envs.reset()
        with pytest.raises(RuntimeError, match=rf"env worker 0 died .*replaced {MAX_WORKER_RESTARTS} times"):
            for _ in range(4 * MAX_WORKER_RESTARTS):
                envs.step(zeros(envs))
    finally:
        envs.close()


@pytest.mark.parametrize("parallel", [1, 2])
def test_an_env_whose_reset_raises_is_replaced(parallel):
    envs = make_vector_envs(faulty(reset_raises_at=2, max_episode_steps=3), parallel, 1, seed=0)
    try:
        envs.reset()
        faults = [envs.step(zeros(envs)).faults for _ in range(5)]
        assert faults == [0, 0, parallel, 0, 0]  # the reset after the first episode raised
    finally:
        envs.close()


@pytest.mark.parametrize("reward", [math.inf, -math.inf, math.nan])
def test_a_non_finite_reward_is_a_fault(reward):
    envs = SequentialEnvs(faulty(big_reward=reward, big_reward_at=(2,)), 1, seed=0)
    envs.reset()
    step = [envs.step(zeros(envs)) for _ in range(3)][1]
    assert step.faults == 1 and step.terminated[0] and step.rewards[0] == 0.0


def fit_faulty(tmp_path, *extra, make_kwargs="{faults: false}"):
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--name", "run"]
    args += ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.enable_progress_bar", "false"]
    args += ["--data.init_args.env.id", "FaultyPendulum-v0", "--data.init_args.env.imports", "[tests.faulty_envs]"]
    return run_cli(*args, "--data.init_args.env.make_kwargs", make_kwargs, *extra)


def test_training_goes_on_through_simulator_faults_and_a_hung_worker(tmp_path):
    """Exceptions, NaN observations (in training and test episodes) and a worker hung for longer
    than worker_timeout during a real run with 2 worker processes: all counted, the run completes."""
    make_kwargs = f"{{faults: true, hang_at: 2, once_file: {tmp_path / 'hung'}}}"
    result = fit_faulty(
        tmp_path, "--data.init_args.parallel", "2", "--data.init_args.sequential", "1",
        "--data.init_args.worker_timeout", "3", make_kwargs=make_kwargs,
    )  # fmt: skip
    ok(result)
    assert "did not answer within 3 s (hung): replacing it" in result.stderr
    state = load_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")[DATA_KEY]
    # the worker that did not hang: an exception and a NaN observation; the hung one: its lost
    # step, then its replacement's exception and NaN; the test env: the same two in its first two
    # episodes
    assert state["env_steps"] == 400 and state["faults"] == 2 + 1 + 2 + 2
    assert last_logged(logged_rows(tmp_path / "run"), "env/faults") >= 5


def worker_pids(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in children if b"spawn_main" in open(f"/proc/{c}/cmdline", "rb").read()]


def test_a_worker_killed_during_training_is_replaced(tmp_path):
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--name", "run", "--trainer.logger", "false"]
    args += ["--data.init_args.parallel", "2", "--data.init_args.sequential", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "lit_rl", *args], cwd=ROOT, env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file():
            assert process.poll() is None and time.monotonic() < deadline, "the run did not get to its first save"
            time.sleep(0.01)
        workers = worker_pids(process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=240)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stderr[-5000:]
    assert "died (exit code -9): replacing it" in stderr
    state = load_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")[DATA_KEY]
    assert state["env_steps"] == 400 and state["faults"] == 1


def test_a_non_finite_loss_skips_the_update_and_training_goes_on(tmp_path):
    # A reward of 3e38 is finite, so the env layer lets it through, but the critic's squared error
    # overflows to inf on every batch that samples it.
    result = fit_faulty(tmp_path, make_kwargs="{faults: false, big_reward_at: [60]}")
    ok(result)
    assert "non-finite loss (inf): update skipped" in result.stderr
    assert last_logged(logged_rows(tmp_path / "run"), "train/nonfinite_batches") > 0
    weights = load_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_non_finite_losses_in_a_row_stop_training_with_a_clear_error(tmp_path):
    result = fit_faulty(tmp_path, make_kwargs="{faults: false, big_reward_always: true}")
    assert result.returncode != 0
    assert "10 batches in a row had a non-finite loss at env step 150 (inf)" in result.stderr
