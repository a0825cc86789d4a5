import hashlib
import json
from pathlib import Path

import pytest
import torch

from lit_rl.data.replay import ReplayBuffer
from tests.replay_reference import BATCH_FIELDS, ROW_FIELDS, TwoArrayReplay

GAMMA = 0.9


def store(buffer, step, rewards, terminated, truncated):
    """Store one row where observations encode the step number, so next_obs can be checked."""
    e = buffer.num_envs
    obs = torch.full((e, 1), float(step))
    buffer.store(
        obs,
        torch.zeros(e, 1),
        obs + 1,
        torch.tensor(rewards, dtype=torch.float32),
        torch.tensor(terminated),
        torch.tensor(truncated),
    )


def next_observations(buffer):
    """Each row's bootstrap observation, in time order (row order until the ring wraps)."""
    return buffer.recent(buffer.filled).next_observations


def test_n_step_returns_stop_at_episode_boundaries():
    buffer = ReplayBuffer(size=20, num_envs=2, observation_dim=1, action_dim=1, return_steps=3, discount=GAMMA)
    # column 0: rewards 1, 2, 3(terminal), 4, 5 ; column 1: rewards 10, 20(truncated), 30, 40, 50
    store(buffer, 0, [1, 10], [False, False], [False, False])
    store(buffer, 1, [2, 20], [False, False], [False, True])
    store(buffer, 2, [3, 30], [True, False], [False, False])
    store(buffer, 3, [4, 40], [False, False], [False, False])
    store(buffer, 4, [5, 50], [False, False], [False, False])

    g = GAMMA
    # column 0, row 0: full 3-step return ending in the terminal step: no bootstrap
    assert buffer.rewards[0, 0].item() == pytest.approx(1 + g * 2 + g * g * 3)
    assert buffer.discounts[0, 0].item() == pytest.approx(0.0)
    # row 1: 2 steps reach the terminal, then stop
    assert buffer.rewards[1, 0].item() == pytest.approx(2 + g * 3)
    assert buffer.discounts[1, 0].item() == pytest.approx(0.0)
    # row 2 is the terminal transition itself
    assert buffer.rewards[2, 0].item() == pytest.approx(3)
    # row 3 starts a new episode: rows 3, 4 only, bootstrapping from obs after step 4
    assert buffer.rewards[3, 0].item() == pytest.approx(4 + g * 5)
    assert buffer.discounts[3, 0].item() == pytest.approx(g * g)
    assert next_observations(buffer)[3, 0].item() == 5.0

    # column 1: truncation at step 1 ends the episode but keeps bootstrapping from its true final obs
    assert buffer.rewards[0, 1].item() == pytest.approx(10 + g * 20)
    assert buffer.discounts[0, 1].item() == pytest.approx(g * g)
    assert next_observations(buffer)[0, 1].item() == 2.0  # final obs of the truncated step
    assert buffer.rewards[1, 1].item() == pytest.approx(20)
    assert buffer.discounts[1, 1].item() == pytest.approx(g)
    assert buffer.rewards[2, 1].item() == pytest.approx(30 + g * 40 + g * g * 50)
    assert buffer.discounts[2, 1].item() == pytest.approx(g**3)
    assert next_observations(buffer)[2, 1].item() == 5.0


def test_one_step_return_and_ring_wraparound():
    buffer = ReplayBuffer(size=3, num_envs=1, observation_dim=1, action_dim=1, return_steps=1, discount=GAMMA)
    for step in range(5):
        store(buffer, step, [float(step)], [False], [False])
    assert len(buffer) == 3
    assert buffer.index == 2
    assert sorted(buffer.observations[:, 0, 0].tolist()) == [2.0, 3.0, 4.0]
    assert buffer.discounts[:, 0].tolist() == pytest.approx([GAMMA] * 3)


def test_mark_episode_boundary_stops_chaining():
    buffer = ReplayBuffer(size=10, num_envs=1, observation_dim=1, action_dim=1, return_steps=3, discount=GAMMA)
    store(buffer, 0, [1.0], [False], [False])
    buffer.mark_episode_boundary()
    store(buffer, 1, [100.0], [False], [False])
    assert buffer.rewards[0, 0].item() == pytest.approx(1.0)
    assert buffer.discounts[0, 0].item() == pytest.approx(GAMMA)


def test_sample_shapes_and_values_come_from_filled_rows():
    buffer = ReplayBuffer(size=100, num_envs=4, observation_dim=3, action_dim=2, return_steps=1)
    for step in range(5):
        e = 4
        buffer.store(
            torch.full((e, 3), float(step)),
            torch.ones(e, 2),
            torch.zeros(e, 3),
            torch.ones(e),
            torch.zeros(e, dtype=torch.bool),
            torch.zeros(e, dtype=torch.bool),
        )
    batch = buffer.sample(64)
    assert batch.observations.shape == (64, 3)
    assert batch.actions.shape == (64, 2)
    assert batch.rewards.shape == (64,) and batch.discounts.shape == (64,)
    assert set(batch.observations[:, 0].tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_save_load_roundtrip(tmp_path):
    buffer = ReplayBuffer(size=40, num_envs=2, observation_dim=3, action_dim=1, return_steps=2)
    store_obs = torch.randn(2, 3)
    for step in range(7):
        terminated, truncated = torch.tensor([step == 3, False]), torch.tensor([False, step == 5])
        next_obs = torch.randn(2, 3)
        buffer.store(store_obs, torch.randn(2, 1), next_obs, torch.randn(2), terminated, truncated)
        store_obs = torch.where((terminated | truncated)[:, None], 5.0, next_obs)  # 5: an episode starts
    assert sorted(buffer.finals) == [2 * 3 + 0, 2 * 5 + 1]  # the ends' final observations, by row * E + env
    path = tmp_path / "replay.bin"
    size = buffer.save(path)
    assert size == path.stat().st_size < buffer.nbytes  # only filled rows are written
    header = len(path.read_bytes().split(b"\n", 1)[0]) + 1
    extra_row, finals = 2 * 3 * 4, 2 * (8 + 3 * 4)  # the newest row's successor; key and observation per end
    assert size - header == 7 * 2 * ReplayBuffer.transition_bytes(3, 1) + extra_row + finals
    assert buffer.nbytes == buffer.rows * 2 * ReplayBuffer.transition_bytes(3, 1) + extra_row + 2 * 3 * 4
    other = ReplayBuffer(size=40, num_envs=2, observation_dim=3, action_dim=1, return_steps=2)
    other.load(path)
    assert (other.index, other.filled) == (buffer.index, buffer.filled)
    for name in ReplayBuffer._FIELDS:
        assert torch.equal(getattr(other, name)[:7], getattr(buffer, name)[:7])
    assert torch.equal(other.newest_next, buffer.newest_next)
    assert other.finals.keys() == buffer.finals.keys()
    assert all(torch.equal(other.finals[key], buffer.finals[key]) for key in buffer.finals)
    assert torch.equal(next_observations(other), next_observations(buffer))


def test_load_rejects_a_buffer_of_another_shape(tmp_path):
    buffer = ReplayBuffer(size=40, num_envs=2, observation_dim=3, action_dim=1)
    store_obs = torch.zeros(2, 3)
    buffer.store(
        store_obs,
        torch.zeros(2, 1),
        store_obs,
        torch.zeros(2),
        torch.zeros(2, dtype=torch.bool),
        torch.zeros(2, dtype=torch.bool),
    )
    buffer.save(tmp_path / "r.bin")
    other = ReplayBuffer(size=40, num_envs=4, observation_dim=3, action_dim=1)
    with pytest.raises(ValueError, match=r"env columns \(parallel x sequential\) 2, this run has 4"):
        other.load(tmp_path / "r.bin")


# One setting changed at a time from ReplayBuffer(size=40, num_envs=2, observation_dim=3,
# action_dim=1, return_steps=3, discount=0.9): the refusal's words, both values and the option.
CHANGED_SETTINGS = [
    ({"num_envs": 4}, "env columns (parallel x sequential) 2, this run has 4", "--data.init_args.parallel"),
    ({"observation_dim": 5}, "observation size 3, this run has 5", None),
    ({"action_dim": 2}, "action size 1, this run has 2", None),
    ({"size": 60}, "rows per env column 20, this run has 30", "--data.init_args.replay.size"),
    ({"return_steps": 1}, "replay.return_steps 3, this run has 1", "--data.init_args.replay.return_steps 3"),
    ({"discount": 0.99}, "replay.discount 0.9, this run has 0.99", "--data.init_args.replay.discount 0.9"),
]


@pytest.mark.parametrize(("change", "words", "option"), CHANGED_SETTINGS, ids=lambda v: str(v)[:20])
def test_a_replay_file_written_with_other_settings_is_refused_by_name(tmp_path, change, words, option):
    """Issue 30: a run saved with ``return_steps: 3`` and resumed with 1 would pair 3-step rewards
    with 1-step bootstrap observations; any setting the file was written with that the resumed
    run does not have is refused in one line naming it, both values and the way out, both when
    the file is read and by ``replay_file_problem``, the check a resume makes before it starts."""
    from lit_rl.training.resume import replay_file_problem, replay_settings

    settings = {"size": 40, "num_envs": 2, "observation_dim": 3, "action_dim": 1, "return_steps": 3, "discount": 0.9}
    buffer = ReplayBuffer(**settings)
    random_episodes([buffer], 7, seed=0)
    size = buffer.save(tmp_path / "r.replay", token="t")
    other = ReplayBuffer(**{**settings, **change})
    with pytest.raises(ValueError) as refused:
        other.load(tmp_path / "r.replay", token="t")
    message = str(refused.value)
    assert "\n" not in message and words in message, message
    assert "--resume false" in message and "--name" in message
    assert option is None or option in message
    record = {"replay_file": "r.replay", "replay_bytes": size}
    here = replay_settings(other._header())
    assert replay_file_problem(record, tmp_path, here) == message
    assert replay_file_problem(record, tmp_path, replay_settings(buffer._header())) is None
    buffer.load(tmp_path / "r.replay", token="t")  # the same settings load


def test_an_empty_buffer_saves_and_loads(tmp_path):
    buffer = ReplayBuffer(size=40, num_envs=2, observation_dim=3, action_dim=1)
    buffer.save(tmp_path / "empty.bin")
    other = ReplayBuffer(size=40, num_envs=2, observation_dim=3, action_dim=1)
    other.load(tmp_path / "empty.bin")
    assert len(other) == 0


@pytest.mark.parametrize(("clock", "first_phase"), [("after_step", 12), ("before_step", 16)])
def test_phase_clock(clock, first_phase):
    """deprl's trainer passes the count from before the vector step to ``Buffer.ready``: with 4 envs
    and 12 steps before batches, its first phase comes after 16 transitions, lit_rl's after 12."""
    from lit_rl.data.schedule import Schedule

    schedule = Schedule(100, 20, 20, steps_before_batches=12, steps_between_batches=8, batch_iterations=1,
                        phase_clock=clock)  # fmt: skip
    phases = [steps for steps in range(4, 41, 4) if schedule.phase_due(steps, 4)]
    assert phases == [first_phase, first_phase + 8, first_phase + 16, first_phase + 24]


# ----------------------------------------------------------------- each observation stored once
#
# ``TwoArrayReplay`` (tests/replay_reference.py) is the buffer as it was before, with its file
# writer (format 1): the reference every sample, ``recent`` row and loaded file of
# ``ReplayBuffer`` must equal bit for bit.

FIXTURES = Path(__file__).parent / "fixtures" / "replay_v1"


def assert_same_samples(new, old, batch_size=97, seeds=(0, 1, 2)):
    """Same batches from the same generator, and from the global RNG with the same draws."""
    for seed in seeds:
        a = new.sample(batch_size, torch.Generator().manual_seed(seed))
        b = old.sample(batch_size, torch.Generator().manual_seed(seed))
        for name in BATCH_FIELDS:
            assert torch.equal(getattr(a, name).view(torch.uint8), b[name].view(torch.uint8)), name
    torch.manual_seed(5)
    a = new.sample(batch_size)
    after_new = torch.get_rng_state()
    torch.manual_seed(5)
    b = old.sample(batch_size)
    assert torch.equal(torch.get_rng_state(), after_new)  # the same random draws
    assert all(torch.equal(getattr(a, name), b[name]) for name in BATCH_FIELDS)


def assert_same_rows(new, old):
    assert (len(new), new.filled, new.index) == (old.filled * old.num_envs, old.filled, old.index)
    for count in sorted({0, 1, old.filled // 2, old.filled}):
        a, b = new.recent(count), old.recent(count)
        for name in ROW_FIELDS:
            assert torch.equal(getattr(a, name), b[name]), (name, count)


def random_episodes(buffers, steps, seed, end_rate=0.15, boundaries=(), jumps=()):
    """Feed every buffer the same rows: episodes that end (terminated or truncated) at random,
    the next row starting where the last ended; ``boundaries``: steps after which the envs restart
    (``mark_episode_boundary``, new observations); ``jumps``: steps after which an observation
    changes without an episode end."""
    g = torch.Generator().manual_seed(seed)
    first = buffers[0]
    e, o, a = first.num_envs, first.observations.shape[-1], first.actions.shape[-1]
    obs = torch.randn(e, o, generator=g)
    for step in range(steps):
        ends = torch.rand(e, generator=g) < end_rate
        terminated = ends & (torch.rand(e, generator=g) < 0.5)
        truncated = ends & ~terminated
        next_obs = torch.randn(e, o, generator=g)
        row = (obs, torch.randn(e, a, generator=g), next_obs, torch.randn(e, generator=g), terminated, truncated)
        for buffer in buffers:
            buffer.store(*row)
        obs = torch.where(ends[:, None], torch.randn(e, o, generator=g), next_obs)
        if step in boundaries:
            for buffer in buffers:
                buffer.mark_episode_boundary()
            obs = torch.randn(e, o, generator=g)
        if step in jumps:
            obs = obs.clone()
            obs[0, 0] += 1.0


def pair(size, num_envs, return_steps, observation_dim=3, action_dim=2):
    args = (size, num_envs, observation_dim, action_dim, return_steps, GAMMA)
    return ReplayBuffer(*args), TwoArrayReplay(*args)


@pytest.mark.parametrize("return_steps", [1, 3, 5])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_samples_and_rows_equal_those_of_the_two_array_buffer(return_steps, num_envs):
    """Episode ends of both kinds, restarts and jumps, before and after the ring wraps (twice)."""
    new, old = pair(11 * num_envs, num_envs, return_steps)
    for chunk in range(6):  # 6 x 5 rows into an 11-row ring: every position of a wrap is checked
        random_episodes(
            [new, old], 5, seed=chunk, boundaries={2} if chunk == 3 else (), jumps={1} if chunk == 4 else ()
        )
        assert_same_samples(new, old)
        assert_same_rows(new, old)
    assert torch.equal(new.horizons[: new.filled], new._horizons_from_resets(return_steps))


@pytest.mark.parametrize("return_steps", [1, 3, 5])
def test_episode_ends_across_the_wrap(return_steps):
    """Every env ends an episode on the last row before the wrap and on the first after it."""
    new, old = pair(2 * 6, 2, return_steps)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 3, generator=g)
    for step in range(15):
        terminated = torch.tensor([step in (5, 6, 12), step == 11])
        truncated = torch.tensor([step == 9, step in (5, 6)])
        next_obs = torch.randn(2, 3, generator=g)
        row = (obs, torch.randn(2, 2, generator=g), next_obs, torch.randn(2, generator=g), terminated, truncated)
        new.store(*row)
        old.store(*row)
        obs = torch.where((terminated | truncated)[:, None], torch.randn(2, 3, generator=g), next_obs)
        assert_same_samples(new, old, seeds=(step,))
        assert_same_rows(new, old)


def test_only_episode_ends_keep_a_second_observation():
    new, old = pair(2 * 50, 2, 3, observation_dim=20)
    random_episodes([new, old], 80, seed=0)
    ended = old.resets[: old.filled].clone()
    ended[(old.index - 1) % old.rows] = False  # the newest row's successor waits in the extra row
    assert sorted(new.finals) == sorted((row * 2 + env) for row, env in ended.nonzero().tolist())
    fixed = new.rows * 2 * ReplayBuffer.transition_bytes(20, 2) + 2 * 20 * 4  # + the extra row
    assert new.nbytes == fixed + len(new.finals) * 20 * 4
    assert new.nbytes < 0.75 * sum(getattr(old, name).nbytes for name in TwoArrayReplay.FIELDS)


@pytest.mark.parametrize("return_steps", [1, 3, 5])
def test_a_resumed_buffer_samples_and_continues_as_the_uninterrupted_one(tmp_path, return_steps):
    """Save and load with the ring wrapped, sample right away, then the restart of a resume
    (``mark_episode_boundary``, new observations) and more rows: as the two-array buffer that
    was never saved."""
    new, old = pair(2 * 9, 2, return_steps)
    random_episodes([new, old], 13, seed=1)
    size = new.save(tmp_path / "r.replay", token="t")
    assert size == (tmp_path / "r.replay").stat().st_size
    resumed = ReplayBuffer(2 * 9, 2, 3, 2, return_steps, GAMMA)
    resumed.load(tmp_path / "r.replay", token="t")
    assert (resumed.index, resumed.filled, len(resumed)) == (new.index, new.filled, len(new))
    assert sorted(resumed.finals) == sorted(new.finals)
    assert_same_samples(resumed, old)
    assert_same_rows(resumed, old)
    for buffer in (resumed, old):
        buffer.mark_episode_boundary()
    random_episodes([resumed, old], 6, seed=3)
    assert_same_samples(resumed, old)
    assert_same_rows(resumed, old)


@pytest.mark.parametrize("return_steps", [1, 3, 5])
@pytest.mark.parametrize("steps", [4, 9, 14])
def test_a_format_1_file_loads_and_samples_as_its_buffer_did(tmp_path, return_steps, steps):
    """A file of the two-array buffer (not yet full, full at index 0, wrapped): the loaded buffer
    samples as that buffer did, and both go on alike."""
    new, old = pair(2 * 9, 2, return_steps)
    random_episodes([old], steps, seed=4, boundaries={steps - 3}, jumps={1})
    old.save_format_1(tmp_path / "old.replay", token="t")
    new.load(tmp_path / "old.replay", token="t")
    assert_same_samples(new, old)
    assert_same_rows(new, old)
    random_episodes([new, old], 6, seed=5)
    assert_same_samples(new, old)
    assert_same_rows(new, old)


def digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", ["wrapped", "partial", "one_step"])
def test_replay_files_of_the_earlier_version_load_with_their_checkpoint(tmp_path, name):
    """``tests/fixtures/replay_v1``: files written by the ReplayBuffer that stored next
    observations (see its README), with what that buffer sampled (sha256 of the batches): loaded
    through ``ReplayFiles.load`` with the position, size and token their checkpoint recorded."""
    from lit_rl.data.checkpoint_state import ReplayFiles

    expected = json.loads((FIXTURES / "expected.json").read_text())[name]
    replay = ReplayBuffer(**expected["init"])
    state = {key: expected[key] for key in ("replay_bytes", "replay_position")}
    state.update(replay_file=f"{name}.replay", replay_token=expected["token"])
    assert ReplayFiles.load(replay, state, str(FIXTURES / "last.ckpt"))
    assert [replay.index, replay.filled] == expected["replay_position"]
    for seed, batch_size, sha in expected["samples"]:
        batch = replay.sample(batch_size, torch.Generator().manual_seed(seed))
        assert digest(getattr(batch, field) for field in BATCH_FIELDS) == sha
    rows = replay.recent(replay.filled)
    assert digest(getattr(rows, field) for field in ROW_FIELDS) == expected["recent_rows"]
    # saved again (format 2), it samples the same
    record = ReplayFiles.save(replay, tmp_path / "again.replay")
    again = ReplayBuffer(**expected["init"])
    assert ReplayFiles.load(again, record, str(tmp_path / "last.ckpt"))
    for seed, batch_size, sha in expected["samples"]:
        batch = again.sample(batch_size, torch.Generator().manual_seed(seed))
        assert digest(getattr(batch, field) for field in BATCH_FIELDS) == sha


def test_a_format_1_file_of_another_shape_is_refused():
    expected = json.loads((FIXTURES / "expected.json").read_text())["wrapped"]
    replay = ReplayBuffer(**{**expected["init"], "observation_dim": 4})
    with pytest.raises(ValueError, match="observation size 3, this run has 4"):
        replay.load(FIXTURES / "wrapped.replay")


def test_recent_rows_are_the_newest_in_time_order():
    new, old = pair(2 * 5, 2, 1)
    random_episodes([new, old], 8, seed=0)
    rows = new.recent(3)
    assert torch.equal(rows.observations, old.observations[[0, 1, 2]])
    with pytest.raises(ValueError, match="holds 5 rows"):
        new.recent(6)
