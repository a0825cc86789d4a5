"""Where test episodes start: ``fixed`` (lit_rl's: the same starts every evaluation) and
``continued`` (deprl's: the test env seeded once, its generator continued, also across a resume)."""

import csv

import pytest
import torch

from lit_rl.acting import Actor
from lit_rl.algos import DDPG
from lit_rl.data.collection import Progress
from lit_rl.data.evaluation import Evaluator
from lit_rl.envs import EnvConfig
from tests.conftest import ROOT, ok, run_cli

PENDULUM = EnvConfig(id="Pendulum-v1", make_kwargs={"max_episode_steps": 20})


def evaluations(test_seeds: str, episodes: int, times: int, state: dict | None = None):
    """The returns of ``times`` evaluations of an untrained DDPG policy, and the evaluator's state after them."""
    torch.manual_seed(0)
    module = DDPG(observation_dim=3, action_bounds=[[-2.0], [2.0]], actor_hidden=(8,), critic_hidden=(8,))
    evaluator = Evaluator(PENDULUM, episodes, seed=0, progress=Progress(), test_seeds=test_seeds)
    if state is not None:
        evaluator.load_state_dict(state)
    try:
        actor = Actor(module)
        returns = [[r.episode_return for r in evaluator.run(actor, 0, 1, trainer=None)] for _ in range(times)]
        return returns, evaluator.state_dict()
    finally:
        evaluator.close()


def test_fixed_starts_repeat_and_continued_starts_go_on():
    fixed, state = evaluations("fixed", episodes=2, times=2)
    assert fixed[0] == fixed[1] and state == {}
    continued, _ = evaluations("continued", episodes=2, times=2)
    assert continued[0][0] == fixed[0][0], "the first episode starts from the same seed"
    assert continued[0][1] != fixed[0][1] and continued[1] != continued[0]
    longer, _ = evaluations("continued", episodes=4, times=1)
    assert longer[0] == continued[0] + continued[1], "one generator through all evaluations"


def test_continued_starts_survive_the_evaluator_state():
    (first, second), _ = evaluations("continued", episodes=2, times=2)
    (alone,), state = evaluations("continued", episodes=2, times=1)
    assert alone == first and "rng" in state
    (resumed,), _ = evaluations("continued", episodes=2, times=1, state=state)
    assert resumed == second


def test_an_unknown_test_seeds_value_is_refused():
    with pytest.raises(ValueError, match="test_seeds must be one of fixed, continued, got 'random'"):
        Evaluator(PENDULUM, 1, seed=0, progress=Progress(), test_seeds="random")


def logged_test_returns(directory) -> dict[float, float]:
    """test/episode_return per env step, from every CSVLogger metrics.csv under ``directory``; the
    spread of the test episode lengths is logged beside it."""
    out = {}
    for path in sorted(directory.glob("**/metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get("test/episode_return"):
                    out[float(row["env_steps"])] = float(row["test/episode_return"])
                    low, std = float(row["test/episode_length_min"]), float(row["test/episode_length_std"])
                    assert low <= float(row["test/episode_length"]) <= float(row["test/episode_length_max"])
                    assert std >= 0
    return out


def test_a_resumed_fit_continues_the_test_starts(tmp_path):
    """``continued`` through ``fit``: the evaluations after a resume are those an uninterrupted run
    made (a resume repeats the evaluation of the epoch its checkpoint ended, so it takes two
    evaluations before the checkpoint to tell a restored generator from a reseeded one)."""
    config = ["--config", str(ROOT / "configs" / "smoke" / "ddpg_pendulum.yaml"), "--trainer.enable_progress_bar",
              "false", "--data.init_args.test_seeds", "continued", "--data.init_args.epoch_steps", "100",
              "--data.init_args.save_steps", "100"]  # fmt: skip
    logged = {}
    for name, budgets in (("straight", ["300"]), ("resumed", ["200", "300"])):
        for total in budgets:
            logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
                      "--trainer.logger.save_dir", str(tmp_path / name / "logs")]  # fmt: skip
            ok(run_cli("fit", *config, *logger, "--working_dir", str(tmp_path), "--name", name,
                       "--data.init_args.total_steps", total))  # fmt: skip
        logged[name] = logged_test_returns(tmp_path / name / "logs")
    assert logged["resumed"] == logged["straight"] and set(logged["straight"]) == {100.0, 200.0, 300.0}
