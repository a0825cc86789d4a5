"""``lit_rl.api`` on the smoke DDPG config, in this process: a policy loaded from a run scores what the
CLI's ``test`` reports for the same checkpoint and seeds, config errors raise, and the example of
docs/api.md runs."""

import re
import signal
import warnings

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from lightning.pytorch import Callback

from lit_rl import api
from lit_rl.commands.cli import LitRLCLI
from lit_rl.commands.plot import read_csv, read_wandb
from tests.conftest import ROOT, SMOKE

QUIET = {"trainer.logger": False, "trainer.enable_progress_bar": False, "trainer.enable_model_summary": False}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return api.train(SMOKE, QUIET, working_dir=tmp_path_factory.mktemp("runs"), name="smoke")


def test_train_returns_the_run_directory_and_last_metrics(run):
    assert (run.run_dir / "checkpoints" / "last.ckpt").is_file() and (run.run_dir / "config.yaml").is_file()
    assert run.metrics["env_steps"] == 400
    assert np.isfinite(run.metrics["test/episode_return"])
    with pytest.raises(api.AlreadyFinished):  # as fit: the run directory holds total_steps already
        api.train(SMOKE, QUIET, working_dir=run.run_dir.parent, name=run.run_dir.name)


def cli_test_return(run_dir, ckpt_path="last") -> float:
    args = ["test", "--config", str(run_dir / "config.yaml"), "--ckpt_path", str(ckpt_path)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")  # pytest's own sys.argv
        cli = LitRLCLI(args=[*args, "--trainer.enable_progress_bar", "false"])
    return float(cli.trainer.callback_metrics["test/episode_return"])


def test_the_policy_scores_what_the_cli_test_reports(run):
    policy = api.load_policy(run.run_dir)
    result = api.evaluate(policy, episodes=2)  # the smoke config's test_episodes
    assert result.seeds == [1_000_000, 1_000_001] and result.lengths == [50, 50]
    assert result.mean == pytest.approx(cli_test_return(run.run_dir), abs=1e-3)  # the CLI logs float32
    assert result.mean == pytest.approx(run.metrics["test/episode_return"], abs=1e-3)  # fit's last evaluation

    # A checkpoint file finds its run's config.yaml next to its folder.
    earlier = run.run_dir / "checkpoints" / "step=200.ckpt"
    expected = cli_test_return(run.run_dir, earlier)
    assert api.evaluate(api.load_policy(earlier), episodes=2).mean == pytest.approx(expected, abs=1e-3)


def test_the_policy_returns_env_actions_for_one_observation_or_a_batch(run):
    policy = api.load_policy(run.run_dir)
    assert (policy.env_id, policy.test_seed) == ("Pendulum-v1", 1_000_000)
    observations = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    actions = policy(observations)
    assert actions.shape == (5, 1) and policy(observations[0]).shape == (1,)
    np.testing.assert_allclose(policy(observations[0]), actions[0], rtol=1e-6)
    # scaled_actions: the agent's [-1, 1] times Pendulum's bound 2
    agent = policy.module.act_greedy(torch.as_tensor(observations)).detach().numpy()
    np.testing.assert_allclose(actions, 2.0 * agent, rtol=1e-6)


def test_evaluate_seeds_and_video(run, tmp_path):
    policy = api.load_policy(run.run_dir)
    result = api.evaluate(policy, episodes=2, seed=7, video=tmp_path / "episode.mp4")
    assert result.seeds == [7, 8] and result.std == pytest.approx(np.std(result.returns))
    assert api.evaluate(policy, episodes=1, seed=8).returns == [result.returns[1]]
    metadata_and_frames = list(imageio_ffmpeg.read_frames(str(tmp_path / "episode.mp4")))
    assert len(metadata_and_frames) == 1 + 51  # the reset frame and one per step


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"model.init_args.not_a_key": 1}, "not_a_key"),
        ({"data.init_args.total_steps": "many"}, "total_steps"),
        ({"data.init_args.env.id": "Pendulim-v1"}, "Pendulum-v1"),
    ],
)
def test_a_config_error_raises_instead_of_exiting(override, named, tmp_path):
    with pytest.raises(api.ConfigError, match=named):
        api.train(SMOKE, {**QUIET, **override}, working_dir=tmp_path)
    assert not any(tmp_path.iterdir())


WANDB_AND_CSV = (
    "[{class_path: lightning.pytorch.loggers.WandbLogger, init_args: {project: lit_rl, offline: true}}, "
    "{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: .}}]"
)


def logged_test_returns(rows: list[dict]) -> list[tuple[float, float]]:
    """(env_steps, test/episode_return) of the logged rows that hold a test return."""
    return [(row["env_steps"], row["test/episode_return"]) for row in rows if "test/episode_return" in row]


def test_two_trains_in_one_process_log_into_their_own_runs(tmp_path, monkeypatch):
    """A notebook loop over seeds: each train() has its own W&B run (Lightning reused the process's
    open W&B run, so the second run logged into the first one's) and its own CSV log. The second
    call gives its overrides as a list of "key=value" strings."""
    monkeypatch.setenv("WANDB_MODE", "offline")  # restored after the test (WandbLogger sets it)
    monkeypatch.setenv("WANDB_SILENT", "true")
    quiet = {key: value for key, value in QUIET.items() if key != "trainer.logger"}
    first = api.train(SMOKE, {**quiet, "trainer.logger": WANDB_AND_CSV}, working_dir=tmp_path, name="nb_seed0")
    second = api.train(
        SMOKE,
        [f"{key}={str(value).lower()}" for key, value in quiet.items()]
        + ["seed_everything=1", f"trainer.logger={WANDB_AND_CSV}"],
        working_dir=tmp_path,
        name="nb_seed1",
    )
    curves = []
    for run in (first, second):
        [wandb_file] = run.run_dir.glob("wandb/offline-run-*/run-*.wandb")
        [csv_file] = run.run_dir.rglob("metrics.csv")
        wandb_rows = read_wandb(wandb_file)
        from_wandb, from_csv = logged_test_returns(wandb_rows), logged_test_returns(read_csv(csv_file))
        assert [steps for steps, _ in from_wandb] == [200, 400], from_wandb  # its own two evaluations, no more
        assert [steps for steps, _ in from_csv] == [200, 400], from_csv
        returns = [value for _, value in from_wandb]
        assert returns == pytest.approx([value for _, value in from_csv], rel=1e-6)
        assert returns[-1] == pytest.approx(run.metrics["test/episode_return"], rel=1e-6)
        assert max(row["env_steps"] for row in wandb_rows if "env_steps" in row) == 400
        curves.append(returns)
    assert curves[0] != curves[1], "two seeds, two curves"


@pytest.mark.filterwarnings("ignore:There is a wandb run already in progress")  # Lightning's, the case tested
def test_a_wandb_run_the_user_opened_is_left_to_the_user(tmp_path, monkeypatch):
    """Lightning's WandbLogger logs into a W&B run that is open already; train() must not finish it."""
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    mine = wandb.init(mode="offline", dir=tmp_path, project="mine")
    try:
        quiet = {key: value for key, value in QUIET.items() if key != "trainer.logger"}
        api.train(SMOKE, {**quiet, "data.init_args.total_steps": 200}, working_dir=tmp_path, name="run")
        assert wandb.run is mine, "still open"
    finally:
        mine.finish()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.init_args.actor_lr"], r"overrides: 'model.init_args.actor_lr' is not 'key=value'"),
        ([("model.init_args.actor_lr", 1e-3)], r"overrides: \('model.init_args.actor_lr', 0.001\) is not 'key=value'"),
        (["=3"], r"overrides: '=3' is not 'key=value'"),
        (
            "model.init_args.actor_lr=1e-3",
            r"overrides: a dict \{'key': value\} or a list of 'key=value' strings, not str",
        ),
    ],
)
def test_overrides_that_are_neither_a_dict_nor_key_value_strings_are_one_config_error(overrides, message, tmp_path):
    with pytest.raises(api.ConfigError, match=message) as raised:
        api.train(SMOKE, overrides, working_dir=tmp_path)
    assert len(str(raised.value).splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_list_overrides_reach_the_config_as_fit_arguments_do(tmp_path):
    """A "key=value" string is read as ``fit --key value`` reads it (3e-4 a float, a bad key named)."""
    assert api.override_args(["model.init_args.actor_lr=3e-4", "--seed_everything=1"]) == [
        "--model.init_args.actor_lr",
        "3e-4",
        "--seed_everything",
        "1",
    ]
    with pytest.raises(api.ConfigError, match="did you mean --model.init_args.actor_lr"):
        api.train(SMOKE, ["model.init_args.actor_lrr=3e-4"], working_dir=tmp_path)


class Interrupt(Callback):
    """Ctrl+C in the middle of training."""

    def on_train_batch_end(self, *args):
        raise KeyboardInterrupt


def test_ctrl_c_raises_keyboard_interrupt_not_system_exit(tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    interrupt = {"trainer.callbacks": [{"class_path": f"{__name__}.Interrupt"}]}
    with pytest.raises(KeyboardInterrupt):
        api.train(SMOKE, {**QUIET, **interrupt}, working_dir=tmp_path)
    assert signal.getsignal(signal.SIGINT) is handler  # a notebook's next interrupt still works


def test_load_policy_names_what_is_missing(run, tmp_path):
    with pytest.raises(api.ConfigError, match="no checkpoint"):
        api.load_policy(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes((run.run_dir / "checkpoints" / "last.ckpt").read_bytes())
    with pytest.raises(api.ConfigError, match="config.yaml is missing"):
        api.load_policy(tmp_path)


def test_the_docs_example_runs(tmp_path, monkeypatch):
    """docs/api.md's code, with the smoke config in place of the real one."""
    train = api.train

    def small_train(config, overrides=None, **kwargs):
        return train(SMOKE, {**(overrides or {}), **QUIET}, **kwargs)

    monkeypatch.setattr(api, "train", small_train)
    monkeypatch.chdir(tmp_path)  # the example's runs/ and video
    (code,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    exec(compile(code, "docs/api.md", "exec"), {})
    assert (tmp_path / "runs" / "ddpg_lr3e-4" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "pendulum.mp4").stat().st_size > 0
