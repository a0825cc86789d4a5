"""DEP controller against a slow loop reference, its checkpoint state, and the DEP/RL switching."""

import io
from collections import deque
from dataclasses import replace

import pytest
import torch

from lit_rl.acting.dep import DEPConfig, DEPController
from lit_rl.acting.switching import DEP, RL, RL_DEP_LEARNS, DEPSwitch

E, m = 3, 5
# smallest legal history (tau + time_dist + 1) so the ring wraps often; a small kappa keeps the
# actions away from the tanh saturation, so that they show any difference
SMALL = DEPConfig(kappa=1.5, tau=8, time_dist=2, buffer_size=11, s4avg=2, bias_rate=0.1)


class ReferenceDEP:
    """The per-step procedure of DEP for ONE env, written as plainly as possible: float64,
    a deque of (smoothed input, action) pairs, loops over the history and the motors, generic M."""

    def __init__(self, cfg: DEPConfig, m: int):
        self.cfg = cfg
        self.M = -torch.eye(m, dtype=torch.float64)
        self.C_norm = torch.zeros(m, m, dtype=torch.float64)
        self.Cb = torch.zeros(m, dtype=torch.float64)
        self.x = torch.zeros(m, dtype=torch.float64)
        self.history = deque(maxlen=cfg.buffer_size)
        self.t = 0

    def step(self, x: torch.Tensor) -> torch.Tensor:
        cfg, reg = self.cfg, 10.0 ** (-self.cfg.regularization)
        if cfg.s4avg > 1 and self.t > 0:
            self.x = self.x + (x - self.x) / cfg.s4avg
        else:
            self.x = x.clone()
        self.history.append([self.x.clone(), None])
        h, td = self.history, cfg.time_dist
        if cfg.with_learning and len(h) > 2 + td:
            C = torch.zeros_like(self.C_norm)
            for s in range(2, min(self.t - td, cfg.tau)):
                chi = h[-s][0] - h[-s - 1][0]
                v = h[-s - td][0] - h[-s - 1 - td][0]
                C += torch.outer(self.M @ chi, v)
            R = C @ self.M.T
            factors = [cfg.kappa / (torch.linalg.norm(R[j]) + reg) for j in range(len(C))]  # one per row
            if cfg.normalization == "independent":  # deprl: column k scaled by row k's factor
                self.C_norm = torch.stack([C[:, k] * factors[k] for k in range(len(C))], dim=1)
            elif cfg.normalization == "independent_rows":
                self.C_norm = torch.stack([C[j] * factors[j] for j in range(len(C))])
            elif cfg.normalization == "global":
                self.C_norm = C * cfg.kappa / (torch.linalg.norm(R) + reg)
            else:
                self.C_norm = C
            if cfg.bias_rate >= 0:
                y_prev = h[-2][1]
                self.Cb = self.Cb - (torch.clamp(cfg.bias_rate * y_prev, -0.05, 0.05) + 0.001 * self.Cb)
            else:
                self.Cb = torch.zeros_like(self.Cb)
        q = self.C_norm @ self.x
        if cfg.q_norm_selector == "l2":
            q = q / (torch.linalg.norm(q) + reg)
        elif cfg.q_norm_selector == "max":
            q = q / (max(abs(float(qj)) for qj in q) + reg)
        y = torch.clamp(torch.tanh(cfg.kappa * q + self.Cb), -1.0, 1.0)
        h[-1][1] = y
        self.t += 1
        return y


def muscle_states(steps: int, seed: int = 0) -> torch.Tensor:
    """Random bounded walks, [steps, E, m], like normalised muscle lengths."""
    g = torch.Generator().manual_seed(seed)
    return torch.sin(torch.cumsum(0.3 * torch.randn(steps, E, m, generator=g, dtype=torch.float64), 0))


def run_both(cfg: DEPConfig, dtype: torch.dtype, steps: int = 50):
    xs = muscle_states(steps).to(dtype)
    ctrl = DEPController(E, m, cfg, dtype=dtype)
    refs = [ReferenceDEP(cfg, m) for _ in range(E)]
    ours, theirs = [], []
    for x in xs:
        ours.append(ctrl.step(x).double())
        theirs.append(torch.stack([ref.step(x[e].double()) for e, ref in enumerate(refs)]))
    return ctrl, torch.stack(ours), torch.stack(theirs)


# float64 checks the algorithm; float32 (the production dtype) is held to 2e-5: the row normalisation
# divides by row norms of C that can be small, which amplifies float32 rounding a little
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("bias_rate", [0.1, -1.0])
@pytest.mark.parametrize("q_norm_selector", ["l2", "max", "none"])
@pytest.mark.parametrize("normalization", ["independent", "independent_rows", "global", "none"])
def test_matches_reference(normalization, q_norm_selector, bias_rate, dtype, atol):
    cfg = replace(SMALL, normalization=normalization, q_norm_selector=q_norm_selector, bias_rate=bias_rate)
    ctrl, ours, theirs = run_both(cfg, dtype)
    assert ctrl.t > 4 * cfg.buffer_size  # the ring wrapped several times
    assert ctrl.C_norm.abs().sum() > 0  # learning was active
    torch.testing.assert_close(ours, theirs, atol=atol, rtol=0)
    # a meaningful comparison: plenty of actions away from the tanh saturation and from 0
    assert ((ours.abs() < 0.95) & (ours.abs() > 1e-3)).float().mean() > 0.2
    if bias_rate < 0:
        assert ctrl.Cb.abs().sum() == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"s4avg": 1, "time_dist": 0, "tau": 4, "buffer_size": 5},  # no smoothing, chi = v
        {"s4avg": 6, "time_dist": 3, "tau": 8, "buffer_size": 15},  # roomier history
        {"tau": 2, "time_dist": 1, "buffer_size": 4},  # empty sum: C = 0, only the bias learns
        {"with_learning": False},  # y = tanh(Cb) = 0
        {"kappa": 10000.0, "bias_rate": 2e-5},  # deprl's default gain (saturated actions)
    ],
)
def test_matches_reference_variants(changes):
    cfg = replace(SMALL, **changes)
    _, ours, theirs = run_both(cfg, torch.float64)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)


def test_first_actions_before_learning_are_tanh_bias():
    ctrl = DEPController(E, m, SMALL)
    for x in muscle_states(SMALL.time_dist + 2):  # history length <= 2 + time_dist: no learning yet
        assert torch.equal(ctrl.step(x.float()), torch.zeros(E, m))
    assert ctrl.history_length == SMALL.time_dist + 2


def test_global_normalization_is_per_env():
    cfg = replace(SMALL, normalization="global")
    a, b = DEPController(E, m, cfg), DEPController(E, m, cfg)
    xs = muscle_states(30).float()
    for x in xs:
        ya = a.step(x)
        x = x.clone()
        x[0] *= 10.0  # scale env 0's signal: deprl's norm over all envs would change the others' actions
        yb = b.step(x)
    torch.testing.assert_close(ya[1:], yb[1:], atol=1e-6, rtol=0)


def test_state_dict_round_trip():
    xs = muscle_states(50, seed=1).float()
    a = DEPController(E, m, SMALL)
    for x in xs[:27]:
        a.step(x)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = DEPController(E, m, SMALL)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert b.t == a.t
    for x in xs[27:]:
        assert torch.equal(a.step(x), b.step(x))
    with pytest.raises(ValueError, match="shape"):
        DEPController(E + 1, m, SMALL).load_state_dict(a.state_dict())


def test_to_dtype_and_input_conversion():
    ctrl = DEPController(E, m, SMALL).to("cpu", torch.float64)
    y = ctrl.step(muscle_states(1)[0].float())
    assert y.dtype == torch.float64 and ctrl.dx_hist.dtype == torch.float64
    with pytest.raises(ValueError, match="shape"):
        ctrl.step(torch.zeros(E, m + 1))


def test_config_validation():
    with pytest.raises(ValueError, match=r"buffer_size \(8\) must be >= tau \+ time_dist \+ 1"):
        DEPConfig(tau=6, time_dist=2, buffer_size=8)
    DEPConfig(tau=6, time_dist=2, buffer_size=9)
    with pytest.raises(ValueError, match="buffer_size"):
        DEPConfig(buffer_size=100)  # deprl defaults need 141
    with pytest.raises(ValueError, match="normalization"):
        DEPConfig(normalization="l1")
    with pytest.raises(ValueError, match="q_norm_selector"):
        DEPConfig(q_norm_selector="l1")
    cfg = DEPConfig()
    assert (cfg.kappa, cfg.tau, cfg.buffer_size, cfg.time_dist, cfg.s4avg) == (10000, 80, 600, 60, 6)
    assert (cfg.intervention_length, cfg.intervention_proba, cfg.test_episode_every) == (5, 0.0004, 3)


# --------------------------------------------------------------------------- switching

NUM_ENVS = 10


def run_switch(switch: DEPSwitch, vector_steps: int, episodes=lambda i: 1):
    """Decisions for vector steps i = 0 .. vector_steps-1 (env_steps = NUM_ENVS * i)."""
    return [switch.step(NUM_ENVS * i, episodes(i)) for i in range(vector_steps)]


def test_mode_0_always_rl():
    switch = DEPSwitch(0, steps_before_batches=100)
    assert run_switch(switch, 50, episodes=lambda i: i // 7) == [RL] * 50
    assert not switch.uses_dep and switch.trains_rl and not switch.evaluation_uses_dep


def test_mode_1_init_explore():
    switch = DEPSwitch(1, steps_before_batches=100)
    # env_steps 0, 10, .., 100 are not past steps_before_batches: 11 DEP steps
    assert run_switch(switch, 30) == [DEP] * 11 + [RL] * 19
    assert not switch.evaluation_uses_dep


def test_mode_2_deterministic_alternation():
    switch = DEPSwitch(2, steps_before_batches=20, rl_length=4, intervention_length=3)
    decisions = run_switch(switch, 3 + 3 * 7, episodes=lambda i: 0)  # greedy episodes play no role
    cycle = [RL_DEP_LEARNS] * 4 + [DEP] * 3
    assert decisions == [DEP] * 3 + cycle * 3
    assert switch.interventions == 3 and not switch.evaluation_uses_dep


def test_mode_3_proba_one_and_zero():
    switch = DEPSwitch(3, steps_before_batches=0, intervention_length=3, intervention_proba=1.0, seed=0)
    # step 0 is InitExplore; the coin always hits, RL acts on that step, DEP the next 3
    cycle = [RL_DEP_LEARNS] + [DEP] * 3
    assert run_switch(switch, 1 + 4 * 4) == [DEP] + cycle * 4
    switch = DEPSwitch(3, steps_before_batches=0, intervention_length=3, intervention_proba=0.0, seed=0)
    assert run_switch(switch, 40) == [DEP] + [RL_DEP_LEARNS] * 39


def test_mode_3_greedy_episodes():
    switch = DEPSwitch(3, 0, intervention_length=3, intervention_proba=1.0, test_episode_every=3, seed=0)
    # finished episodes 0, 3, 6 are greedy: RL acts, DEP is not stepped, a running intervention pauses
    episodes = [0, 1, 1, 3, 3, 4, 4, 5, 6, 7]
    decisions = [switch.step(NUM_ENVS * i, n) for i, n in enumerate(episodes)]
    assert decisions == [DEP, RL_DEP_LEARNS, DEP, RL, RL, DEP, DEP, RL_DEP_LEARNS, RL, DEP]


def test_mode_3_stochastic_interventions_are_reproducible():
    def decisions(switch, n=3000):
        return run_switch(switch, n)

    a = DEPSwitch(3, 0, intervention_length=5, intervention_proba=0.05, seed=3)
    first = decisions(a)[1:]
    assert first == decisions(DEPSwitch(3, 0, intervention_length=5, intervention_proba=0.05, seed=3))[1:]
    # every run of DEP steps is exactly intervention_length long and follows an RL step (the coin)
    runs, length = [], 0
    for d in first:
        if d == DEP:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert set(runs) == {5} and 50 < len(runs) < 200
    assert all(d in (DEP, RL_DEP_LEARNS) for d in first)


def test_switch_state_dict_round_trip():
    a = DEPSwitch(3, 0, intervention_length=4, intervention_proba=0.2, seed=7)
    run_switch(a, 37)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = DEPSwitch(3, 0, intervention_length=4, intervention_proba=0.2, seed=123)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert [a.step(NUM_ENVS * i, 1) for i in range(37, 300)] == [b.step(NUM_ENVS * i, 1) for i in range(37, 300)]
    with pytest.raises(ValueError, match="mode"):
        DEPSwitch(2, 0).load_state_dict(a.state_dict())


def test_mode_4_pure_dep():
    switch = DEPSwitch(4, steps_before_batches=0)
    assert run_switch(switch, 30, episodes=lambda i: i) == [DEP] * 30
    assert switch.evaluation_uses_dep and not switch.trains_rl and switch.uses_dep


def test_switch_validation_and_config():
    with pytest.raises(ValueError, match="mode"):
        DEPSwitch(5, 0)
    cfg = DEPConfig(intervention_length=7, rl_length=11)
    switch = DEPSwitch.from_config(2, cfg, steps_before_batches=0, seed=0)
    assert (switch.intervention_length, switch.rl_length) == (7, 11)
