"""MPO: losses and parameter updates on toy batches, the direction of the dual steps, acting,
and a CLI smoke run with resume."""

import pytest
import torch

from lit_rl.acting import Actor, RolloutContext
from lit_rl.algos import MPO
from lit_rl.contract import Batch
from tests.conftest import ROOT, load_ckpt, ok, run_cli

SMOKE_MPO = ROOT / "configs" / "smoke" / "mpo_pendulum.yaml"
OBS_DIM, ACT_DIM, BATCH = 3, 2, 64


def make_mpo(**kwargs) -> MPO:
    """An MPO module whose ``update`` runs without a Trainer: plain optimizers and backward."""
    torch.manual_seed(0)
    module = MPO(observation_dim=OBS_DIM, action_bounds=[[-1.0] * ACT_DIM, [1.0] * ACT_DIM], hidden_size=32, **kwargs)
    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers
    module.manual_backward = lambda loss: loss.backward()
    return module


def toy_batch() -> Batch:
    return Batch(
        observations=torch.randn(BATCH, OBS_DIM),
        actions=torch.rand(BATCH, ACT_DIM) * 2 - 1,
        rewards=torch.randn(BATCH),
        next_observations=torch.randn(BATCH, OBS_DIM),
        discounts=torch.full((BATCH,), 0.99),
    )


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return all(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


def test_update_gives_finite_losses_and_moves_every_parameter():
    module = make_mpo()
    actor, critic = snapshot(module.actor), snapshot(module.critic)
    duals = [p.detach().clone() for p in module.duals()]
    actor_target = snapshot(module.actor_target)
    metrics = module.update(toy_batch())
    for key in [
        "loss/actor",
        "loss/critic",
        "mpo/temperature",
        "mpo/alpha_mean",
        "mpo/alpha_std",
        "mpo/kl_mean",
        "mpo/kl_std",
        "mpo/penalty_temperature",
    ]:
        assert torch.isfinite(metrics[key]) and not metrics[key].requires_grad, key
    assert changed(actor, module.actor) and changed(critic, module.critic)
    assert all(not torch.equal(b, p) for b, p in zip(duals, module.duals(), strict=True))
    assert changed(actor_target, module.actor_target)  # Polyak after the batch
    assert len(module.duals()) == 4 and len(make_mpo(action_penalization=False).duals()) == 3


def test_raw_duals_are_clamped_from_below():
    module = make_mpo(min_dual=-5.0)
    with torch.no_grad():
        module.raw_alpha_std.fill_(-100.0)
    module.clamp_duals()
    assert torch.all(module.raw_alpha_std == -5.0)


def dual_step(module: MPO) -> None:
    """One actor + dual step, the second half of ``update``."""
    actor_opt, _, dual_opt = module.optimizers()
    loss, _ = module.actor_loss(toy_batch().observations)
    actor_opt.zero_grad()
    dual_opt.zero_grad()
    loss.backward()
    dual_opt.step()


@pytest.mark.parametrize("head", ["mean_head", "std_head"])
def test_kl_multipliers_grow_when_the_kl_is_above_its_bound(head):
    # Online == target: the KL is 0 < epsilon, so both multipliers shrink.
    module = make_mpo()
    alpha_mean, alpha_std = module.raw_alpha_mean.detach().clone(), module.raw_alpha_std.detach().clone()
    dual_step(module)
    assert torch.all(module.raw_alpha_mean < alpha_mean) and torch.all(module.raw_alpha_std < alpha_std)

    # Online actor pushed away from the target in its mean (or std): that multiplier grows.
    module = make_mpo()
    with torch.no_grad():
        getattr(module.actor, head).bias.add_(0.5)
    raw = module.raw_alpha_mean if head == "mean_head" else module.raw_alpha_std
    before = raw.detach().clone()
    _, metrics = module.actor_loss(toy_batch().observations)
    kl, epsilon = (
        (metrics["mpo/kl_mean"], module.hparams.epsilon_mean)
        if head == "mean_head"
        else (metrics["mpo/kl_std"], module.hparams.epsilon_std)
    )
    assert kl > 10 * epsilon
    dual_step(module)
    assert torch.all(raw > before)


@pytest.mark.parametrize(("q_scale", "grows"), [(0.0, False), (1e3, True)])
def test_temperature_follows_the_sign_of_its_gradient(q_scale, grows):
    # d/d eta of the temperature loss is epsilon - mean_i KL(w_i || uniform): equal Q values
    # (uniform weights) lower the temperature; widely spread Q values (one-hot weights) raise it.
    module = make_mpo(action_penalization=False)
    with torch.no_grad():
        last = module.critic_target.output
        last.weight.mul_(q_scale)
        last.bias.zero_()
    before = module.raw_temperature.item()
    dual_step(module)
    assert (module.raw_temperature.item() > before) == grows


def test_explore_samples_finite_actions_and_greedy_is_the_mean():
    module = make_mpo()
    actor = Actor(module)
    obs = torch.randn(16, OBS_DIM)
    with torch.no_grad():
        actions = actor.act(obs, RolloutContext(0, 0, torch.ones(16, dtype=torch.bool), None, 0))
        again = actor.act(obs, RolloutContext(0, 0, torch.zeros(16, dtype=torch.bool), None, 0))
        greedy = module.act_greedy(obs)
    assert actions.shape == (16, ACT_DIM) and torch.isfinite(actions).all()
    assert not torch.equal(actions, again)  # sampled
    assert torch.equal(greedy, module.act_greedy(obs)) and greedy.abs().max() <= 1.0
    assert module.normalizer.new_count.item() == 32  # act records what it acts on
    mean, std = module.policy(obs)
    assert torch.all(std >= module.hparams.min_std) and torch.all(std <= module.hparams.max_std)
    assert torch.equal(mean, greedy)


def test_critic_broadcasts_observations_over_action_samples():
    module = make_mpo()
    obs, actions = torch.randn(5, OBS_DIM), torch.randn(7, 5, ACT_DIM)
    q = module.q(obs, actions)
    assert q.shape == (7, 5)
    assert torch.allclose(q[3], module.q(obs, actions[3]))
    # The split first layer computes the same function as one layer on [s, a].
    critic = module.critic
    inputs = torch.cat([module.normalize_for_critic(obs).expand(7, -1, -1), actions], -1)
    plain = critic.output(critic.hidden(critic.input(inputs))).squeeze(-1)
    assert torch.allclose(q, plain, atol=1e-5)


def test_bf16_autocast_keeps_outputs_float32_and_close():
    module = make_mpo()
    obs, actions = torch.randn(32, OBS_DIM), torch.randn(4, 32, ACT_DIM)
    q, (mean, std) = module.q(obs, actions), module.policy(obs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q_bf16, (mean_bf16, std_bf16) = module.q(obs, actions), module.policy(obs)
    assert q_bf16.dtype == mean_bf16.dtype == std_bf16.dtype == torch.float32
    assert torch.allclose(q_bf16, q, atol=0.05) and torch.allclose(mean_bf16, mean, atol=0.05)
    assert torch.allclose(std_bf16, std, atol=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, metrics = module.actor_loss(obs)
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in metrics.values())


# test_algorithms' kill -9 test resumes MPO with all three optimizers' states equal to an uninterrupted run
@pytest.mark.slow
def test_cli_fit_and_resume_restore_three_optimizers(tmp_path):
    common = ["--config", str(SMOKE_MPO), "--working_dir", str(tmp_path), "--trainer.logger", "false"]
    result = run_cli("fit", *common)
    ok(result)
    last = tmp_path / "smoke_mpo_pendulum" / "checkpoints" / "last.ckpt"
    checkpoint = load_ckpt(last)
    assert len(checkpoint["optimizer_states"]) == 3
    dual_state = checkpoint["optimizer_states"][2]["state"]
    assert len(dual_state) == 4 and all(s["step"] > 0 for s in dual_state.values())

    result = run_cli("fit", *common, "--data.init_args.total_steps", "600")
    ok(result)
    assert "Resuming" in result.stderr
    resumed = load_ckpt(last)
    assert resumed["RolloutDataModule"]["env_steps"] == 600
    assert len(resumed["optimizer_states"]) == 3
    steps = [s["step"].item() for s in resumed["optimizer_states"][2]["state"].values()]
    assert all(s > dual_state[0]["step"].item() for s in steps)  # the dual Adam state continued


def test_checkpoints_from_before_deprls_settings_load_as_they_were_trained(tmp_path):
    """A checkpoint whose hyperparameters predate ``normalize_observations: critic`` and
    ``normalizer_statistics`` gets the defaults: the actor normalises, the statistics are exact."""
    import lightning

    module = MPO(observation_dim=OBS_DIM, action_bounds=[[-1.0] * ACT_DIM, [1.0] * ACT_DIM], hidden_size=32)
    hparams = dict(module.hparams)
    del hparams["normalizer_statistics"]
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams,
                "pytorch-lightning_version": lightning.__version__}, path)  # fmt: skip
    loaded = MPO.load_from_checkpoint(path)
    assert loaded.actor_normalizes and loaded.normalizer.statistics == "exact"
    with torch.no_grad():
        loaded.normalizer.mean.fill_(3.0)
    obs = torch.randn(4, OBS_DIM)
    assert not torch.equal(loaded.act_greedy(obs), module.act_greedy(obs))
