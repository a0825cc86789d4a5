"""lit_rl.training.resume: checkpoints written before the acting layer load in today's layout,
each DDP rank gets its own parts when fitting, and a replay file written with other settings is
refused."""

import pytest
import torch

from lit_rl.training.distributed import RANKS_KEY
from lit_rl.training.resume import DATA_SECTION, for_rank, upgrade
from tests.conftest import SMOKE, load_ckpt, ok, run_cli


def old_checkpoint(ranks: int) -> dict:
    """The layout before the acting layer: the module saved ``acting`` at the top."""

    def acting(rank: int) -> dict:
        return {
            "exploration_noise": {"state": torch.full((2, 1), float(rank))},
            "dep": {"shape": [2, 3, 10], "controller": {"t": rank}, "switch": {}},
            "normalizer_pending": {"new_count": torch.tensor(float(rank))},
            "model_replay": {"filled": rank},
        }

    def data(rank: int) -> dict:
        return {"episodes": rank, "replay_file": f"r{rank}.replay"}

    checkpoint = {"acting": acting(0), DATA_SECTION: {"env_steps": 100, **data(0)}, "state_dict": {}}
    if ranks > 1:
        checkpoint["acting"][RANKS_KEY] = [acting(r) for r in range(ranks)]
        checkpoint[DATA_SECTION][RANKS_KEY] = [data(r) for r in range(ranks)]
    return checkpoint


@pytest.mark.parametrize("ranks", [1, 2])
def test_the_old_acting_state_moves_to_the_data_side_and_the_rest_to_the_learner(ranks):
    checkpoint = upgrade(old_checkpoint(ranks))
    assert "acting" not in checkpoint
    data, learner = checkpoint[DATA_SECTION], checkpoint["learner"]
    assert set(data["acting"]) == {"exploration_noise", "dep"} and data["acting"]["dep"]["controller"]["t"] == 0
    assert set(learner) - {RANKS_KEY} == {"normalizer_pending", "model_replay"}
    for rank in range(ranks):
        mine = for_rank(upgrade(old_checkpoint(ranks)), rank, ranks, "test")
        assert mine[DATA_SECTION]["env_steps"] == 100  # shared
        assert mine[DATA_SECTION]["episodes"] == rank and mine[DATA_SECTION]["acting"]["dep"]["controller"]["t"] == rank
        assert mine["learner"]["model_replay"]["filled"] == rank
        assert torch.equal(mine[DATA_SECTION]["acting"]["exploration_noise"]["state"], torch.full((2, 1), float(rank)))
        assert RANKS_KEY not in mine[DATA_SECTION] and RANKS_KEY not in mine["learner"]


def test_a_checkpoint_of_this_version_is_left_as_it_is():
    checkpoint = {"learner": {}, DATA_SECTION: {"acting": {}, "env_steps": 5}}
    assert upgrade(dict(checkpoint)) == checkpoint


def test_another_number_of_processes_is_refused_by_name():
    with pytest.raises(ValueError, match="written by 2 training process"):
        for_rank(upgrade(old_checkpoint(2)), 0, 1, "checkpoint x")


def test_a_resume_with_another_return_steps_is_refused_with_the_way_out(tmp_path):
    """Issue 30: data keys apply on resume, and the smoke run's replay file holds 3-step returns; a
    resume with ``return_steps: 1`` would pair them with 1-step bootstrap observations. It is
    refused before a step is taken, naming the key, both values and the way out, and the run's
    checkpoint is left as it was."""
    args = ["fit", "--config", str(SMOKE), "--working_dir", str(tmp_path), "--trainer.logger", "false"]
    ok(run_cli(*args, "--data.init_args.total_steps", "200"))
    last = tmp_path / "smoke_ddpg_pendulum" / "checkpoints" / "last.ckpt"
    before = last.stat().st_mtime_ns
    refused = run_cli(*args, "--data.init_args.total_steps", "600", "--data.init_args.replay.return_steps", "1")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert "was written with replay.return_steps 3, this run has 1" in line, refused.stderr[-3000:]
    assert "--data.init_args.replay.return_steps 3" in line and "--resume false" in line and "--name" in line
    assert last.stat().st_mtime_ns == before and load_ckpt(last)[DATA_SECTION]["env_steps"] == 200
