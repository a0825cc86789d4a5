"""The acting layer: how actions are chosen in the training and test envs around an
algorithm's policy: DEP (as the switching mode decides), the uniform random warm-up, action
noise and epsilon-greedy exploration, and DEP in mode 4's test episodes. The data side's
collector and evaluator hold an ``Actor``; the algorithm only exposes its policy
(``lit_rl.contract.Policy``) and learns.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import torch

from lit_rl.acting.dep import DEPConfig, DEPController
from lit_rl.acting.noise import NOISES
from lit_rl.acting.switching import DEPSwitch
from lit_rl.contract import Policy


def piecewise_linear(points: list[tuple[float, float]], x: float) -> float:
    """Linear interpolation through ``(x, y)`` points sorted by x; constant beyond the ends."""
    xs = [p[0] for p in points]
    i = bisect.bisect_right(xs, x)
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


@dataclass
class RolloutContext:
    """What the collector knows when it asks the ``Actor`` for actions (DEP reads the muscle
    states, the episode count and the warm-up)."""

    env_steps: int  # transitions collected so far, summed over envs
    episodes: int  # training episodes finished so far
    episode_starts: torch.Tensor  # [E] bool: the env's episode just began
    muscle_states: torch.Tensor | None  # [E, m] when the module needs them (DEP)
    steps_before_batches: int  # the replay's warm-up: DEP modes 1-3 explore until then


@dataclass(frozen=True)
class ActingConfig:
    """How an algorithm acts: its exploration keys (``model.init_args``, documented in
    ``lit_rl.algos.OffPolicyAlgorithm``), checked here.

    ``random_prob`` is the epsilon-greedy schedule: ``[(env_steps, probability), ...]``, linear
    in between (Dyna's ``init_random_prob`` and ``random_prob_schedule``; 0 for the others).

    ``noise_enters`` is where ``exploration_noise`` goes, as the algorithm class declares it
    (``OffPolicyAlgorithm.noise_enters``): ``action``, added to ``explore``'s actions (a
    deterministic policy: any noise), or ``draw``, handed to ``explore`` as the standard-normal
    draw its sampling uses (a stochastic policy: pink only); None (undeclared): Gaussian and
    Ornstein-Uhlenbeck noise are added, pink is refused. ``learner`` names the algorithm in the
    refusals."""

    dep_mode: int = 0
    dep: DEPConfig | None = None
    random_steps: int = 0
    exploration_noise: str | None = None
    noise_std: float = 0.1
    ou_theta: float = 0.15
    ou_dt: float = 0.01
    random_prob: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 0.0)])
    pink_beta: float = 1.0
    pink_seq_len: int = 1000
    noise_enters: str | None = "action"
    learner: str = "this algorithm"

    def __post_init__(self):
        if self.dep_mode not in range(5):
            raise ValueError(
                f"dep_mode must be 0-4 (none, InitExplore, DetSwitch, StochSwitch, PureDep), got {self.dep_mode}"
            )
        noise, learner = self.exploration_noise, self.learner
        if noise is not None and noise not in NOISES:
            raise ValueError(f"exploration_noise must be one of {sorted(NOISES)} or null, got {noise!r}")
        if self.noise_enters not in ("action", "draw", None):
            raise ValueError(f"noise_enters must be 'action', 'draw' or None, got {self.noise_enters!r}")
        if noise == "pink" and self.noise_enters is None:
            raise ValueError(
                f"exploration_noise: pink: {learner} does not say how its policy takes noise; set its class attribute "
                "noise_enters to 'action' (deterministic: added to explore's actions) or 'draw' (stochastic: "
                "explore(..., noise=) samples with it)"
            )
        if self.noise_enters == "draw" and noise not in (None, "pink"):
            raise ValueError(
                f"exploration_noise: {noise}: {learner} samples its policy, so its noise is its own draw: "
                "exploration_noise may be pink (its standard-normal draw made pink) or null"
            )
        if noise == "pink":  # the process checks its options
            NOISES["pink"](self.noise_std, torch.ones(1), self.pink_beta, self.pink_seq_len)
        if self.dep_mode and self.dep is None:
            object.__setattr__(self, "dep", DEPConfig())

    @property
    def noise_is_draw(self) -> bool:
        """The noise is handed to the policy's ``explore`` (a stochastic policy), not added."""
        return self.exploration_noise is not None and self.noise_enters == "draw"

    @property
    def needs_muscle_states(self) -> bool:
        """The training envs must report muscle states (DEP)."""
        return self.dep_mode > 0

    @property
    def trains(self) -> bool:
        """False in DEP mode 4: nothing is stored or trained."""
        return self.dep_mode != 4

    @property
    def evaluates_with_muscle_states(self) -> bool:
        """DEP mode 4 is evaluated with DEP, which acts on muscle states."""
        return self.dep_mode == 4

    def epsilon(self, env_steps: int) -> float:
        """The probability that an env takes a uniform random action instead of the policy's."""
        return piecewise_linear(self.random_prob, env_steps)


class Actor:
    """Chooses the actions of one process's envs around ``policy``. Its state (DEP's, the action
    noise's) is this rank's and is checkpointed with the envs it acts in (``state_dict``).
    The test episodes' DEP controller (mode 4) is kept across evaluations, not checkpointed.

    ``dep_action_dims``: on a body that mixes muscles with other actuators (motors, a prosthesis),
    the action dims DEP's outputs go to, one per muscle state (``lit_rl.envs.DEPLayout``); in
    DEP's steps the other dims get the actions the policy side chooses (``explore``, with the
    warm-up, noise and epsilon-greedy exploration around it), and in mode 4's test episodes the
    greedy policy's. None: DEP drives every action dim (a body of muscles only; DEP's steps then
    never call the policy, exactly as before)."""

    def __init__(self, policy: Policy, dep_action_dims: list[int] | tuple[int, ...] | None = None):
        self.policy = policy
        self.dep_action_dims = None if dep_action_dims is None else torch.as_tensor(dep_action_dims, dtype=torch.long)
        self.config: ActingConfig = policy.acting
        config = self.config
        self.noise = None
        if config.exploration_noise is not None:
            half_range = (policy.action_high - policy.action_low) / 2
            noise_kwargs = {
                "gaussian": {},
                "ornstein_uhlenbeck": {"theta": config.ou_theta, "dt": config.ou_dt},
                "pink": {"beta": config.pink_beta, "seq_len": config.pink_seq_len},
            }[config.exploration_noise]
            self.noise = NOISES[config.exploration_noise](config.noise_std, half_range, **noise_kwargs)
        self.dep: DEPController | None = None  # built at the first step, when E and m are known
        self.dep_switch: DEPSwitch | None = None
        self._dep_shape: tuple[int, int, int] | None = None
        self._test_dep: DEPController | None = None

    @property
    def device(self) -> torch.device:
        return self.policy.device

    @property
    def needs_muscle_states(self) -> bool:
        return self.config.needs_muscle_states

    @property
    def trains(self) -> bool:
        return self.config.trains

    @property
    def evaluates_with_muscle_states(self) -> bool:
        return self.config.evaluates_with_muscle_states

    def act(self, observations: torch.Tensor, context: RolloutContext) -> torch.Tensor:
        """Training actions ``[E, A]``: DEP's, as the switching mode decides (on a mixed body, DEP's
        on the muscles' dims and the policy side's on the others), or uniform random ones during
        the warm-up, or the policy's ``explore`` with the action noise and epsilon-greedy
        exploration. Whatever is returned is executed and stored in the replay. The observations
        are recorded for the policy's normaliser first."""
        policy, config = self.policy, self.config
        if policy.normalizer is not None:
            policy.normalizer.record(observations)
        if config.dep_mode:
            if self.dep is None:
                self._build_dep(observations.shape[0], context.muscle_states.shape[1], context.steps_before_batches)
            if self.dep.device != self.device:  # restored before Lightning moved the module
                self.dep.to(self.device)
            decision = self.dep_switch.step(context.env_steps, context.episodes)
            dep_actions = self.dep.step(context.muscle_states) if decision.step_dep else None
            if decision.dep_acts:
                if self.dep_action_dims is None:
                    if self.noise is not None:  # the policy does not act: a pink process remembers episode starts
                        self.noise.skip(context.episode_starts)
                    return dep_actions.to(observations.dtype)
                return self._with_dep(self._policy_side(observations, context), dep_actions)
        return self._policy_side(observations, context)

    def _with_dep(self, actions: torch.Tensor, dep_actions: torch.Tensor) -> torch.Tensor:
        """``actions`` with DEP's actions in the muscles' dims (``dep_action_dims``)."""
        dims = self.dep_action_dims.to(actions.device)
        actions[:, dims] = dep_actions.to(device=actions.device, dtype=actions.dtype)
        return actions

    def _policy_side(self, observations: torch.Tensor, context: RolloutContext) -> torch.Tensor:
        """The actions when DEP does not act: the warm-up's, or ``explore``'s with noise (added
        to its actions, or handed to it as its draw) and epsilon-greedy exploration."""
        policy, config = self.policy, self.config
        if context.env_steps < config.random_steps:
            return self.uniform_actions(observations.shape[0])
        if config.noise_is_draw:  # a stochastic policy samples with the noise as its standard-normal draw
            noise = self.noise.draw(context.episode_starts).to(observations.device)
            actions = policy.explore(observations, context.env_steps, context.episode_starts, noise=noise)
        else:
            actions = policy.explore(observations, context.env_steps, context.episode_starts)
            if self.noise is not None:
                noisy = self.noise(actions, context.episode_starts)
                actions = torch.clamp(noisy, policy.action_low, policy.action_high)
        p = config.epsilon(context.env_steps)
        if p > 0:
            uniform = self.uniform_actions(actions.shape[0])  # drawn before the coin flips, as always
            take_random = torch.rand(actions.shape[0], 1, device=actions.device) < p
            actions = torch.where(take_random, uniform, actions)
        return actions

    def uniform_actions(self, count: int) -> torch.Tensor:
        """``count`` actions uniform in the policy's action bounds."""
        low, high = self.policy.action_low, self.policy.action_high
        return low + torch.rand(count, low.shape[0], device=low.device) * (high - low)

    def act_for_evaluation(self, observations: torch.Tensor, muscle_states: torch.Tensor | None) -> torch.Tensor:
        """Test-episode actions: the deterministic policy, or DEP in mode 4."""
        if self.config.dep_mode != 4:
            return self.policy.act_greedy(observations)
        if self._test_dep is None:
            self._test_dep = DEPController(1, muscle_states.shape[1], self.config.dep, device=self.device)
        dep_actions = self._test_dep.step(muscle_states)
        if self.dep_action_dims is None:
            return dep_actions.to(observations.dtype)
        return self._with_dep(self.policy.act_greedy(observations), dep_actions)

    def _build_dep(self, num_envs: int, num_muscles: int, steps_before_batches: int) -> None:
        action_dim = self.policy.action_low.shape[0]
        driven = action_dim if self.dep_action_dims is None else len(self.dep_action_dims)
        if num_muscles != driven:
            of = "" if self.dep_action_dims is None else f" (of its {action_dim})"
            raise ValueError(
                f"DEP drives one action per muscle, but the env has {num_muscles} muscles and "
                f"{driven} action dimensions for them{of}"
            )
        self.dep = DEPController(num_envs, num_muscles, self.config.dep, device=self.device)
        self.dep_switch = DEPSwitch.from_config(self.config.dep_mode, self.config.dep, steps_before_batches)
        self._dep_shape = (num_envs, num_muscles, steps_before_batches)

    def state_dict(self) -> dict:
        """DEP's state and the action noise's (keys as under ``checkpoint["acting"]`` before)."""
        state = {}
        if self.noise is not None:
            state["exploration_noise"] = self.noise.state_dict()
        if self.dep is not None:
            state["dep"] = {
                "shape": list(self._dep_shape),
                "controller": self.dep.state_dict(),
                "switch": self.dep_switch.state_dict(),
            }
        return state

    def load_state_dict(self, state: dict) -> None:
        if "exploration_noise" in state and self.noise is not None:
            self.noise.load_state_dict(state["exploration_noise"])
        if "dep" in state:
            self._build_dep(*state["dep"]["shape"])
            self.dep.load_state_dict(state["dep"]["controller"])
            self.dep_switch.load_state_dict(state["dep"]["switch"])
