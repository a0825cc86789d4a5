"""Pink noise (``exploration_noise: pink``, ``lit_rl.acting.PinkNoise``): pink-noise-rl's colored
noise process per env, a new sequence at each episode start, added to a deterministic policy's
actions (DDPG, TD3, Dyna) or the standard-normal draw of a stochastic policy's sampling (SAC,
CrossQ, MPO), and its state in the checkpoint so a resumed run continues the same noise."""

import io

import numpy as np
import pytest
import torch
from pink import ColoredNoiseProcess

from lit_rl.acting import Actor, PinkNoise, RolloutContext
from lit_rl.algos import DDPG, MPO, SAC, TD3, CrossQ
from tests.conftest import DATA_KEY, ROOT, load_ckpt, ok, run_cli
from tests.crash_helpers import assert_same_run, kill_when, same, start_fit, stop_at_first_save

BOUNDS = [[-2.0, -1.0, 0.0], [2.0, 1.0, 1.0]]


def weights_only_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def no_starts(envs: int) -> torch.Tensor:
    return torch.zeros(envs, dtype=torch.bool)


def test_each_env_plays_pink_noise_rl_s_process_seeded_from_torch():
    torch.manual_seed(3)
    noise = PinkNoise(0.1, torch.ones(3), beta=1.0, seq_len=16)
    drawn = torch.stack([noise.draw(no_starts(2)) for _ in range(40)])  # [T, E, A], past two sequence cuts
    torch.manual_seed(3)
    rng = np.random.Generator(np.random.PCG64(int(torch.randint(0, 2**63 - 1, (1,)).item())))
    processes = [ColoredNoiseProcess(1.0, (3, 16), rng=rng) for _ in range(2)]
    expected = np.stack([np.stack([p.sample() for p in processes]) for _ in range(40)])
    assert drawn.dtype == torch.float32
    torch.testing.assert_close(drawn, torch.from_numpy(expected).float(), rtol=0, atol=0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_the_power_spectrum_falls_as_one_over_f_to_the_beta(beta):
    torch.manual_seed(0)
    noise = PinkNoise(0.1, torch.ones(4), beta=beta, seq_len=4096)
    x = torch.stack([noise.draw(no_starts(4)) for _ in range(4096)]).double().numpy()  # [T, E, A]
    if beta < 2:  # unit variance (red noise's is too, but 16 sequences of it estimate it poorly)
        assert abs(np.mean(x**2) - 1.0) < 0.15
    power = (np.abs(np.fft.rfft(x, axis=0)) ** 2).reshape(2049, -1).mean(1)[1:]
    frequencies = np.fft.rfftfreq(4096)[1:]
    slope = np.polyfit(np.log(frequencies), np.log(power), 1)[0]
    assert abs(slope + beta) < 0.15, slope


def test_an_episode_start_begins_a_new_sequence_for_that_env_only():
    torch.manual_seed(0)
    noise = PinkNoise(0.1, torch.ones(2), seq_len=50)
    first = noise.draw(torch.ones(3, dtype=torch.bool))  # the first step: fresh sequences, no reset
    assert [p.idx for p in noise.processes] == [1, 1, 1]
    sequences = [p.buffer.copy() for p in noise.processes]
    for _ in range(4):
        noise.draw(no_starts(3))
    noise.draw(torch.tensor([False, True, False]))
    assert [p.idx for p in noise.processes] == [6, 1, 6]
    assert np.array_equal(noise.processes[0].buffer, sequences[0]) and np.array_equal(
        noise.processes[2].buffer, sequences[2]
    )
    assert not np.array_equal(noise.processes[1].buffer, sequences[1]), "env 1 started an episode: a new sequence"
    # a start in a step the policy did not act in (DEP's) is kept for the next draw
    noise.skip(torch.tensor([True, False, False]))
    noise.skip(no_starts(3))
    noise.draw(no_starts(3))
    assert [p.idx for p in noise.processes] == [1, 2, 7]
    assert first.shape == (3, 2)


def test_a_checkpointed_state_continues_the_same_noise_and_leaves_torch_s_generator_alone():
    torch.manual_seed(1)
    noise = PinkNoise(0.1, torch.ones(3), seq_len=8)
    for step in range(11):
        noise.draw(torch.tensor([step == 5, False]))
    noise.skip(torch.tensor([False, True]))
    state = weights_only_round_trip(noise.state_dict())
    expected = [noise.draw(torch.tensor([step == 3, False])) for step in range(20)]

    restored = PinkNoise(0.1, torch.ones(3), seq_len=8)
    torch_state = torch.get_rng_state()
    restored.load_state_dict(state)
    assert torch.equal(torch.get_rng_state(), torch_state), "loading draws nothing from torch's generator"
    again = [restored.draw(torch.tensor([step == 3, False])) for step in range(20)]
    assert all(torch.equal(a, b) for a, b in zip(again, expected, strict=True))

    fresh = PinkNoise(0.1, torch.ones(3), seq_len=8)  # what a resume without the state would draw
    assert not torch.equal(fresh.draw(no_starts(2)), expected[0])
    with pytest.raises(ValueError, match="pink_seq_len changed"):
        PinkNoise(0.1, torch.ones(3), seq_len=9).load_state_dict(state)


def context(env_steps: int, envs: int = 4) -> RolloutContext:
    return RolloutContext(env_steps, 0, no_starts(envs), None, steps_before_batches=0)


@pytest.mark.parametrize("algorithm", [DDPG, TD3])
def test_a_deterministic_policy_gets_pink_noise_added_then_clipped(algorithm):
    module = algorithm(observation_dim=5, action_bounds=BOUNDS, actor_hidden=(8,), critic_hidden=(8,),
                       exploration_noise="pink", noise_std=0.5, random_steps=0, pink_seq_len=20)  # fmt: skip
    actor, observations = Actor(module), torch.randn(4, 5)
    torch.manual_seed(7)
    with torch.no_grad():
        actions = [actor.act(observations, context(step)) for step in range(3)]
    torch.manual_seed(7)
    reference = PinkNoise(0.5, torch.ones(3), seq_len=20)
    half_range = torch.tensor([2.0, 1.0, 0.5])
    for acted in actions:
        with torch.no_grad():
            expected = module.act_greedy(observations) + 0.5 * half_range * reference.draw(no_starts(4))
        torch.testing.assert_close(acted, torch.clamp(expected, module.action_low, module.action_high))
    assert not torch.equal(actions[0], actions[1])


def squashed(module, observations, noise):
    mean, log_std = module.actor(module.normalize_for_actor(observations))
    return module.scale_action(torch.tanh(mean + log_std.exp() * noise))


def gaussian(module, observations, noise):
    mean, std = module.policy(observations)
    return mean + std * noise


@pytest.mark.parametrize(
    ("algorithm", "kwargs", "expected_action"),
    [
        (SAC, {"actor_hidden": (8,), "critic_hidden": (8,), "random_steps": 0}, squashed),
        (CrossQ, {"actor_hidden": (8,), "critic_hidden": (8,), "random_steps": 0}, squashed),
        (MPO, {"hidden_size": 8}, gaussian),
    ],
)
def test_a_stochastic_policy_samples_with_pink_noise_as_its_standard_normal_draw(algorithm, kwargs, expected_action):
    module = algorithm(observation_dim=5, action_bounds=[[-1.0] * 3, [1.0] * 3], exploration_noise="pink",
                       pink_seq_len=20, **kwargs)  # fmt: skip
    actor, observations = Actor(module), torch.randn(4, 5)
    torch.manual_seed(11)
    with torch.no_grad():
        actions = [actor.act(observations, context(step)) for step in range(3)]
        torch.manual_seed(11)
        reference = PinkNoise(0.1, torch.ones(3), seq_len=20)
        for acted in actions:
            torch.testing.assert_close(acted, expected_action(module, observations, reference.draw(no_starts(4))))


@pytest.mark.parametrize("algorithm", [DDPG, SAC, MPO])
def test_without_pink_noise_explore_is_called_as_before(algorithm):
    """The default acting calls ``explore`` without a noise argument and draws from torch as it did."""
    kwargs = (
        {"hidden_size": 8} if algorithm is MPO else {"actor_hidden": (8,), "critic_hidden": (8,), "random_steps": 0}
    )
    module = algorithm(observation_dim=5, action_bounds=[[-1.0] * 3, [1.0] * 3], **kwargs)
    calls = []
    explore = module.explore
    module.explore = lambda *args, **kw: calls.append(kw) or explore(*args, **kw)
    torch.manual_seed(0)
    with torch.no_grad():
        acted = Actor(module).act(torch.zeros(2, 5), context(0, envs=2))
    assert calls == [{}]
    torch.manual_seed(0)
    with torch.no_grad():
        expected = explore(torch.zeros(2, 5), 0, no_starts(2))
    if algorithm is DDPG:  # its default Gaussian noise, drawn after explore
        expected = torch.clamp(expected + 0.1 * torch.randn_like(expected), -1.0, 1.0)
    assert torch.equal(acted, expected)


SMOKE_ARGS = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
              "--model.init_args.exploration_noise", "pink", "--model.init_args.pink_seq_len", "64"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ddpg", "sac"])
def test_a_pink_noise_run_killed_and_resumed_continues_the_same_noise(algorithm, tmp_path):
    """From the CLI, SIGKILLed at its first save (mid-sequence: 64-step sequences, 50-step
    episodes) and resumed, the run ends as the uninterrupted one, the noise processes included;
    without the noise state the resumed run would draw other noise and end elsewhere."""
    args = ["--config", str(ROOT / "configs" / "smoke" / f"{algorithm}_pendulum.yaml"), *SMOKE_ARGS]
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "reference"))
    checkpoints = tmp_path / "killed" / "checkpoints"
    process = start_fit(tmp_path, "killed", *args)
    kill_when(process, stop_at_first_save(process, checkpoints))
    saved = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]
    assert saved["env_steps"] == 200 and 0 < min(saved["acting"]["exploration_noise"]["positions"])
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "killed", "--ckpt_path", "last"))
    reference = tmp_path / "reference" / "checkpoints"
    assert_same_run(checkpoints, reference)  # weights, optimizers, replay, env states, acting state
    noise = load_ckpt(checkpoints / "last.ckpt")[DATA_KEY]["acting"]["exploration_noise"]
    assert same(noise, load_ckpt(reference / "last.ckpt")[DATA_KEY]["acting"]["exploration_noise"])
    assert noise["sequences"].shape == (2, 1, 64)
