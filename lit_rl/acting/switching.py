"""Which controller acts, DEP or the RL policy: the switching heuristics of DEP-RL
(deprl's ``dep_factory``; the integer is the mode)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from lit_rl.acting.dep import DEPConfig

MODES = {0: "none", 1: "InitExplore", 2: "DetSwitch", 3: "StochSwitch", 4: "PureDep"}


class SwitchDecision(NamedTuple):
    """What to do in one vector step.

    Attributes:
        dep_acts: DEP's actions are executed (and are what goes into the replay buffer);
            otherwise the RL policy's exploration actions are.
        step_dep: DEP is stepped on the muscle states (always when ``dep_acts``; in modes 2 and 3
            also while RL acts, so that DEP keeps learning).
    """

    dep_acts: bool
    step_dep: bool


RL = SwitchDecision(dep_acts=False, step_dep=False)
RL_DEP_LEARNS = SwitchDecision(dep_acts=False, step_dep=True)
DEP = SwitchDecision(dep_acts=True, step_dep=True)


class DEPSwitch:
    """Decides, once per vector step (one decision for all envs), whether DEP or the RL policy acts.

    The "RL phase" is ``env_steps > steps_before_batches`` (``env_steps``: transitions collected
    so far, summed over envs, before this vector step; as in deprl). Before it, modes 1-3 let DEP
    act ("InitExplore").

    Modes:

    - **0 none**: the RL agent acts from step 0; DEP is never used (the caller need not build it).
    - **1 InitExplore**: DEP acts until the RL phase, RL afterwards (DEP is no longer stepped).
    - **2 DetSwitch**: InitExplore, then in the RL phase a fixed cycle of exactly ``rl_length``
      vector steps where RL acts while DEP is stepped (it keeps learning), followed by exactly
      ``intervention_length`` vector steps where DEP acts. Greedy episodes are not considered, as
      in deprl. (deprl's modulo counters give ``rl_length - 1`` and ``intervention_length - 1``
      steps; the spec says "about", we make the lengths exact.)
    - **3 StochSwitch** (the paper's): InitExplore, then in the RL phase:
      during a greedy episode RL acts and DEP is not stepped (a running intervention is paused);
      otherwise, while an intervention runs, DEP acts; otherwise RL acts, DEP is stepped for
      learning only, and a coin with probability ``intervention_proba`` (one coin for all envs)
      decides whether an intervention starts: DEP then acts for exactly the next
      ``intervention_length`` non-greedy vector steps. No intervention runs at the start of the
      RL phase ("the counter starts long ago", so the policy acts first).
    - **4 PureDep**: DEP always acts; nothing should be stored or trained (``trains_rl`` is
      False) and evaluation uses DEP too.

    A training episode is greedy when ``finished_episodes % test_episode_every == 0``
    (``finished_episodes``: training episodes finished so far, over all envs), recomputed at every
    vector step. Evaluation (test episodes) uses the RL policy's greedy action in modes 0-3 and
    DEP in mode 4 (``evaluation_uses_dep``).

    The coin of mode 3 comes from a private CPU ``torch.Generator`` (one ``torch.rand`` per free
    RL-phase vector step), so other random draws do not shift it; its state is part of
    ``state_dict``.

    Args:
        mode: 0-4, see above.
        steps_before_batches: the replay's warm-up, in transitions summed over envs; the RL phase
            starts after it.
        intervention_length: vector steps one DEP intervention lasts (modes 2 and 3).
        intervention_proba: probability per vector step that an intervention starts (mode 3).
        test_episode_every: period of the greedy episodes (mode 3).
        rl_length: vector steps RL acts between two interventions (mode 2).
        seed: seed of the coin's generator; None draws one from the global torch RNG (so
            ``seed_everything`` makes runs reproducible).
    """

    def __init__(
        self,
        mode: int,
        steps_before_batches: int,
        intervention_length: int = 5,
        intervention_proba: float = 0.0004,
        test_episode_every: int = 3,
        rl_length: int = 50,
        seed: int | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"DEP switching mode must be one of {sorted(MODES)} ({MODES}), got {mode!r}")
        if intervention_length < 1 or rl_length < 1 or test_episode_every < 1:
            raise ValueError(
                "intervention_length, rl_length and test_episode_every must be >= 1, got "
                f"{intervention_length}, {rl_length}, {test_episode_every}"
            )
        if not 0.0 <= intervention_proba <= 1.0:
            raise ValueError(f"intervention_proba must be in [0, 1], got {intervention_proba}")
        self.mode = mode
        self.steps_before_batches = steps_before_batches
        self.intervention_length = intervention_length
        self.intervention_proba = intervention_proba
        self.test_episode_every = test_episode_every
        self.rl_length = rl_length
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        self.generator = torch.Generator().manual_seed(seed)
        self.cycle_step = 0  # mode 2: RL-phase vector steps so far
        self.intervention_left = 0  # mode 3: DEP steps left in the running intervention
        self.interventions = 0  # interventions started so far (modes 2 and 3), for logging

    @classmethod
    def from_config(cls, mode: int, config: DEPConfig, steps_before_batches: int, seed: int | None = None) -> DEPSwitch:
        """Build from a ``DEPConfig`` (which holds the switching keys under deprl's names)."""
        return cls(
            mode,
            steps_before_batches,
            intervention_length=config.intervention_length,
            intervention_proba=config.intervention_proba,
            test_episode_every=config.test_episode_every,
            rl_length=config.rl_length,
            seed=seed,
        )

    @property
    def uses_dep(self) -> bool:
        """Whether a DEP controller is needed at all."""
        return self.mode != 0

    @property
    def trains_rl(self) -> bool:
        """Whether transitions are stored and the RL agent trained (all modes but PureDep)."""
        return self.mode != 4

    @property
    def evaluation_uses_dep(self) -> bool:
        """Whether test episodes are run with DEP (PureDep) rather than the RL policy's mean."""
        return self.mode == 4

    def step(self, env_steps: int, finished_episodes: int) -> SwitchDecision:
        """Decide for one vector step (call exactly once per vector step).

        Args:
            env_steps: transitions collected so far, summed over envs, before this vector step.
            finished_episodes: training episodes finished so far, over all envs.
        """
        if self.mode == 0:
            return RL
        if self.mode == 4:
            return DEP
        if env_steps <= self.steps_before_batches:
            return DEP  # InitExplore
        if self.mode == 1:
            return RL
        if self.mode == 2:
            position = self.cycle_step % (self.rl_length + self.intervention_length)
            self.cycle_step += 1
            if position == self.rl_length:
                self.interventions += 1
            return RL_DEP_LEARNS if position < self.rl_length else DEP
        # mode 3
        if finished_episodes % self.test_episode_every == 0:
            return RL  # greedy episode: DEP is neither acting nor learning
        if self.intervention_left > 0:
            self.intervention_left -= 1
            return DEP
        if torch.rand((), generator=self.generator).item() < self.intervention_proba:
            # RL still acts on this step (as in deprl); DEP takes over from the next one
            self.intervention_left = self.intervention_length
            self.interventions += 1
        return RL_DEP_LEARNS

    def state_dict(self) -> dict:
        """Plain Python scalars and the generator state (a uint8 tensor)."""
        return {
            "mode": self.mode,
            "cycle_step": self.cycle_step,
            "intervention_left": self.intervention_left,
            "interventions": self.interventions,
            "rng_state": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["mode"] != self.mode:
            raise ValueError(f"DEP switching state is for mode {state['mode']}, this switch runs mode {self.mode}")
        self.cycle_step = int(state["cycle_step"])
        self.intervention_left = int(state["intervention_left"])
        self.interventions = int(state["interventions"])
        self.generator.set_state(state["rng_state"])
