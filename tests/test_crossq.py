"""lit_rl's CrossQ against sb3-contrib's (2.9.2, with stable-baselines3 2.9.2 and torch 2.13): a
golden fixture of sb3-contrib's own ``CrossQ.train`` on fixed batches
(tests/fixtures/crossq/make_fixture.py writes it in a throwaway venv, ``make crossq-golden`` reruns
it; sb3-contrib is not needed here).

From sb3-contrib's initial weights (its parameter names mapped to lit_rl's; its separate mean and
log-std layers are the halves of lit_rl's policy output layer), the same 9 batches and the same
Gaussian noise, lit_rl's ``CrossQ.update`` is compared with sb3-contrib's ``CrossQ.train``, update
by update: the critic, policy and temperature losses, the gradients of the first critic step and
of the first policy and temperature step, every batch renormalisation layer's running mean,
variance and step count (past the warm-up of 1 batch, so the renormalised branch runs), and all
weights and the temperature after the last update (3 policy steps with policy delay 3). Both
sides run in float64, so differences in the last bits of float32 arithmetic, which Adam's
normalised steps would magnify, do not blur the comparison.

Tolerance 1e-9 (relative and absolute), against ``eps0``: sb3-contrib with its squashing
correction ``log(1 - tanh(u)^2 + 1e-6)`` computed without the ``+1e-6``, which lit_rl's SAC and
CrossQ do not add (they compute ``log(1 - tanh(u)^2)`` exactly, as ``2 (log 2 - u - softplus(-2u))``).
What remains is float64 rounding (at most 4e-11 here: sb3's ``log(1 - tanh(u)^2)`` loses digits
for large ``|u|``, and lit_rl uses fused Adam). The ``+1e-6`` is no rounding matter: for ``|u|``
above about 6 it bounds the penalty on saturated actions, and on this data (the initial policy's
stds reach e^2) the unpatched ``as_is`` run's first policy gradients differ by up to 40%. The
last test shows that this epsilon is the only difference: ``as_is`` and ``eps0`` differ, lit_rl
is ``eps0``, and what the log-probabilities cannot reach (the first update's critic normalisation
statistics) agrees with ``as_is`` too.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_rl.algos import CrossQ
from lit_rl.contract import Batch
from lit_rl.nets.batch_renorm import BatchRenorm1d

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "crossq" / "crossq.npz"
DATA = np.load(FIXTURE)
META = json.loads(str(DATA["meta"]))
TOLERANCE = 1e-9
POLICY_LAYER = len(META["net_arch"]["pi"]) * 3 + 1  # index of lit_rl's policy output layer


def sb3_state() -> dict[str, np.ndarray]:
    return {k.removeprefix("init/"): DATA[k] for k in DATA.files if k.startswith("init/")}


def to_lit_rl(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """sb3-contrib's policy state dict -> lit_rl's CrossQ's: actor.latent_pi.i -> actor.net.i, its
    mean and log-std layers -> the two halves of lit_rl's policy output layer, critic.qfN -> critics.N."""
    out = {}
    for name, value in state.items():
        if name.startswith("actor.latent_pi."):
            out[name.replace("actor.latent_pi.", "actor.net.")] = torch.from_numpy(np.array(value))
        elif name.startswith("critic.qf"):
            out["critics." + name.removeprefix("critic.qf")] = torch.from_numpy(np.array(value))
    for kind in ("weight", "bias"):
        halves = [torch.from_numpy(state[f"actor.{layer}.{kind}"]) for layer in ("mu", "log_std")]
        out[f"actor.net.{POLICY_LAYER}.{kind}"] = torch.cat(halves)
    return out


def to_sb3(name: str, value: np.ndarray) -> dict[str, np.ndarray]:
    """The inverse of ``to_lit_rl`` for one of lit_rl's tensors (the action bounds: nothing)."""
    if name.startswith(f"actor.net.{POLICY_LAYER}."):
        kind = name.rsplit(".", 1)[1]
        mean, log_std = np.split(value, 2)
        return {f"actor.mu.{kind}": mean, f"actor.log_std.{kind}": log_std}
    if name.startswith("actor.net."):
        return {name.replace("actor.net.", "actor.latent_pi."): value}
    if name.startswith("critics."):
        return {"critic.qf" + name.removeprefix("critics."): value}
    if name == "log_alpha":
        return {"log_ent_coef": value.reshape(1)}
    return {}


def lit_rl_run() -> dict[str, np.ndarray]:
    """lit_rl's CrossQ on the fixture's batches and noise, recorded under sb3-contrib's names as the
    fixture records sb3-contrib."""
    module = CrossQ(
        observation_dim=META["obs"], action_bounds=[[-1.0] * META["act"], [1.0] * META["act"]],
        actor_hidden=tuple(META["net_arch"]["pi"]), critic_hidden=tuple(META["net_arch"]["qf"]),
        renorm_warmup_steps=META["warmup"], policy_delay=META["policy_delay"], actor_lr=META["learning_rate"],
        critic_lr=META["learning_rate"], alpha_lr=META["learning_rate"], adam_betas=tuple(META["betas"]),
        renorm_momentum=META["momentum"], renorm_eps=META["eps"],
    ).double()  # fmt: skip
    assert module.target_entropy == META["target_entropy"] and module.log_alpha.item() == 0.0
    loaded = module.load_state_dict(to_lit_rl(sb3_state()), strict=False)
    assert set(loaded.missing_keys) == {"log_alpha", "action_low", "action_high"} and not loaded.unexpected_keys

    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers
    module.manual_backward = lambda loss: loss.backward()
    noise = iter(torch.from_numpy(DATA["noise"]))
    sample = module.actor.sample
    module.actor.sample = lambda observations: sample(observations, next(noise))

    out: dict[str, np.ndarray] = {}
    named = {"actor": module.actor, "critic": module.critics, "alpha": None}
    for optimizer, (kind, network) in zip(optimizers, named.items(), strict=True):

        def first_gradients(optimizer, args, kwargs, kind=kind, network=network):
            if f"done/{kind}" in out:
                return
            out[f"done/{kind}"] = np.array(True)
            if network is None:
                out["grad/alpha"] = module.log_alpha.grad.numpy().reshape(1).copy()
                return
            prefix = "actor." if kind == "actor" else "critics."
            for name, param in network.named_parameters():
                for sb3, grad in to_sb3(prefix + name, param.grad.numpy().copy()).items():
                    out[f"grad/{sb3}"] = grad

        optimizer.register_step_pre_hook(first_gradients)

    layers = {name: m for name, m in module.named_modules() if isinstance(m, BatchRenorm1d)}
    renorm: dict[str, list] = {}
    losses: dict[str, list] = {"critic": [], "actor": [], "alpha": []}
    batches = {k.removeprefix("batch/"): torch.from_numpy(DATA[k]) for k in DATA.files if k.startswith("batch/")}
    for i in range(META["updates"]):
        module.updates = i  # the base class counts them in training_step
        batch = Batch(batches["observations"][i], batches["actions"][i], batches["rewards"][i],
                      batches["next_observations"][i], META["gamma"] * (1 - batches["dones"][i]))  # fmt: skip
        metrics = module.update(batch)
        for kind in losses:
            losses[kind].append(metrics[f"loss/{kind}"].item() if f"loss/{kind}" in metrics else np.nan)
        for name, layer in layers.items():
            for buffer in ("ra_mean", "ra_var", "steps"):
                for sb3, value in to_sb3(f"{name}.{buffer}", getattr(layer, buffer).numpy().copy()).items():
                    renorm.setdefault(sb3, []).append(value)
    out.update({f"loss/{kind}": np.array(values) for kind, values in losses.items()})
    out.update({f"renorm/{name}": np.stack(values) for name, values in renorm.items()})
    for name, value in module.state_dict().items():
        out.update({f"final/{sb3}": v for sb3, v in to_sb3(name, value.detach().numpy().copy()).items()})
    return {k: v for k, v in out.items() if not k.startswith("done/")}


@pytest.fixture(scope="module")
def ours():
    return lit_rl_run()


def test_lit_rl_records_everything_the_fixture_holds(ours):
    for run in ("eps0", "as_is"):
        recorded = {k.removeprefix(f"{run}/") for k in DATA.files if k.startswith(f"{run}/")}
        assert recorded == set(ours), recorded ^ set(ours)
    assert len(ours) > 100


def test_crossq_matches_sb3_contrib(ours):
    for what, mine in ours.items():
        np.testing.assert_allclose(mine, DATA[f"eps0/{what}"], rtol=TOLERANCE, atol=TOLERANCE, err_msg=what)


def test_sb3_contribs_squashing_epsilon_is_the_only_difference(ours):
    gradient = "grad/actor.log_std.weight"
    assert np.abs(DATA[f"as_is/{gradient}"] - DATA[f"eps0/{gradient}"]).max() > 1e-2
    assert np.abs(ours[gradient] - DATA[f"eps0/{gradient}"]).max() < TOLERANCE
    for name in ours:
        if name.startswith("renorm/critic.") and not name.endswith(".steps"):  # after the first update
            np.testing.assert_allclose(ours[name][0], DATA[f"as_is/{name}"][0], rtol=TOLERANCE, atol=TOLERANCE)
