"""Differential Extrinsic Plasticity (Der and Martius 2015), the exploration controller of DEP-RL
(Schumacher et al. 2023), batched over environments acting in lockstep.

DEP maps a *muscle state* ``x`` (one sensor per actuator, computed by the environment worker
from actuator lengths and forces) to actions in ``[-1, 1]^m``. Its controller matrix is rebuilt
every step from the recent history of the smoothed sensor signal, which makes the body explore
coordinated, self-reinforcing movements instead of white noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

NORMALIZATIONS = ("independent", "independent_rows", "global", "none")
Q_NORM_SELECTORS = ("l2", "max", "none")


@dataclass
class DEPConfig:
    """DEP hyperparameters with deprl's names; defaults are deprl's default file
    (``param_files/default_agents.json``). The myoLeg configs use kappa 1169.7, tau 40,
    buffer_size 200, bias_rate 0.002, time_dist 5, s4avg 2.

    Args:
        kappa: gain. Scales the normalised controller matrix and the action pre-activation
            ``y = tanh(kappa * q + Cb)``.
        tau: number of past steps (at most) whose outer products build the controller matrix.
        buffer_size: length of the (smoothed input, action) history; must hold
            ``tau + time_dist + 1`` entries.
        bias_rate: rate of the bias update ``Cb -= clip(bias_rate * y_prev, -0.05, 0.05) + 0.001 * Cb``;
            a negative value disables the bias (``Cb = 0``).
        s4avg: smoothing constant of the input, ``x_smooth += (x - x_smooth) / s4avg``;
            ``<= 1`` disables smoothing.
        time_dist: delay (steps) between the velocity ``chi`` and the delayed velocity ``v``
            whose outer product forms the controller matrix.
        normalization: controller normalisation, with ``f[j] = kappa / (||C[j, :]|| + reg)`` the
            factor of row ``j``: ``independent`` (what deprl 0.3.2 computes, and so what every
            published DEP-RL run and tuned kappa used: column ``k`` is scaled by row ``k``'s factor,
            ``C_norm[j, k] = C[j, k] f[k]``), ``independent_rows`` (the evident intent of the
            formula: row ``j`` scaled by its own factor, so every row has norm ``kappa``),
            ``global`` (each env's whole matrix to Frobenius norm ``kappa``) or ``none``.
        q_norm_selector: normalisation of ``q = C_norm x_smooth`` per env: ``l2`` (divide by the
            Euclidean norm), ``max`` (divide by the largest magnitude) or ``none``.
        regularization: ``reg = 10 ** -regularization`` is added to every norm it divides by.
        with_learning: rebuild the controller matrix every step; without it DEP outputs ``tanh(Cb)``.
        intervention_length: vector steps one DEP intervention lasts (switching modes 2 and 3).
        intervention_proba: probability per vector step that an intervention starts (mode 3).
        test_episode_every: every this many finished episodes (counting from 0) the next training
            episode is "greedy": the RL policy acts and DEP is not stepped (mode 3).
        sensor_delay: accepted for config compatibility with deprl, which never reads it either;
            it has no effect.
        rl_length: vector steps the RL policy acts between two interventions in mode 2. No deprl
            config sets it (deprl would crash on mode 2); 50 gives DEP a tenth of the steps with
            the default ``intervention_length`` 5.
    """

    kappa: float = 10000.0
    tau: int = 80
    buffer_size: int = 600
    bias_rate: float = 2e-5
    s4avg: float = 6
    time_dist: int = 60
    normalization: Literal["independent", "independent_rows", "global", "none"] = "independent"
    q_norm_selector: Literal["l2", "max", "none"] = "l2"
    regularization: float = 32
    with_learning: bool = True
    intervention_length: int = 5
    intervention_proba: float = 0.0004
    test_episode_every: int = 3
    sensor_delay: int = 1
    rl_length: int = 50

    def __post_init__(self):
        if self.tau < 1 or self.time_dist < 0:
            raise ValueError(f"DEP needs tau >= 1 and time_dist >= 0, got tau={self.tau}, time_dist={self.time_dist}")
        if self.buffer_size < self.tau + self.time_dist + 1:
            raise ValueError(
                f"DEP buffer_size ({self.buffer_size}) must be >= tau + time_dist + 1 "
                f"({self.tau} + {self.time_dist} + 1 = {self.tau + self.time_dist + 1})"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"DEP normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if self.q_norm_selector not in Q_NORM_SELECTORS:
            raise ValueError(f"DEP q_norm_selector must be one of {Q_NORM_SELECTORS}, got {self.q_norm_selector!r}")
        if self.s4avg <= 0:
            raise ValueError(f"DEP s4avg must be > 0, got {self.s4avg}")
        if self.intervention_length < 1 or self.rl_length < 1 or self.test_episode_every < 1:
            raise ValueError(
                "DEP intervention_length, rl_length and test_episode_every must be >= 1, got "
                f"{self.intervention_length}, {self.rl_length}, {self.test_episode_every}"
            )
        if not 0.0 <= self.intervention_proba <= 1.0:
            raise ValueError(f"DEP intervention_proba must be in [0, 1], got {self.intervention_proba}")


class DEPController:
    """DEP for ``E`` environments at once, one independent controller per environment.

    Sensors and motors are paired (``m`` of each) and the model matrix is ``M = -I``, as in deprl,
    which never changes it; the computation uses that (``M G = -G``; ``R = C M^T = -C`` has the
    norms of ``C``). The state is not reset at episode ends: the history runs across resets, as in
    deprl.

    Per ``step(x)``:

    1. smoothing: ``x_smooth += (x - x_smooth) / s4avg`` (or ``x_smooth = x`` on the first step or
       when ``s4avg <= 1``);
    2. append ``x_smooth`` to the history (its action is filled in at step 4);
    3. when ``with_learning`` and the history holds more than ``2 + time_dist`` entries: rebuild
       ``C = sum_{s=2}^{min(t - time_dist, tau) - 1} (M chi_s) v_s^T`` from scratch with
       ``chi_s = x[-s] - x[-s-1]`` and ``v_s = x[-s-time_dist] - x[-s-1-time_dist]`` (``x`` the
       smoothed inputs of the history, index -1 the newest entry, which is never used), normalise
       it into ``C_norm`` per env, update the bias ``Cb`` from the action stored one entry back;
    4. ``q = C_norm x_smooth``, normalised by ``q_norm_selector``;
       ``y = clip(tanh(kappa * q + Cb), -1, 1)``, stored as the newest entry's action; ``t += 1``.
       Before learning starts ``C_norm = 0``, so ``y = tanh(Cb)``.

    Storage: the smoothed inputs only enter through their differences, so the history keeps, per
    entry, ``dx = x_smooth - previous x_smooth`` (the very float values deprl's differences give)
    and the action ``y``. ``dx_hist`` is ``[E, 2H, m]`` with ``H = buffer_size``: entry ``k`` is
    written to both slots ``k mod H`` and ``k mod H + H``, so any run of the newest ``H`` entries is
    one contiguous slice, and the sum over ``s`` is a single batched matmul ``[E, m, S] x [E, S, m]``
    over two views of it (no copy of the history, no Python loop). ``y_hist`` is a plain
    ``[E, H, m]`` ring. Nothing is allocated per step except small ``[E, m]`` temporaries, ``q``
    and the normalisation factors.

    Args:
        num_envs: number of environments ``E``.
        num_motors: number of actuators ``m`` (= number of sensors).
        config: hyperparameters; ``DEPConfig()`` (deprl's defaults) when None.
        device: device of the state tensors; ``step`` runs there.
        dtype: floating point type of the state tensors.
    """

    _TENSORS = ("_G", "C_norm", "Cb", "x_smooth", "dx_hist", "y_hist")

    def __init__(
        self,
        num_envs: int,
        num_motors: int,
        config: DEPConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        self.config = config if config is not None else DEPConfig()
        self.num_envs, self.num_motors = num_envs, num_motors
        self.reg = 10.0 ** (-self.config.regularization)
        self._init_state(torch.device(device) if device is not None else torch.device("cpu"), dtype)

    def _init_state(self, device: torch.device, dtype: torch.dtype) -> None:
        E, m, H = self.num_envs, self.num_motors, self.config.buffer_size
        kw = {"device": device, "dtype": dtype}
        self._G = torch.zeros(E, m, m, **kw)  # sum_s chi_s v_s^T, so C = M G = -G
        self.C_norm = torch.zeros(E, m, m, **kw)
        self.Cb = torch.zeros(E, m, **kw)
        self.x_smooth = torch.zeros(E, m, **kw)
        self.dx_hist = torch.zeros(E, 2 * H, m, **kw)
        self.y_hist = torch.zeros(E, H, m, **kw)
        self.t = 0

    def reset(self) -> None:
        """Forget everything (controller, bias, history, step counter)."""
        self._init_state(self.device, self.dtype)

    @property
    def device(self) -> torch.device:
        return self.C_norm.device

    @property
    def dtype(self) -> torch.dtype:
        return self.C_norm.dtype

    @property
    def M(self) -> torch.Tensor:
        """The model matrix ``-I`` of every env, ``[E, m, m]`` (a broadcast view)."""
        return -torch.eye(self.num_motors, device=self.device, dtype=self.dtype).expand_as(self.C_norm)

    @property
    def C(self) -> torch.Tensor:
        """The unnormalised controller matrix of the last learning step, ``[E, m, m]`` (a copy)."""
        return -self._G

    @property
    def history_length(self) -> int:
        """Number of entries in the history."""
        return min(self.t, self.config.buffer_size)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> DEPController:
        """Move (and optionally cast) the state in place; returns self."""
        for name in self._TENSORS:
            setattr(self, name, getattr(self, name).to(device=device, dtype=dtype))
        return self

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One DEP step for all environments.

        Args:
            x: muscle states ``[E, m]`` (moved to the controller's device and dtype).

        Returns:
            actions ``[E, m]`` in ``[-1, 1]``, a fresh tensor on the controller's device.
        """
        cfg, H = self.config, self.config.buffer_size
        x = x.to(device=self.device, dtype=self.dtype)
        if x.shape != self.x_smooth.shape:
            raise ValueError(f"DEP expects muscle states of shape {tuple(self.x_smooth.shape)}, got {tuple(x.shape)}")

        # 1. smoothing
        if cfg.s4avg > 1 and self.t > 0:
            x_new = self.x_smooth + (x - self.x_smooth) / cfg.s4avg
        else:
            x_new = x
        # 2. append; p is the ring slot of the newest entry. (The first entry's dx is never read.)
        p = self.t % H
        dx = x_new - self.x_smooth
        self.dx_hist[:, p] = dx
        self.dx_hist[:, p + H] = dx
        self.x_smooth.copy_(x_new)

        # 3. learning
        if cfg.with_learning and min(self.t + 1, H) > 2 + cfg.time_dist:
            self._learn(p)

        # 4. action. q = C_norm x is computed as the row vector x^T C_norm^T: on CPU, bmm is
        # ~8x faster with a [1, m] left operand than with a [m, 1] right one.
        q = torch.bmm(self.x_smooth.unsqueeze(1), self.C_norm.transpose(1, 2)).squeeze(1)
        if cfg.q_norm_selector == "l2":
            q = q / (torch.linalg.vector_norm(q, dim=-1, keepdim=True) + self.reg)
        elif cfg.q_norm_selector == "max":
            q = q / (q.abs().amax(dim=-1, keepdim=True) + self.reg)
        y = torch.tanh(torch.add(self.Cb, q, alpha=cfg.kappa)).clamp_(-1.0, 1.0)
        self.y_hist[:, p] = y
        self.t += 1
        return y

    def _learn(self, p: int) -> None:
        cfg, H, td = self.config, self.config.buffer_size, self.config.time_dist
        # s = 2 .. U-1: chi_s is dx of entry -s, v_s is dx of entry -(s + td). Entry -k (k >= 1,
        # -1 the newest) sits at position p + H - k + 1 of dx_hist, so both runs are slices,
        # oldest first: chi over entries -(U-1) .. -2, v over the same run td entries earlier.
        U = min(self.t - td, cfg.tau)
        S = U - 2
        if S > 0:
            end = p + H  # exclusive end: the position of entry -1
            chi = self.dx_hist[:, end - S : end]
            v = self.dx_hist[:, end - S - td : end - td]
            torch.bmm(chi.transpose(1, 2), v, out=self._G)
        else:
            self._G.zero_()

        # C = -G; the norms of R = C M^T = -C are those of G, and C * f = G * (-f) exactly
        if cfg.normalization in ("independent", "independent_rows"):
            factor = torch.linalg.vector_norm(self._G, dim=-1, keepdim=True).add_(self.reg).reciprocal_()
            if cfg.normalization == "independent":  # deprl's einsum("ijk,ik->ijk"): row k's factor on column k
                factor = factor.transpose(1, 2)
            torch.mul(self._G, factor.mul_(-cfg.kappa), out=self.C_norm)
        elif cfg.normalization == "global":
            # per env; deprl takes one norm over the whole [E, m, m] tensor, coupling the envs
            factor = torch.linalg.vector_norm(self._G, dim=(-2, -1), keepdim=True).add_(self.reg).reciprocal_()
            torch.mul(self._G, factor.mul_(-cfg.kappa), out=self.C_norm)
        else:
            torch.neg(self._G, out=self.C_norm)

        if cfg.bias_rate >= 0:
            y_prev = self.y_hist[:, (p - 1) % H]  # the action stored one entry back
            self.Cb.sub_(torch.clamp(y_prev * cfg.bias_rate, -0.05, 0.05) + 0.001 * self.Cb)
        else:
            self.Cb.zero_()

    def state_dict(self) -> dict:
        """Tensors and Python scalars only (loadable with ``torch.load(weights_only=True)``).
        The history is stored once, ``[E, buffer_size, m]`` (both halves of ``dx_hist`` are equal);
        ``C`` is not stored: it is rebuilt from the history before it is next used."""
        H = self.config.buffer_size
        return {
            "t": self.t,
            "C_norm": self.C_norm.clone(),
            "Cb": self.Cb.clone(),
            "x_smooth": self.x_smooth.clone(),
            "dx_hist": self.dx_hist[:, :H].clone(),
            "y_hist": self.y_hist.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict`` (values are copied into this controller's device and dtype)."""
        H = self.config.buffer_size
        targets = {
            "C_norm": self.C_norm,
            "Cb": self.Cb,
            "x_smooth": self.x_smooth,
            "dx_hist": self.dx_hist[:, :H],
            "y_hist": self.y_hist,
        }
        for name, mine in targets.items():
            if tuple(state[name].shape) != tuple(mine.shape):
                raise ValueError(
                    f"DEP state {name!r} has shape {tuple(state[name].shape)}, expected {tuple(mine.shape)} "
                    "(num_envs, buffer_size, num_motors must match)"
                )
        for name, mine in targets.items():
            mine.copy_(state[name])
        self.dx_hist[:, H:] = self.dx_hist[:, :H]
        self._G.zero_()
        self.t = int(state["t"])
