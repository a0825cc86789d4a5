"""lit_rl's MPO learner and observation normaliser against the real deprl (GitHub HEAD 790df86 on
MyoSuite 3): a golden fixture of deprl's ``TunedMPO`` on recorded myoLegWalk-v0 data, in float64
(tests/fixtures/deprl_head/make_mpo_fixture.py writes it, ``make deprl-golden`` reruns it; deprl is
not needed here)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_rl.algos import MPO
from lit_rl.contract import Batch
from lit_rl.nets import ObservationNormalizer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "deprl_head" / "mpo.npz"
DATA = np.load(FIXTURE)
META = json.loads(str(DATA["meta"]))
OBS_DIM, ACT_DIM = DATA["replay/observations"].shape[-1], DATA["replay/actions"].shape[-1]
TOLERANCE = 1e-9

# deprl's parameter names for lit_rl's (tonic: encoder -> torso MLP -> head; Critic cats [obs, action])
NETWORKS = {
    "torso.0": "torso.model.0", "torso.2": "torso.model.2", "mean_head": "head.loc_layer.0",
    "std_head": "head.scale_layer.0",
}  # fmt: skip
CRITICS = {"input": "torso.model.0", "hidden.1": "torso.model.2", "output": "head.v_layer"}
PREFIXES = {"actor": "actor", "actor_target": "target_actor", "critic": "critic", "critic_target": "target_critic"}
DUALS = {
    "raw_temperature": "log_temperature",
    "raw_alpha_mean": "log_alpha_mean",
    "raw_alpha_std": "log_alpha_std",
    "raw_penalty_temperature": "log_penalty_temperature",
}


def deprl_name(name: str) -> str:
    prefix, rest = name.split(".", 1)
    layer, kind = rest.rsplit(".", 1)
    layers = CRITICS if prefix.startswith("critic") else NETWORKS
    return f"{PREFIXES[prefix]}.{layers[layer]}.{kind}"


def lit_rl_mpo(normalize_observations="critic") -> MPO:
    """deprl's learner as lit_rl builds it from the deprl config (hidden size of the fixture), with
    deprl's initial weights and fitted normaliser, in float64, updating without a Trainer."""
    args = META["mpo_args"]
    module = MPO(
        observation_dim=OBS_DIM,
        action_bounds=[[-1.0] * ACT_DIM, [1.0] * ACT_DIM],
        hidden_size=args["hidden_size"],
        lr_actor=args["lr_actor"],
        lr_critic=args["lr_critic"],
        lr_dual=args["lr_dual"],
        normalize_observations=normalize_observations,
        normalizer_statistics="float32",
    ).double()
    with torch.no_grad():
        for name, parameter in [*module.named_parameters(), *module.named_buffers()]:
            if name in DUALS or name.startswith(("normalizer.", "action_")):
                continue
            parameter.copy_(torch.from_numpy(DATA[f"initial/{deprl_name(name)}"]))
        module.normalizer.mean.copy_(torch.from_numpy(DATA["fitted/mean"]))
        module.normalizer.std.copy_(torch.from_numpy(DATA["fitted/std"]))
    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers
    module.manual_backward = lambda loss: loss.backward()
    return module


def batches():
    replay = {k: torch.from_numpy(DATA[f"replay/{k}"]).flatten(0, 1).double() for k in
              ("observations", "actions", "next_observations", "rewards", "discounts")}  # fmt: skip
    for indices in torch.from_numpy(DATA["batch_indices"]):  # row * envs + env, as deprl's Buffer.get
        yield Batch(**{k: v[indices] for k, v in replay.items()})


@pytest.fixture
def deprl_noise(monkeypatch):
    """torch.randn gives the fixture's draws: deprl's were ``RandomState(noise_seed)`` normals, taken
    in the same order (per update the critic's, then the actor's)."""
    rng = np.random.RandomState(META["noise_seed"])
    monkeypatch.setattr(torch, "randn", lambda *shape, **kwargs: torch.from_numpy(rng.standard_normal(shape)))


def train(module: MPO) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``updates`` batches; returns the losses per update and the gradients after the first."""
    losses, gradients = [], None
    for batch in batches():
        metrics = module.update(batch)
        losses.append([metrics[k].item() for k in ("loss/critic", "loss/policy", "loss/dual", "loss/actor")])
        if gradients is None:
            gradients = {name: p.grad.numpy().copy() for name, p in module.named_parameters() if p.grad is not None}
    return np.array(losses), gradients


def assert_close(ours, theirs, what: str) -> None:
    theirs = np.asarray(theirs).reshape(np.shape(ours))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE, err_msg=what)


def test_mpo_learner_reproduces_deprl(deprl_noise):
    module = lit_rl_mpo()
    losses, gradients = train(module)
    assert len(losses) == META["updates"] >= 20
    assert_close(losses, DATA["losses"], "losses (critic, policy, dual, actor total) per update")
    trainable = {n for n, p in module.named_parameters() if p.requires_grad and not n.startswith("raw_")}
    for name in trainable:
        assert_close(gradients[name], DATA[f"grad/{deprl_name(name)}"], f"first-update gradient of {name}")
    for name, dual in DUALS.items():
        assert_close(gradients[name], DATA[f"grad/{dual}"], f"first-update gradient of {name}")
        assert_close(getattr(module, name).detach().numpy(), DATA[f"duals/{dual}"], f"{name} after training")
    for name, value in module.state_dict().items():
        if name in DUALS or name.startswith(("normalizer.", "action_")):
            continue
        assert_close(value.numpy(), DATA[f"final/{deprl_name(name)}"], f"{name} after {len(losses)} updates")
    # not a trivial agreement: the weights moved, and the targets moved less than the online networks
    initial = DATA["initial/actor.torso.model.0.weight"]
    online, target = DATA["final/actor.torso.model.0.weight"], DATA["final/target_actor.torso.model.0.weight"]
    assert 0 < np.abs(target - initial).max() < np.abs(online - initial).max()


def test_an_actor_on_normalised_observations_is_not_deprl(deprl_noise):
    """``normalize_observations: true`` (lit_rl's earlier behaviour) feeds the actor normalised
    observations, which deprl never does: the policy and every actor update differ."""
    module = lit_rl_mpo(normalize_observations=True)
    losses, _ = train(module)
    assert np.abs(losses[:, 1] - DATA["losses"][:, 1]).max() > 1e-3  # the policy loss
    assert np.abs(losses[1:, 0] - DATA["losses"][1:, 0]).max() > 1e-3  # the critic, through its targets


def test_normalizer_reproduces_deprls_float32_statistics():
    """The same observation stream (rows of the fixture's recorded observations, ``envs`` at a time)
    gives deprl's mean, std and mean of squares bit for bit after every update."""
    spec = META["normalizer"]
    observations = DATA["replay/observations"].reshape(-1, OBS_DIM)
    rows = observations[np.random.RandomState(spec["rows_seed"]).randint(len(observations), size=spec["rows"])]
    ours = ObservationNormalizer(OBS_DIM, statistics="float32")
    exact = ObservationNormalizer(OBS_DIM)
    after, exact_std = [], []
    for start in range(0, spec["rows"], META["envs"]):
        chunk = torch.from_numpy(rows[start : start + META["envs"]])
        ours.record(chunk)
        exact.record(chunk)
        if (start + META["envs"]) % spec["every"] == 0:
            ours.update()
            exact.update()
            after.append(np.stack([ours.mean.numpy(), ours.std.numpy(), ours.mean_sq.numpy().astype(np.float32)]))
            exact_std.append(exact.std.numpy())
    theirs = DATA["normalizer/statistics"]
    assert np.asarray(after).dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(after), theirs)
    # and they are deprl's, not exact: float32 sums of 1e5 rows drift on the low-variance dimensions
    drift = np.abs(theirs[-1, 1] - exact_std[-1]) / exact_std[-1]
    assert drift.max() > 1e-3
