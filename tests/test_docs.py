"""README.md and the pages it links (docs/*.md, BENCHMARKS.md, RELIABILITY.md): every relative
link points at a file that exists and, with an anchor, at a heading of that file; the README's
first screen holds the two commands and links every docs page. The recipes of docs/dep.md (fit a
deprl config to a small machine) and docs/extending.md (an algorithm outside the package) run."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DATA_KEY, ROOT, SMOKE, cli_env, load_ckpt, ok, run_cli

PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "RELIABILITY.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def outside_code(text: str) -> list[str]:
    lines, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = [line.lstrip("#").strip() for line in outside_code(path.read_text()) if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for line in outside_code(page.read_text()):
            for target in LINK.findall(line):
                if target.startswith(("http://", "https://", "mailto:", "bench_runs/")):
                    continue  # bench_runs/: written by `make bench-quick`, not committed
                path, _, anchor = target.partition("#")
                file = (page.parent / path).resolve() if path else page
                if not file.exists() or anchor and file.suffix == ".md" and anchor not in anchors(file):
                    broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_readme_starts_with_the_two_commands_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make train" in first_screen and "make test" in first_screen
    linked = set(LINK.findall(readme))
    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} <= linked


def test_an_algorithm_outside_the_package_trains_as_extending_md_says(tmp_path):
    """docs/extending.md, "An algorithm outside the package": a class in a module on PYTHONPATH,
    named by ``--model.class_path``, trains, and its checkpoint exports with the same PYTHONPATH."""
    assert "PYTHONPATH=/path/to/folder python -m lit_rl fit" in (ROOT / "docs" / "extending.md").read_text()
    (tmp_path / "my_algos.py").write_text(
        'from lit_rl.algos import DDPG\n\n\nclass MyDDPG(DDPG):\n    """DDPG with my change."""\n'
    )
    env = {**cli_env(), "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    args = ["--config", str(SMOKE), "--model.class_path", "my_algos.MyDDPG", "--working_dir", str(tmp_path)]
    args += ["--name", "mine", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    args += ["--data.init_args.total_steps", "200", "--data.init_args.test_episodes", "0"]  # updates from 100 steps on
    for command in (["fit", *args], ["export", "--ckpt_path", str(tmp_path / "mine" / "checkpoints" / "last.ckpt"),
                                     "--out", str(tmp_path / "policy.pt")]):  # fmt: skip
        run = subprocess.run([sys.executable, "-m", "lit_rl", *command], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        ok(run)
    checkpoint = load_ckpt(tmp_path / "mine" / "checkpoints" / "last.ckpt")
    assert checkpoint["hyper_parameters"]["_class_path"] == "my_algos.MyDDPG" and checkpoint["updates"] > 0
    assert (tmp_path / "policy.pt").stat().st_size > 0


SIZING_KEYS = [
    "data.init_args.parallel",
    "data.init_args.sequential",
    "data.init_args.total_steps",
    "data.init_args.replay.steps_before_batches",
    "data.init_args.epoch_steps",
    "data.init_args.save_steps",
]


def deprl_fit_example(working_dir) -> tuple[str, list[str]]:
    """docs/dep.md, "Fit a deprl config to this machine": the section and its command's arguments
    after ``python -m lit_rl``, writing to ``working_dir``."""
    text = (ROOT / "docs" / "dep.md").read_text()
    section = text.split("## Fit a deprl config to this machine\n", 1)[1].split("\n## ", 1)[0]
    command = shlex.split(section.split("```\n", 2)[1].replace("\\\n", " "))
    assert command[:3] == ["python", "-m", "lit_rl"]
    args = command[3:]
    args[args.index("--working_dir") + 1] = str(working_dir)
    return section, args


def test_the_deprl_fit_example_sets_every_key_that_sizes_a_run(tmp_path):
    section, args = deprl_fit_example(tmp_path)
    printed = yaml.safe_load(ok(run_cli(*args, "--print_config", timeout=120)).stdout)  # the keys exist
    for key in SIZING_KEYS:
        assert f"`{key}`" in section and f"--{key}" in args, key
        value = printed
        for part in key.split("."):
            value = value[part]
        assert value == int(args[args.index(f"--{key}") + 1]), key


@pytest.mark.slow
def test_the_deprl_fit_example_trains(tmp_path):
    pytest.importorskip("myosuite")
    _, args = deprl_fit_example(tmp_path)
    ok(run_cli(*args, "--trainer.enable_progress_bar", "false", timeout=600))
    checkpoint = load_ckpt(tmp_path / "myoLeg" / "checkpoints" / "last.ckpt")
    assert checkpoint[DATA_KEY]["env_steps"] == 3000 and checkpoint["updates"] == 60  # as the section says
