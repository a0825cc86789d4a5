import pytest
import torch

from lit_rl.data.replay import ReplayBuffer

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
    assert buffer.next_observations[3, 0].item() == 5.0

    # column 1: truncation at step 1 ends the episode but keeps bootstrapping from its true final obs
    assert buffer.rewards[0, 1].item() == pytest.approx(10 + g * 20)
    assert buffer.discounts[0, 1].item() == pytest.approx(g * g)
    assert buffer.next_observations[0, 1].item() == 2.0  # final obs of the truncated step
    assert buffer.rewards[1, 1].item() == pytest.approx(20)
    assert buffer.discounts[1, 1].item() == pytest.approx(g)
    assert buffer.rewards[2, 1].item() == pytest.approx(30 + g * 40 + g * g * 50)
    assert buffer.discounts[2, 1].item() == pytest.approx(g**3)
    assert buffer.next_observations[2, 1].item() == 5.0


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
    for step in range(7):
        store_obs = torch.randn(2, 3)
        buffer.store(
            store_obs,
            torch.randn(2, 1),
            torch.randn(2, 3),
            torch.randn(2),
            torch.tensor([step == 3, False]),
            torch.tensor([False, step == 5]),
        )
    path = tmp_path / "replay.bin"
    size = buffer.save(path)
    assert size == path.stat().st_size < buffer.nbytes  # only filled rows are written
    header = len(path.read_bytes().split(b"\n", 1)[0]) + 1
    assert size - header == 7 * 2 * ReplayBuffer.transition_bytes(3, 1)  # the disk-space check's estimate
    assert buffer.nbytes == buffer.rows * 2 * ReplayBuffer.transition_bytes(3, 1)
    other = ReplayBuffer(size=40, num_envs=2, observation_dim=3, action_dim=1, return_steps=2)
    other.load(path)
    assert (other.index, other.filled) == (buffer.index, buffer.filled)
    for name in ReplayBuffer._FIELDS:
        assert torch.equal(getattr(other, name)[:7], getattr(buffer, name)[:7])


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
    with pytest.raises(ValueError, match="does not fit this run"):
        other.load(tmp_path / "r.bin")


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
