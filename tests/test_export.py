"""``python -m lit_rl export``: the deterministic policy as TorchScript, usable without lit_rl."""

import subprocess
import sys

import pytest
import torch

from lit_rl.export import load_algorithm
from tests.conftest import ROOT, ok, run_cli

SMOKES = {
    "ddpg": ROOT / "configs" / "smoke" / "ddpg_pendulum.yaml",
    "mpo": ROOT / "configs" / "smoke" / "mpo_pendulum.yaml",
}

# Runs with lit_rl and Lightning made unimportable: only torch may be needed to use the policy.
LOAD_WITHOUT_LIT_RL = """
import sys
sys.modules["lit_rl"] = None
sys.modules["lightning"] = None
import torch
policy = torch.jit.load(sys.argv[1])
torch.save(policy(torch.load(sys.argv[2])), sys.argv[3])
"""


@pytest.mark.parametrize("algo", ["ddpg", pytest.param("mpo", marks=pytest.mark.slow)])
def test_exported_policy_acts_like_the_module_without_lit_rl(tmp_path, algo):
    result = run_cli("fit", "--config", str(SMOKES[algo]), "--working_dir", str(tmp_path), "--name", "run",
                     "--trainer.logger", "false")  # fmt: skip
    ok(result)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    policy_file = tmp_path / "policy.pt"
    result = run_cli("export", "--ckpt_path", str(ckpt), "--out", str(policy_file))
    ok(result)

    module = load_algorithm(ckpt)
    if module.normalizer is not None:  # the statistics moved away from the identity: folding them in matters
        assert module.normalizer.count.item() > 0 and not torch.allclose(module.normalizer.std, torch.ones(3))
    observations = torch.randn(7, module.observation_dim) * 3  # another batch size than the trace's
    torch.save(observations, tmp_path / "obs.pt")
    subprocess.run(
        [sys.executable, "-I", "-c", LOAD_WITHOUT_LIT_RL, str(policy_file), str(tmp_path / "obs.pt"),
         str(tmp_path / "actions.pt")],
        check=True, timeout=120,
    )  # fmt: skip
    with torch.no_grad():
        expected = module.act_greedy(observations)
    exported = torch.load(tmp_path / "actions.pt")
    assert exported.shape == (7, 1)
    torch.testing.assert_close(exported, expected)


def test_export_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.ckpt"
    result = run_cli("export", "--ckpt_path", str(missing), "--out", str(tmp_path / "p.pt"))
    assert result.returncode == 2 and f"--ckpt_path {missing} does not exist" in result.stderr
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    result = run_cli("export", "--ckpt_path", str(garbage), "--out", str(tmp_path / "p.pt"))
    assert result.returncode == 2 and "is not a readable lit_rl checkpoint" in result.stderr
    assert not (tmp_path / "p.pt").exists()
