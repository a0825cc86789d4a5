"""What runs leave in the checkout: every shipped config writes its runs under a folder git ignores
(issue 23: a DEP-MPO run wrote 309 MB into ``./baselines_DEPRL``, deprl's ``working_dir``, which
``git status`` then listed). That the tests themselves write nothing there is checked by
``checkout_stays_clean`` in conftest.py."""

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "configs").rglob("*.yaml"))
DEFAULT_WORKING_DIR = "runs"  # lit_rl/commands/cli.py's --working_dir default


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="not a git checkout")
def test_every_shipped_config_runs_into_an_ignored_folder():
    run_files = []
    for config in SHIPPED:
        values = yaml.safe_load(config.read_text())
        run_dir = os.path.normpath(os.path.join(values.get("working_dir") or DEFAULT_WORKING_DIR, values["name"]))
        run_files.append(os.path.join(run_dir, "checkpoints", "last.ckpt"))
    # check-ignore prints the ignored ones among paths that need not exist
    result = subprocess.run(["git", "check-ignore", *run_files], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    not_ignored = sorted(set(run_files) - set(result.stdout.splitlines()))
    assert not not_ignored, f"add their folder to .gitignore: {not_ignored}"
