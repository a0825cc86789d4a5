"""The algorithm contract (docs/extending.md, "Adding an algorithm"): what a new algorithm does not write
cannot fail silently. ``tests.plain_algorithm.PlainDDPG`` skips every helper lit_rl offers."""

import ast
import json
from pathlib import Path

import pytest
import torch
import yaml

from lit_rl.algos import ALGORITHMS, DDPG, MPO, Dyna, algorithms
from lit_rl.commands.convert import tonic_agents
from tests.conftest import DATA_KEY, ROOT, SMOKE, load_ckpt, logged_rows, ok, run_cli
from tests.crash_helpers import assert_same_run
from tests.plain_algorithm import PlainDDPG

CSV = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger"]
QUIET = ["--trainer.enable_progress_bar", "false"]


@pytest.fixture(scope="module")
def plain_config(tmp_path_factory) -> Path:
    """The DDPG smoke run (400 env steps, saves at 200) with PlainDDPG as the model."""
    config = yaml.safe_load(SMOKE.read_text())
    config["model"] = {"class_path": "tests.plain_algorithm.PlainDDPG", "init_args": {"hidden": 32}}
    path = tmp_path_factory.mktemp("plain") / "plain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fit(config: Path, working_dir: Path, name: str, *extra: str):
    return ok(
        run_cli("fit", "--config", str(config), *QUIET, "--working_dir", str(working_dir), "--name", name, *extra)
    )


@pytest.fixture(scope="module")
def plain_run(plain_config, tmp_path_factory) -> Path:
    working_dir = tmp_path_factory.mktemp("plain_run")
    fit(plain_config, working_dir, "plain", *CSV)
    return working_dir / "plain"


def test_hyperparameters_are_saved_without_asking(plain_run, plain_config, tmp_path):
    ckpt = plain_run / "checkpoints" / "last.ckpt"
    hparams = load_ckpt(ckpt)["hyper_parameters"]
    assert hparams["_class_path"] == "tests.plain_algorithm.PlainDDPG"
    assert (hparams["hidden"], hparams["policy_delay"]) == (32, 2)
    ok(run_cli("validate", "--config", str(plain_config), "--ckpt_path", str(ckpt), "--trainer.logger", "false",
               "--working_dir", str(tmp_path)))  # fmt: skip
    ok(run_cli("export", "--ckpt_path", str(ckpt), "--out", str(tmp_path / "policy.pt")))
    # built outside the CLI too: every class's __init__ arguments, the base class's included
    module = PlainDDPG(observation_dim=3, action_bounds=[[-2.0], [2.0]], policy_delay=3)
    assert module.hparams.policy_delay == 3 and module.hparams.exploration_noise == "ornstein_uhlenbeck"


def test_observations_are_recorded_without_asking(plain_run):
    state = load_ckpt(plain_run / "checkpoints" / "last.ckpt")["state_dict"]
    assert state["normalizer.count"].item() > 0
    assert not torch.allclose(state["normalizer.std"], torch.ones(3))


def test_a_metric_from_every_other_batch_is_logged_at_every_logging_step(plain_run):
    rows = [r for r in logged_rows(plain_run) if r.get("train/nonfinite_batches")]  # logging steps of updates
    assert len(rows) >= 5
    assert all(r.get("loss/actor") for r in rows), "a logging step on a batch without an actor step lost it"


def test_noise_state_and_update_count_make_a_resume_exact(plain_config, plain_run, tmp_path):
    """The OU noise state and ``updates`` (which schedules the delayed actor steps) are the base
    class's: half the run, a resume and the other half end where the whole run ends."""
    fit(plain_config, tmp_path, "split", "--trainer.logger", "false", "--data.init_args.total_steps", "200")
    half = load_ckpt(tmp_path / "split" / "checkpoints" / "last.ckpt")
    assert half["updates"] > 0 and half[DATA_KEY]["acting"]["exploration_noise"]["state"].abs().sum() > 0
    fit(plain_config, tmp_path, "split", "--trainer.logger", "false")
    assert_same_run(tmp_path / "split" / "checkpoints", plain_run / "checkpoints")


def test_plain_optimizer_steps_keep_ddp_ranks_identical(plain_config, tmp_path):
    snapshot = {"class_path": "tests.ddp_helpers.RankSnapshot", "init_args": {"out_dir": str(tmp_path / "snap")}}
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", f"--trainer.callbacks+={json.dumps(snapshot)}"]
    fit(plain_config, tmp_path, "ddp", "--trainer.logger", "false", *ddp)
    rank0, rank1 = (load_ckpt(tmp_path / "snap" / f"end-rank{rank}.pt")["state_dict"] for rank in (0, 1))
    for key in rank0:
        if ".new_" not in key:  # observations recorded since the normaliser's last update are each rank's
            assert torch.equal(rank0[key], rank1[key]), f"{key} differs between the ranks"


def test_a_checkpoint_resumes_under_another_path_of_its_class(tmp_path):
    args = ["--config", str(SMOKE), *QUIET, "--trainer.logger", "false", "--working_dir", str(tmp_path)]
    # the config says lit_rl.algos.DDPG
    ok(run_cli("fit", *args, "--name", "run", "--data.init_args.total_steps", "200"))
    resumed = run_cli("fit", *args, "--name", "run", "--model.class_path", "lit_rl.algos.ddpg.DDPG",
                      "--data.init_args.total_steps", "400")  # fmt: skip
    ok(resumed)
    assert load_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")[DATA_KEY]["env_steps"] == 400
    refused = run_cli("fit", *args, "--name", "run", "--model.class_path", "lit_rl.algos.MPO")
    assert refused.returncode != 0 and "but the config trains lit_rl.algos.MPO" in refused.stderr


def test_algorithms_are_registered_from_their_files():
    assert {"DDPG": DDPG, "Dyna": Dyna, "MPO": MPO}.items() <= algorithms().items()
    assert ALGORITHMS["tests.plain_algorithm.PlainDDPG"] is PlainDDPG  # registered, not one of lit_rl's
    algos = ROOT / "lit_rl" / "algos"  # a module per algorithm, or a package (dyna/) for one with parts of its own
    files = sorted(p.stem for p in algos.glob("*.py") if p.stem not in ("__init__", "base"))
    files = sorted(files + [p.parent.name for p in algos.glob("*/__init__.py")])
    assert sorted(cls.__module__.split(".")[2] for cls in algorithms().values()) == files


def test_convert_reads_the_tonic_agents_of_every_algorithm():
    """convert reads ``tonic_agents`` from the source (no Lightning import); it is what the classes hold."""
    expected = {
        agent: (f"lit_rl.algos.{cls.__name__}", params)
        for cls in algorithms().values()
        for agent, params in cls.__dict__.get("tonic_agents", {}).items()
    }
    assert tonic_agents() == expected and "deprl.custom_mpo_torch.TunedMPO" in expected
    assert "lit_rl.algos" not in {  # convert imports no algorithm module
        node.module for node in ast.walk(ast.parse((ROOT / "lit_rl" / "commands" / "convert.py").read_text()))
        if isinstance(node, ast.ImportFrom)
    }  # fmt: skip


def test_the_documented_algorithm_table_is_the_generated_one():
    from lit_rl.commands.catalog import algorithm_table, readme_table

    assert readme_table((ROOT / "docs" / "cli.md").read_text()) == algorithm_table(), (
        "docs/cli.md's algorithm table is stale: python -m lit_rl algorithms --readme docs/cli.md"
    )


def imported_modules(path: Path) -> set[str]:
    """The lit_rl modules a file imports (at any depth of its code)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("lit_rl")}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("algos", ("lit_rl.data", "lit_rl.envs", "lit_rl.commands")),  # the learning side sees the contract only
        ("nets", ("lit_rl.data", "lit_rl.envs", "lit_rl.algos", "lit_rl.acting", "lit_rl.commands")),
        ("acting", ("lit_rl.data", "lit_rl.envs", "lit_rl.algos", "lit_rl.commands")),
        ("data", ("lit_rl.algos", "lit_rl.commands")),
        ("envs", ("lit_rl.data", "lit_rl.algos", "lit_rl.acting", "lit_rl.commands")),
        ("training", ("lit_rl.algos", "lit_rl.data", "lit_rl.envs", "lit_rl.acting", "lit_rl.commands")),
    ],
)
def test_the_layout_keeps_its_import_rules(package, forbidden):
    """docs/extending.md's layout: the algorithm side and the data side meet in contract.py, the
    machinery imports neither, and nothing but the entry points imports the user's commands."""
    for path in sorted((ROOT / "lit_rl" / package).rglob("*.py")):
        wrong = {m for m in imported_modules(path) if m.startswith(forbidden)}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
