"""lit_rl's DEP against the real deprl 0.3.2 ``DEP`` class: a golden fixture of deprl's actions on
recorded myoLegWalk-v0 muscle states, float64 (tests/fixtures/deprl_dep/make_fixture.py writes it;
deprl is not needed here)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_rl.acting import DEPConfig, DEPController

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "deprl_dep" / "deprl_dep.npz"
DATA = np.load(FIXTURE)
META = json.loads(str(DATA["meta"]))
CASES = [name for name in DATA.files if name not in ("inputs", "meta")]


def lit_rl_actions(block: str, normalization: str, envs: int) -> np.ndarray:
    inputs = torch.from_numpy(DATA["inputs"][:, :envs])
    config = DEPConfig(**{**META["blocks"][block], "normalization": normalization})
    dep = DEPController(envs, inputs.shape[-1], config, dtype=torch.float64)
    return torch.stack([dep.step(x) for x in inputs]).numpy()


@pytest.mark.parametrize("case", CASES)
def test_dep_reproduces_deprl(case):
    block, normalization, envs = case.split("-")
    envs = int(envs.removesuffix("env"))
    theirs = DATA[case]
    ours = lit_rl_actions(block, normalization, envs)
    assert ours.shape == theirs.shape == (META["steps"], envs, DATA["inputs"].shape[-1])
    np.testing.assert_allclose(ours, theirs, atol=1e-9, rtol=0)
    # not a trivial agreement: the controller learned, and the (mostly saturated) actions take both
    # signs and keep changing, so a sign flip anywhere would show
    late = theirs[-50:]
    assert (late > 0.5).mean() > 0.1 and (late < -0.5).mean() > 0.1
    assert (np.abs(np.diff(late, axis=0)) > 1).mean() > 0.01


@pytest.mark.parametrize("block", ["myoleg", "default"])
def test_row_scaling_is_not_deprl(block):
    """``independent_rows`` (row j scaled by row j's factor) is a different controller from deprl's."""
    theirs = DATA[f"{block}-independent-4env"]
    rows = lit_rl_actions(block, "independent_rows", 4)
    assert (np.abs(rows - theirs) > 1e-3).mean() > 0.05
