"""Any exploration with any learner, and with DEP (docs/exploration.md): every supported pair of
learner and exploration acts, with DEP off and on; an unsupported pair is refused in one line at
start; the myoLegWalk configs of the exploration comparison (DEP-CrossQ, Lattice-SAC, pink-noise
SAC with DEP) train for one phase."""

import pytest
import torch

from lit_rl.acting import Actor, DEPConfig, RolloutContext
from lit_rl.algos import DDPG, MPO, SAC, TD3, CrossQ, OffPolicyAlgorithm
from tests.conftest import DATA_KEY, ROOT, load_ckpt, ok, run_cli

SMALL = {"actor_hidden": (8,), "critic_hidden": (8,)}
# learner -> its explorations: the keys that choose each (None: the policy's own sampling)
EXPLORATIONS = {
    DDPG: {"gaussian": {}, "ornstein_uhlenbeck": {"exploration_noise": "ornstein_uhlenbeck"},
           "pink": {"exploration_noise": "pink"}},
    TD3: {"gaussian": {}, "ornstein_uhlenbeck": {"exploration_noise": "ornstein_uhlenbeck"},
          "pink": {"exploration_noise": "pink"}},
    SAC: {"sampling": {}, "pink": {"exploration_noise": "pink"}, "lattice": {"policy_head": "lattice"},
          "lattice_fresh": {"policy_head": "lattice", "lattice": {"state_dependent": False}}},
    CrossQ: {"sampling": {}, "pink": {"exploration_noise": "pink"}, "lattice": {"policy_head": "lattice"}},
    MPO: {"sampling": {}, "pink": {"exploration_noise": "pink"}},
}  # fmt: skip
PAIRS = [(learner, name) for learner, options in EXPLORATIONS.items() for name in options]
DEP = DEPConfig(kappa=100.0, tau=3, buffer_size=10, time_dist=1, s4avg=2, intervention_length=2, rl_length=2)


def build(learner, exploration: str, dep_mode: int = 0):
    kwargs = {"hidden_size": 8} if learner is MPO else {**SMALL, "random_steps": 0}
    kwargs |= {"dep_mode": dep_mode, "dep": DEP} if dep_mode else {}
    return learner(observation_dim=5, action_bounds=[[-1.0] * 3, [1.0] * 3], **kwargs,
                   **EXPLORATIONS[learner][exploration])  # fmt: skip


def context(step: int, starts: list[bool], muscles: torch.Tensor | None = None) -> RolloutContext:
    return RolloutContext(step * 2, 0, torch.tensor(starts), muscles, steps_before_batches=0)


@pytest.mark.parametrize("dep_mode", [0, 2], ids=["no-dep", "dep-detswitch"])
@pytest.mark.parametrize(("learner", "exploration"), PAIRS, ids=[f"{lrn.__name__}-{name}" for lrn, name in PAIRS])
def test_every_learner_acts_with_each_of_its_explorations_with_and_without_dep(learner, exploration, dep_mode):
    torch.manual_seed(0)
    module = build(learner, exploration, dep_mode)
    actor = Actor(module)
    observations, acted = torch.randn(2, 5), []
    with torch.no_grad():
        for step in range(8):
            muscles = torch.rand(2, 3) if dep_mode else None
            acted.append(actor.act(observations, context(step, [step in (0, 3), False], muscles)))
    actions = torch.stack(acted)
    assert torch.isfinite(actions).all() and actions.shape == (8, 2, 3)
    if learner is not MPO:  # MPO acts unclipped, as deprl's (the env side clips)
        assert (actions.abs() <= 1).all()
    distinct = len({tuple(a.flatten().tolist()) for a in actions})
    if dep_mode:  # DEP in the warm-up's step, then DetSwitch: RL's two steps (DEP learning), DEP's two, ...
        assert actor.dep is not None and actor.dep.t > 0 and distinct >= 5  # DEP's may saturate at the bounds
    else:
        assert distinct == 8, "every step explores anew"
    state = actor.state_dict()
    assert ("exploration_noise" in state) == (module.acting.exploration_noise is not None)
    assert ("dep" in state) == bool(dep_mode)


def test_pink_noise_with_dep_keeps_its_sequence_through_dep_s_steps_and_honours_their_episode_starts():
    """DEP in the warm-up's step, then DetSwitch (2 RL steps, 2 DEP steps): the pink-noise policy
    samples in RL's steps only, its sequences standing still in DEP's; an episode that starts in
    a DEP step starts a new sequence at the next RL step."""
    torch.manual_seed(4)
    module = build(SAC, "pink", dep_mode=2)
    actor, observations = Actor(module), torch.randn(2, 5)
    starts = [[True, True], [False, False], [False, False], [False, True], [False, False], [False, False]]
    rl_steps, draws = [1, 2, 5], []
    explore = module.explore
    module.explore = lambda *args, noise=None: draws.append(noise) or explore(*args, noise=noise)
    with torch.no_grad():
        acted = [actor.act(observations, context(step, s, torch.rand(2, 3))) for step, s in enumerate(starts)]
        mean, log_std = module.actor(observations)
    assert len(draws) == len(rl_steps), "the policy acted in RL's steps only"
    for step, draw in zip(rl_steps, draws, strict=True):
        torch.testing.assert_close(acted[step], torch.tanh(mean + log_std.exp() * draw))
    env_0, env_1 = (torch.from_numpy(process.buffer).float() for process in actor.noise.processes)
    assert torch.equal(torch.stack([d[0] for d in draws]), env_0[:, :3].T), "env 0: one sequence, 3 steps of it"
    assert torch.equal(draws[2][1], env_1[:, 0]), "env 1: a new sequence after its episode start in DEP's step 3"
    assert [process.idx for process in actor.noise.processes] == [3, 1]


class Undeclared(OffPolicyAlgorithm):
    """A learner that does not say whether its policy is deterministic or samples (``noise_enters``)."""

    def __init__(self, observation_dim=None, action_bounds=None, exploration_noise=None):
        super().__init__(observation_dim, action_bounds, exploration_noise=exploration_noise)


@pytest.mark.parametrize(
    ("learner", "kwargs", "message"),
    [
        (SAC, {"exploration_noise": "pink", "policy_head": "lattice"},
         "exploration_noise: pink with policy_head: lattice: Lattice draws its own latent noise"),
        (CrossQ, {"exploration_noise": "pink", "policy_head": "lattice"}, "Lattice draws its own latent noise"),
        (SAC, {"exploration_noise": "gaussian"}, "exploration_noise: gaussian: SAC samples its policy"),
        (CrossQ, {"exploration_noise": "ornstein_uhlenbeck"}, "CrossQ samples its policy"),
        (MPO, {"exploration_noise": "gaussian"}, "MPO samples its policy, so its noise is its own draw"),
        (Undeclared, {"exploration_noise": "pink"}, "exploration_noise: pink: Undeclared does not say how its policy"),
        (DDPG, {"exploration_noise": "brown"}, "must be one of ['gaussian', 'ornstein_uhlenbeck', 'pink']"),
        (SAC, {"exploration_noise": "pink", "pink_beta": -1.0}, "pink_beta must be a finite exponent >= 0"),
        (MPO, {"exploration_noise": "pink", "pink_seq_len": 1}, "pink_seq_len must be an integer of at least 2"),
    ],
)  # fmt: skip
def test_an_unsupported_combination_is_refused_in_one_line(learner, kwargs, message):
    with pytest.raises(ValueError) as error:
        learner(observation_dim=3, action_bounds=[[-1.0], [1.0]], **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_undeclared_learners_keep_additive_gaussian_noise():
    module = Undeclared(observation_dim=3, action_bounds=[[-1.0], [1.0]], exploration_noise="gaussian")
    assert not module.acting.noise_is_draw


QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


def test_the_cli_refuses_lattice_with_ddpg_and_pink_with_lattice_in_one_line(tmp_path):
    smoke = ["--config", str(ROOT / "configs" / "smoke" / "ddpg_pendulum.yaml"), *QUIET, "--working_dir", str(tmp_path)]
    result = run_cli("fit", *smoke, "--model.init_args.policy_head", "lattice")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "lit_rl: error: --model.init_args.policy_head: no such key of lit_rl.algos.DDPG"
    )
    config = ["--config", str(ROOT / "configs" / "lattice_sac_myolegwalk.yaml"), *QUIET, "--working_dir", str(tmp_path)]
    result = run_cli("fit", *config, "--model.init_args.exploration_noise", "pink")
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if "error" in line.lower()]
    assert lines == [
        "lit_rl: error: exploration_noise: pink with policy_head: lattice: Lattice draws its own latent noise; "
        "choose one of them"
    ]
    assert not (tmp_path / "myoLeg_lattice_sac").exists() or not any((tmp_path / "myoLeg_lattice_sac").rglob("*.ckpt"))


ONE_PHASE = [
    "--data.init_args.parallel", "1", "--data.init_args.sequential", "2",
    "--data.init_args.env.make_kwargs", '{"reset_type": "random", "max_episode_steps": 40}',
    "--data.init_args.replay.size", "4000", "--data.init_args.replay.batch_size", "32",
    "--data.init_args.replay.steps_before_batches", "120", "--data.init_args.replay.steps_between_batches", "40",
    "--data.init_args.replay.batch_iterations", "3", "--data.init_args.total_steps", "160",
    "--data.init_args.epoch_steps", "160", "--data.init_args.save_steps", "160", "--data.init_args.test_episodes", "1",
    "--model.init_args.actor_hidden", "[32, 32]", "--model.init_args.critic_hidden", "[32, 32]",
    "--model.init_args.dep.buffer_size", "20", "--model.init_args.dep.tau", "8",
    "--model.init_args.dep.time_dist", "2", "--model.init_args.dep.intervention_length", "3",
    "--model.init_args.dep.intervention_proba", "0.3",
]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "extra", "dep", "noise", "lattice"),
    [
        ("dep_crossq_myolegwalk", [], True, False, False),
        ("lattice_sac_myolegwalk", [], False, False, True),
        ("pink_sac_myolegwalk", ["--model.init_args.dep_mode", "3"], True, True, False),
    ],
    ids=["dep-crossq", "lattice-sac", "pink-sac-dep"],
)
def test_the_myolegwalk_exploration_configs_train_a_phase(config, extra, dep, noise, lattice, tmp_path):
    args = ["--config", str(ROOT / "configs" / f"{config}.yaml"), *QUIET, *ONE_PHASE, *extra]
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "run"))
    checkpoint = load_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert checkpoint[DATA_KEY]["env_steps"] == 160
    assert checkpoint["updates"] == 3, "one phase of 3 batches"
    assert all(state["state"] for state in checkpoint["optimizer_states"]), "every optimizer stepped"
    acting = checkpoint[DATA_KEY]["acting"]
    assert ("dep" in acting) == dep
    assert ("exploration_noise" in acting) == noise
    if noise:
        assert sum(acting["exploration_noise"]["positions"]) > 0, "the pink-noise policy acted"
    assert ("lattice_acting" in checkpoint["learner"]) == lattice
    if lattice:
        assert checkpoint["learner"]["lattice_acting"]["steps"] > 0
