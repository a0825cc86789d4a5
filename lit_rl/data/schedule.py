"""When things happen, in environment transitions summed over envs (and DDP ranks): training
phases (none before ``steps_before_batches``), epoch ends (an evaluation follows each),
periodic saves and the end of training. ``Trigger`` (``lit_rl.contract``) is the periodic
primitive, also behind Dyna's flow. (The two acting warm-ups are the acting layer's:
``random_steps`` in ``lit_rl.acting.Actor.act``, and DEP's InitExplore until
``steps_before_batches`` in ``lit_rl.acting.DEPSwitch``.)"""

from __future__ import annotations

from lit_rl.contract import Trigger


def next_multiple(steps: int, every: int) -> int:
    """The first multiple of ``every`` after ``steps``."""
    return (steps // every + 1) * every


class Schedule:
    """The training loop's clock (deprl's ``Trainer`` and ``Buffer`` arguments).

    - **phases**: once ``steps_before_batches`` transitions were collected, a training phase of
      ``batch_iterations`` gradient batches follows every ``steps_between_batches`` new ones
      (counted after or, as deprl, before the latest vector step: ``ReplayConfig.phase_clock``);
    - **epochs** end at multiples of ``epoch_steps`` (and at ``total_steps``), each followed by an
      evaluation; a run resumed at an epoch's last cut ends that epoch first;
    - **saves** at multiples of ``save_steps``.

    ``state_dict`` holds where the phase and epoch counters stand (keys as in earlier checkpoints).
    """

    def __init__(
        self,
        total_steps: int,
        epoch_steps: int,
        save_steps: int,
        steps_before_batches: int,
        steps_between_batches: int,
        batch_iterations: int,
        phase_clock: str = "after_step",
    ):
        self.total_steps, self.epoch_steps, self.save_steps = total_steps, epoch_steps, save_steps
        self.phase_clock = phase_clock
        self.steps_before_batches = steps_before_batches
        self.batch_iterations = batch_iterations
        self.phases = Trigger(steps_between_batches, steps_before_batches, last=0)
        self.pending_batches = 0  # batches of the running phase not yet yielded
        self.epoch_end: int | None = None  # env step at which the running epoch ends
        # "phase" or "epoch": the PhaseEnd of that kind was yielded and Lightning has fetched it
        # ahead but not trained on it yet; a checkpoint taken now resumes by yielding it again.
        self.fetched_end: str | None = None

    def done(self, env_steps: int) -> bool:
        return env_steps >= self.total_steps

    def start_epoch(self, env_steps: int) -> int:
        """The env step at which the epoch starting (or resumed) at ``env_steps`` ends."""
        if self.epoch_end is None or self.epoch_end < env_steps:
            self.epoch_end = min(self.total_steps, next_multiple(env_steps, self.epoch_steps))
        return self.epoch_end

    def end_epoch(self) -> None:
        self.epoch_end = None

    def phase_due(self, env_steps: int, step_size: int) -> bool:
        """Whether a training phase starts after the transitions up to ``env_steps`` (the last
        vector step brought ``step_size`` of them); if so its batches become pending."""
        clock = env_steps - step_size if self.phase_clock == "before_step" else env_steps
        if not self.phases.due(clock):
            return False
        self.pending_batches = self.batch_iterations
        return True

    def take_batch(self) -> bool:
        """Count one batch of the running phase; True for its last one."""
        self.pending_batches -= 1
        return self.pending_batches == 0

    def first_phase(self, step_size: int) -> int:
        """The env step at which the first training phase starts, counting from 0 in vector steps
        of ``step_size`` transitions (the phase clock is checked after each)."""
        threshold = max(self.steps_before_batches, self.phases.every)  # Trigger: >= start, >= every after 0
        clock = -(-threshold // step_size) * step_size
        return clock + step_size if self.phase_clock == "before_step" else clock

    def last_step(self, step_size: int) -> int:
        """The env step at which the run ends: collection finishes the vector step that reaches
        ``total_steps``."""
        return -(-self.total_steps // step_size) * step_size

    def next_save(self, env_steps: int) -> int:
        return next_multiple(env_steps, self.save_steps)

    def state_dict(self) -> dict:
        return {
            "last_phase_steps": self.phases.last,
            "pending_batches": self.pending_batches,
            "epoch_end": self.epoch_end,
            "fetched_end": self.fetched_end,
        }

    def load_state_dict(self, state: dict) -> None:
        self.phases.last = state["last_phase_steps"]
        self.pending_batches = state["pending_batches"]
        self.epoch_end = state.get("epoch_end")
        self.fetched_end = state.get("fetched_end")
