"""``python -m lit_rl plot`` and ``compare``: learning curves and scores from W&B run files and
CSVLogger files of real runs."""

import shutil

import matplotlib.image
import numpy as np
import pytest

from lit_rl.commands import compare
from lit_rl.commands.plot import PlotError, config_key, plot, read_csv, read_wandb, run_curve
from tests.conftest import SMOKE, ok, run_cli

BOTH_LOGGERS = (
    "[{class_path: lightning.pytorch.loggers.WandbLogger, init_args: {project: lit_rl, offline: true}}, "
    "{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: %s}}]"
)
BUDGET = ["--data.init_args.total_steps", "200", "--data.init_args.epoch_steps", "100"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of the smoke config (the first also with a CSVLogger) and one other config, 200 steps
    with a test every 100."""
    working_dir = tmp_path_factory.mktemp("runs")

    def fit(name, *extra):
        args = ["--config", str(SMOKE), "--working_dir", str(working_dir), "--name", name, *BUDGET, *extra]
        result = run_cli("fit", *args)
        ok(result)
        return working_dir / name

    seed0 = fit("smoke_seed0", "--trainer.logger", BOTH_LOGGERS % (working_dir / "smoke_seed0"))
    seed1 = fit("smoke_seed1", "--seed_everything", "1")
    other = fit("slow_actor", "--model.init_args.actor_lr", "1e-4")
    return seed0, seed1, other


def test_wandb_file_and_csv_give_the_same_curve(runs):
    seed0 = runs[0]
    [wandb_file] = seed0.glob("wandb/*run-*/run-*.wandb")
    [csv_file] = seed0.rglob("metrics.csv")
    from_wandb = {
        row["env_steps"]: row["test/episode_return"] for row in read_wandb(wandb_file) if "test/episode_return" in row
    }
    from_csv = {
        row["env_steps"]: row["test/episode_return"] for row in read_csv(csv_file) if "test/episode_return" in row
    }
    assert sorted(from_wandb) == [100, 200] and from_wandb.keys() == from_csv.keys()
    for steps, value in from_wandb.items():
        assert value == pytest.approx(from_csv[steps], rel=1e-6)
    xs, ys = run_curve(seed0, "test/episode_return", "env_steps")
    assert list(xs) == [100, 200] and np.allclose(ys, [from_wandb[100], from_wandb[200]])
    xs, ys = run_curve(seed0, "test/episode_return", "env_steps", x_max=199)
    assert list(xs) == [100] and np.allclose(ys, [from_wandb[100]])
    with pytest.raises(PlotError, match="smoke_seed0: no logged 'test/episode_return' at env_steps <= 50"):
        run_curve(seed0, "test/episode_return", "env_steps", x_max=50)


def test_plot_groups_seeds_of_one_config_and_writes_a_png(runs, tmp_path):
    out = tmp_path / "curves.png"
    counts = plot(list(runs), "test/episode_return", "env_steps", out)
    assert counts == {"smoke (2 runs)": 2, "slow_actor (1 run)": 1}
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 300 and len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 10
    result = run_cli(
        "plot", *map(str, runs), "--metric", "train/episode_return", "--x-max", "150", "--out", str(tmp_path / "t.png")
    )
    ok(result)
    assert (tmp_path / "t.png").stat().st_size > 10_000


def test_truncated_wandb_file_keeps_the_complete_rows(runs, tmp_path):
    [wandb_file] = runs[1].glob("wandb/*run-*/run-*.wandb")
    full = read_wandb(wandb_file)
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(wandb_file.read_bytes()[: wandb_file.stat().st_size * 2 // 3])
    partial = read_wandb(cut)
    assert 0 < len(partial) < len(full) and partial == full[: len(partial)]


def test_missing_metric_names_the_run(runs):
    with pytest.raises(PlotError, match="smoke_seed1: no logged 'no/such_metric'"):
        run_curve(runs[1], "no/such_metric", "env_steps")


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| config", "| X "))]


def test_compare_gives_no_interval_below_three_runs(runs, tmp_path, capsys):
    """One run gave ``[-160.4, -160.4]`` and ``P(X > Y) 1.00 [1.00, 1.00]``: a certainty one run cannot give."""
    assert compare.main([*map(str, runs), "--out", str(tmp_path / "compare.png")]) == 0
    printed = capsys.readouterr().out
    rows = table_rows(printed)
    assert [row.split("|")[1].strip() for row in rows] == ["smoke", "slow_actor", "smoke", "slow_actor"]
    assert "(no CI: 2 runs)" in rows[0] and "(no CI: 1 run)" in rows[1]
    assert rows[2].endswith("(no CI: 1 run) |") and rows[3].endswith("(no CI: 1 run) |")  # P(X > Y)
    assert not any("[" in row for row in rows), rows
    assert "No 95% CI where a config has fewer than 3 runs" in printed
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_compare_without_out_writes_no_file(runs, tmp_path, monkeypatch, capsys):
    """It wrote compare.png into the current folder (the repository root, an untracked file)."""
    monkeypatch.chdir(tmp_path)
    assert compare.main(list(map(str, runs))) == 0
    assert list(tmp_path.iterdir()) == []
    printed = capsys.readouterr().out
    assert len(table_rows(printed)) == 4 and "--out compare.png draws the figure" in printed


def test_a_name_with_a_dash_keeps_its_end_in_labels(runs, tmp_path, capsys):
    """``ddpg_lr3e-4`` showed as ``ddpg_lr3e``: the label dropped any ``-<digits>`` ending as a seed."""
    named = tmp_path / "ddpg_lr3e-4"
    shutil.copytree(runs[2], named)
    seed1 = tmp_path / "smoke_1"  # ends in its seed, 1: a seed ending
    shutil.copytree(runs[1], seed1)
    assert config_key(named)[1] == "ddpg_lr3e-4" and config_key(seed1)[1] == "smoke"
    counts = plot([named, runs[0]], "test/episode_return", "env_steps", tmp_path / "curves.png")
    assert counts == {"ddpg_lr3e-4 (1 run)": 1, "smoke (1 run)": 1}
    assert compare.main([str(named)]) == 0
    assert table_rows(capsys.readouterr().out)[0].startswith("| ddpg_lr3e-4 | 1 |")


def test_later_csv_segments_win_in_the_order_they_were_written(runs, tmp_path):
    """A run resumed ten times has version_0 .. version_10: the evaluation a resume repeats keeps
    the value of the newest segment, version_10, not of version_9 (which sorts after it as text)."""
    [csv_file] = runs[0].rglob("metrics.csv")
    run = tmp_path / "resumed"
    rows = csv_file.read_text().splitlines()
    for version, scale in ((9, 1.0), (10, 2.0)):
        (run / f"version_{version}").mkdir(parents=True)
        header = rows[0].split(",")
        column = header.index("test/episode_return")
        lines = [rows[0]]
        for line in rows[1:]:
            cells = line.split(",")
            if cells[column]:
                cells[column] = str(float(cells[column]) * scale)
            lines.append(",".join(cells))
        (run / f"version_{version}" / "metrics.csv").write_text("\n".join(lines) + "\n")
    xs, ys = run_curve(run, "test/episode_return", "env_steps")
    _, original = run_curve(runs[0], "test/episode_return", "env_steps")
    assert np.array_equal(ys, 2.0 * original) and len(xs) == len(original)
