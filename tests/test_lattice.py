"""lit_rl's Lattice policy head (``lit_rl.nets.lattice``) against the Lattice reference code
(amathislab/lattice 846d02f, ``src/models/distributions.py``, on stable-baselines3 2.9.2 and
torch 2.13): a golden fixture of the reference's own distributions
(tests/fixtures/lattice/make_fixture.py writes it in a throwaway venv, ``make lattice-golden``
reruns it; neither is needed here). Then what SAC and CrossQ do with the head, and (slow) a
Lattice run killed and resumed from the CLI.

For each case of the fixture (gSDE-style noise matrices, one for the batch or one per latent, with
the reference's SAC defaults and with every option moved; fresh noise with two initial log-stds),
from the same weights, latents and standard normal draws: the pre-tanh and the squashed actions,
the Gaussian log-density of the pre-tanh actions and its entropy, the squashed log-probability
SAC's entropy term uses, and the gradients of ``sum(log-density) + sum(C * pre-tanh action)``
with respect to the weights and the latents (what the reparameterised policy loss
backpropagates). Tolerance 1e-9 in float64: float64 rounding, and the reference recovers the
state-dependent pre-tanh actions as ``atanh(tanh(u))`` (the fixture keeps ``|u| < 5`` so that loses
no more than about 1e-12). One known difference is taken out before comparing: the reference's
tanh correction is ``log(1 - tanh(u)^2 + 1e-6)`` (SB3's), lit_rl's the exact ``log(1 - tanh(u)^2)``,
so the reference's squashed log-probability is lit_rl's minus ``sum log(1 + 1e-6 / (1 - a^2))``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_rl.algos import SAC, CrossQ
from lit_rl.contract import Batch
from lit_rl.nets.lattice import LatticeActor, LatticeConfig, LatticeHead, tanh_log_det
from tests.conftest import ROOT, load_ckpt, ok, run_cli
from tests.crash_helpers import kill_when, start_fit, stop_at_first_save

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "lattice" / "lattice.npz"
DATA = np.load(FIXTURE)
META = json.loads(str(DATA["meta"]))
TOLERANCE = 1e-9
OPTIONS = ("state_dependent", "log_std_init", "std_clip", "use_expln", "std_reg", "alpha", "clip_mean")


def case_head(case: str) -> tuple[LatticeHead, dict]:
    options = META["cases"][case]
    config = LatticeConfig(**{k: options[k] for k in OPTIONS if k in options}, expln_eps=META["expln_eps"])
    head = LatticeHead(META["latent"], META["act"], config).double()
    weights = {k.removeprefix(f"{case}/weights/"): DATA[k] for k in DATA.files if k.startswith(f"{case}/weights/")}
    head.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return head, options


def case_noise(case: str, options: dict):
    if options["state_dependent"]:
        return torch.from_numpy(DATA[f"{case}/noise/latent"]), torch.from_numpy(DATA[f"{case}/noise/action"])
    return torch.from_numpy(DATA[f"{case}/noise"])


@pytest.mark.parametrize("case", list(META["cases"]))
def test_lattice_head_matches_the_reference(case):
    head, options = case_head(case)
    latent = torch.from_numpy(DATA[f"{case}/latent"]).requires_grad_(True)
    u, log_density = head.sample(latent, case_noise(case, options))
    actions = torch.tanh(u)
    log_prob = log_density - tanh_log_det(u)
    reference_actions = DATA[f"{case}/actions"]
    sb3_epsilon = np.log1p(META["expln_eps"] / (1 - reference_actions**2)).sum(-1)
    compared = {
        "gaussian_actions": u, "actions": actions, "gaussian_log_prob": log_density,
        "entropy": head.gaussian_entropy(latent), "log_prob": log_prob - torch.from_numpy(sb3_epsilon),
    }  # fmt: skip
    for what, mine in compared.items():
        np.testing.assert_allclose(mine.detach().numpy(), DATA[f"{case}/{what}"], rtol=TOLERANCE, atol=TOLERANCE,
                                   err_msg=what)  # fmt: skip
    scalar = log_density.sum() + (torch.from_numpy(DATA[f"{case}/weigh"]) * u).sum()
    names = [name for name, _ in head.named_parameters()]
    grads = torch.autograd.grad(scalar, [*head.parameters(), latent])
    for name, grad in zip([*names, "latent"], grads, strict=True):
        np.testing.assert_allclose(grad.numpy(), DATA[f"{case}/grad/{name}"], rtol=TOLERANCE, atol=TOLERANCE,
                                   err_msg=name)  # fmt: skip
    assert sb3_epsilon.max() > TOLERANCE  # the correction taken out is more than the tolerance


def test_fresh_noise_covariance_is_the_latent_and_action_variances():
    """``W diag(latent var) W^T + diag(action var)``, and the samples' spread is that covariance."""
    torch.manual_seed(0)
    head = LatticeHead(6, 3, LatticeConfig(state_dependent=False)).double()
    latent = torch.randn(1, 6, dtype=torch.float64)
    var = (head.std_layer(latent).clamp(-20, 2).exp()).square()[0]
    weight = head.mean_layer.weight
    expected = weight @ torch.diag(var[3:]) @ weight.T + torch.diag(var[:3])
    torch.testing.assert_close(head.covariance(latent)[0], expected)
    u, _ = head.sample(latent.expand(200_000, 6), head.draw_noise(200_000))
    torch.testing.assert_close(torch.cov(u.T.detach()), expected, rtol=0.02, atol=0.02)


def test_state_dependent_noise_is_one_draw_per_update_and_per_env_every_resample_steps():
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU())
    actor = LatticeActor(trunk, LatticeHead(8, 2, LatticeConfig(resample_every=3)))
    obs = torch.randn(4, 3)
    actor.new_update_noise()
    assert actor.update_noise[0].shape == (1, 8, 8)
    assert torch.equal(actor.sample(obs)[0], actor.sample(obs)[0])  # the update's matrices, not fresh noise
    with torch.no_grad():
        steps = [actor.explore(obs) for _ in range(4)]
    assert actor.acting_noise[0].shape == (4, 8, 8)  # one per env
    assert torch.equal(steps[0], steps[2]) and not torch.equal(steps[2], steps[3])
    state = actor.acting_state()
    restored = LatticeActor(trunk, actor.head)
    restored.load_acting_state(state)
    with torch.no_grad():
        torch.testing.assert_close(restored.explore(obs), actor.explore(obs))  # the same matrices continue


@pytest.mark.parametrize("algorithm", [SAC, CrossQ])
@pytest.mark.parametrize("state_dependent", [True, False])
def test_sac_and_crossq_train_with_a_lattice_head(algorithm, state_dependent):
    torch.manual_seed(0)
    module = algorithm(observation_dim=3, action_bounds=[[-2.0] * 2, [2.0] * 2], actor_hidden=(16, 16),
                       critic_hidden=(16,), policy_head="lattice", lattice={"state_dependent": state_dependent},
                       **({"policy_delay": 1} if algorithm is CrossQ else {}))  # fmt: skip
    assert isinstance(module.actor, LatticeActor)
    optimizers = module.configure_optimizers()
    module.optimizers = lambda: optimizers
    module.manual_backward = lambda loss: loss.backward()
    before = {k: v.clone() for k, v in module.actor.head.state_dict().items()}
    batch = Batch(torch.randn(32, 3), torch.rand(32, 2) * 4 - 2, torch.randn(32), torch.randn(32, 3),
                  torch.full((32,), 0.99))  # fmt: skip
    metrics = module.update(batch)
    assert all(torch.isfinite(v) for v in metrics.values())
    assert all(not torch.equal(before[k], v) for k, v in module.actor.head.state_dict().items())
    with torch.no_grad():
        actions = module.explore(torch.randn(5, 3), 0, torch.ones(5, dtype=torch.bool))
    assert actions.shape == (5, 2) and actions.abs().max() <= 2
    assert (module.rank_state_dict()["lattice_acting"]["noise"] is not None) == state_dependent


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy_head": "latice"}, "policy_head must be one of ['gaussian', 'lattice'], got 'latice'"),
        ({"lattice": {"alpha": 0.5}}, "lattice options are given but policy_head is 'gaussian'"),
        ({"policy_head": "lattice", "lattice": {"std_clip": [1.0, 0.1]}}, "lattice.std_clip must be [min, max]"),
        ({"policy_head": "lattice", "lattice": {"resample_every": 0}}, "lattice.resample_every must be at least 1"),
    ],
)
@pytest.mark.parametrize("algorithm", [SAC, CrossQ])
def test_unsupported_lattice_settings_are_refused_in_one_line(algorithm, kwargs, message):
    with pytest.raises(ValueError) as error:
        algorithm(observation_dim=3, action_bounds=[[-1.0], [1.0]], **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["sac", "crossq"])
def test_a_lattice_run_killed_and_resumed_continues_the_same_weights_and_noise(algorithm, tmp_path):
    """From the CLI: the per-env noise matrices (rank state) are in the checkpoint, so a run
    killed at its first save and resumed ends as the uninterrupted one."""
    args = ["--config", str(ROOT / "configs" / "smoke" / f"{algorithm}_pendulum.yaml"), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--model.init_args.policy_head", "lattice",
            "--model.init_args.lattice.resample_every", "4"]  # fmt: skip
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "reference"))
    checkpoints = tmp_path / "killed" / "checkpoints"
    process = start_fit(tmp_path, "killed", *args)
    kill_when(process, stop_at_first_save(process, checkpoints))
    assert load_ckpt(checkpoints / "last.ckpt")["learner"]["lattice_acting"]["steps"] > 0
    ok(run_cli("fit", *args, "--working_dir", str(tmp_path), "--name", "killed", "--ckpt_path", "last"))
    resumed = load_ckpt(checkpoints / "last.ckpt")
    reference = load_ckpt(tmp_path / "reference" / "checkpoints" / "last.ckpt")
    assert resumed["updates"] == reference["updates"] > 0
    for key, value in reference["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    noise, expected = (c["learner"]["lattice_acting"] for c in (resumed, reference))
    assert noise["steps"] == expected["steps"]
    assert all(torch.equal(a, b) for a, b in zip(noise["noise"], expected["noise"], strict=True))
