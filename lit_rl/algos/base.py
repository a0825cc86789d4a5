"""What every off-policy algorithm shares: the acting interface the RolloutDataModule calls,
the training step loop over replay batches, evaluation logging and target-network updates.

A new algorithm subclasses ``OffPolicyAlgorithm`` and writes ``explore``, ``act_greedy``,
``update`` and ``configure_optimizers``; nothing else. DEP exploration (``dep_mode``, ``dep``)
wraps any algorithm's ``explore`` here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass

import torch
from lightning.pytorch import LightningModule
from torch import nn

from lit_rl.data.datamodule import EpisodeResult, PhaseEnd, RolloutContext
from lit_rl.data.replay import Batch
from lit_rl.distributed import add_rank_states, average_gradients, gather_objects, rank_state, sum_across_ranks
from lit_rl.explore import DEPConfig, DEPController, DEPSwitch
from lit_rl.nets import ObservationNormalizer

log = logging.getLogger(__name__)


class PolyakTargets:
    """Polyak averaging ``target += tau * (online - target)`` over network pairs in one fused
    call. The parameter lists are collected once: moving a module between devices keeps its
    Parameter objects."""

    def __init__(self, *pairs: tuple[nn.Module, nn.Module]):
        self.targets = [p for target, _ in pairs for p in target.parameters()]
        self.onlines = [p for _, online in pairs for p in online.parameters()]

    @torch.no_grad()
    def update(self, tau: float) -> None:
        torch._foreach_lerp_(self.targets, self.onlines, tau)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (about 15% faster per update on CPU for small networks)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


class OffPolicyAlgorithm(LightningModule):
    """Base of DDPG, MPO and Dyna.

    Args:
        observation_dim: observation size; linked from the DataModule by the CLI.
        action_bounds: ``[low, high]`` of the agent's actions; linked from the DataModule.
        normalize_observations: keep a running mean/std of the observations acted on and feed
            the networks normalised observations (statistics updated after each training phase).
        dep_mode: DEP-RL switching mode (deprl's ``dep_factory`` number): 0 no DEP, 1
            InitExplore, 2 DetSwitch, 3 StochSwitch (the paper's), 4 PureDep (DEP only, nothing
            trained). See ``lit_rl.explore.DEPSwitch``. Modes 1-4 need muscle states, so a MuJoCo
            env with actuators.
        dep: the DEP block (deprl's key names, ``lit_rl.explore.DEPConfig``); its defaults when
            omitted.

    A non-finite loss (NaN or inf) is not backpropagated, so the optimizer step that follows it
    changes nothing; batches with one are counted (``train/nonfinite_batches``) and after
    ``max_nonfinite_batches`` of them in a row training stops with an error.
    """

    max_nonfinite_batches = 10

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        normalize_observations: bool = False,
        dep_mode: int = 0,
        dep: DEPConfig | None = None,
    ):
        super().__init__()
        if dep_mode not in range(5):
            raise ValueError(
                f"dep_mode must be 0-4 (none, InitExplore, DetSwitch, StochSwitch, PureDep), got {dep_mode}"
            )
        self.dep_mode = dep_mode
        self.dep_config = (dep or DEPConfig()) if dep_mode else None
        self.dep: DEPController | None = None  # built at the first step, when E and m are known
        self.dep_switch: DEPSwitch | None = None
        self._test_dep: DEPController | None = None  # mode 4 evaluation (one env)
        if observation_dim is None or action_bounds is None:
            raise ValueError(
                "observation_dim and action_bounds come from the RolloutDataModule (the CLI links them); "
                "pass them yourself when you build the module outside the CLI"
            )
        self.automatic_optimization = False
        self.observation_dim = observation_dim
        self.action_dim = len(action_bounds[0])
        self.register_buffer("action_low", torch.tensor(action_bounds[0], dtype=torch.float32))
        self.register_buffer("action_high", torch.tensor(action_bounds[1], dtype=torch.float32))
        self.normalizer = ObservationNormalizer(observation_dim) if normalize_observations else None
        self._test_results: list[EpisodeResult] = []
        self.nonfinite_batches = 0
        self._nonfinite_in_a_row = 0
        self._nonfinite_losses: list[str] = []  # in the current batch

    # ------------------------------------------------------------ acting (called by the data side)

    def explore(self, observations: torch.Tensor, env_steps: int, episode_starts: torch.Tensor) -> torch.Tensor:
        """Actions ``[E, A]`` to execute during training; ``episode_starts`` marks envs whose
        episode just began. Runs under ``torch.no_grad``."""
        raise NotImplementedError

    def act_greedy(self, observations: torch.Tensor) -> torch.Tensor:
        """Deterministic actions for evaluation."""
        raise NotImplementedError

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Inference: the deterministic policy (what ``python -m lit_rl export`` writes)."""
        return self.act_greedy(observations)

    @property
    def needs_muscle_states(self) -> bool:
        return self.dep_mode > 0

    @property
    def trains(self) -> bool:
        """False in DEP mode 4: nothing is stored or trained."""
        return self.dep_mode != 4

    def act(self, observations: torch.Tensor, context: RolloutContext) -> torch.Tensor:
        """Training actions ``[E, A]``: the algorithm's ``explore``, or DEP's actions as the
        switching mode decides. Whatever is returned is executed and stored in the replay."""
        if not self.dep_mode:
            return self.explore(observations, context.env_steps, context.episode_starts)
        if self.dep is None:
            self._build_dep(observations.shape[0], context.muscle_states.shape[1], context.steps_before_batches)
        if self.dep.device != self.device:  # restored before Lightning moved the module
            self.dep.to(self.device)
        decision = self.dep_switch.step(context.env_steps, context.episodes)
        dep_actions = self.dep.step(context.muscle_states) if decision.step_dep else None
        if decision.dep_acts:
            self.record_observations(observations)
            return dep_actions.to(observations.dtype)
        return self.explore(observations, context.env_steps, context.episode_starts)

    def act_for_evaluation(self, observations: torch.Tensor, muscle_states: torch.Tensor | None) -> torch.Tensor:
        """Test-episode actions: the deterministic policy, or DEP in mode 4 (its own controller
        for the test env, kept across evaluations but not checkpointed)."""
        if self.dep_mode != 4:
            return self.act_greedy(observations)
        if self._test_dep is None:
            self._test_dep = DEPController(1, muscle_states.shape[1], self.dep_config, device=self.device)
        return self._test_dep.step(muscle_states).to(observations.dtype)

    def _build_dep(self, num_envs: int, num_muscles: int, steps_before_batches: int) -> None:
        if num_muscles != self.action_dim:
            raise ValueError(
                f"DEP drives one action per muscle, but the env has {num_muscles} muscles and "
                f"{self.action_dim} action dimensions"
            )
        self.dep = DEPController(num_envs, num_muscles, self.dep_config, device=self.device)
        self.dep_switch = DEPSwitch.from_config(self.dep_mode, self.dep_config, steps_before_batches)
        self._dep_shape = (num_envs, num_muscles, steps_before_batches)

    def acting_state_dict(self) -> dict:
        """What acting on this process's envs built up: DEP's state and the observations recorded
        for the normaliser since its last update (subclasses add theirs). Saved for every rank
        under DDP (``checkpoint["acting"]``, see ``lit_rl.distributed``)."""
        state = {}
        if self.normalizer is not None:
            state["normalizer_pending"] = self.normalizer.pending_state_dict()
        if self.dep is not None:
            state["dep"] = {
                "shape": list(self._dep_shape),
                "controller": self.dep.state_dict(),
                "switch": self.dep_switch.state_dict(),
            }
        return state

    def load_acting_state_dict(self, state: dict) -> None:
        """Restore ``acting_state_dict`` but the normaliser's part, which ``on_load_checkpoint``
        puts into the weights that Lightning loads after it."""
        if "dep" in state:
            self._build_dep(*state["dep"]["shape"])
            self.dep.load_state_dict(state["dep"]["controller"])
            self.dep_switch.load_state_dict(state["dep"]["switch"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        hparams = checkpoint.get("hyper_parameters", {})
        for key, value in hparams.items():  # checkpoints hold plain types only (DEP, dynamics configs)
            if is_dataclass(value) and not isinstance(value, type):
                hparams[key] = asdict(value)
        checkpoint["acting"] = add_rank_states({}, self.acting_state_dict())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        acting = checkpoint.get("acting", {})
        if self._trainer is not None and self.trainer.state.fn == "fit":  # this rank's envs' part
            acting = rank_state(acting, self.global_rank, self.trainer.world_size, "this checkpoint")
        if "normalizer_pending" in acting:  # the weights hold rank 0's recorded sums: use this rank's
            for name, value in acting["normalizer_pending"].items():
                checkpoint["state_dict"][f"normalizer.{name}"] = value
        self.load_acting_state_dict(acting)

    def normalize(self, observations: torch.Tensor) -> torch.Tensor:
        return self.normalizer(observations) if self.normalizer is not None else observations

    def record_observations(self, observations: torch.Tensor) -> None:
        if self.normalizer is not None:
            self.normalizer.record(observations)

    @property
    def action_half_range(self) -> torch.Tensor:
        return (self.action_high - self.action_low) / 2

    def scale_action(self, unit: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> [low, high]."""
        return self.action_low + (unit + 1.0) * self.action_half_range

    # ------------------------------------------------------------ training

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient batch: step the optimizers, return detached metrics to log."""
        raise NotImplementedError

    def training_step(self, batch: Batch | PhaseEnd) -> None:
        if isinstance(batch, PhaseEnd):
            return
        metrics = self.guarded_update(batch)
        if batch.last_in_phase and self.normalizer is not None:
            self.normalizer.update(reduce=sum_across_ranks)
        if self._should_log:
            self.log_dict({**metrics, "train/nonfinite_batches": float(self.nonfinite_batches)})

    def guarded_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``update`` under the non-finite loss guard (see the class docstring)."""
        self._nonfinite_losses = []
        metrics = self.update(batch)
        self._count_nonfinite()
        return metrics

    def manual_backward(self, loss: torch.Tensor, *args, **kwargs) -> None:
        # The optimizers zero gradients with set_to_none, so a skipped backward makes the next
        # optimizer step skip every parameter: no update, no change to its moment estimates.
        if not torch.isfinite(loss).all():
            self._nonfinite_losses.append(f"{loss.item()}")
            return
        super().manual_backward(loss, *args, **kwargs)

    def _count_nonfinite(self) -> None:
        if not self._nonfinite_losses:
            self._nonfinite_in_a_row = 0
            return
        self.nonfinite_batches += 1
        self._nonfinite_in_a_row += 1
        if self._nonfinite_in_a_row == 1:
            log.warning("non-finite loss (%s): update skipped", ", ".join(self._nonfinite_losses))
        if self._nonfinite_in_a_row >= self.max_nonfinite_batches:
            datamodule = self.trainer.datamodule if self._trainer is not None else None
            where = f" at env step {datamodule.env_steps}" if datamodule is not None else ""
            raise RuntimeError(
                f"{self._nonfinite_in_a_row} batches in a row had a non-finite loss{where} "
                f"({', '.join(self._nonfinite_losses)}): training stopped instead of going on without "
                "updates. Look for huge or non-finite rewards or observations, or lower the learning rates."
            )

    @property
    def _should_log(self) -> bool:
        # Lightning only writes step metrics on logging steps; logging only then is the same, cheaper.
        return self.trainer._logger_connector.should_update_logs

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self._should_log:
            self.log_dict(self.trainer.datamodule.pop_train_metrics())

    def on_train_epoch_end(self) -> None:
        # Also at every epoch end: during a DEP-only warm-up and in mode 4 there are no gradient
        # batches, so the logging steps above never come. (Collective under DDP, like those; the
        # values are the same on every rank, sync_dist only keeps Lightning from warning.)
        metrics = {k: float(v) for k, v in self.trainer.datamodule.pop_train_metrics().items()}
        self.log_dict(metrics, sync_dist=True)
        if self.trainer.datamodule.done:
            self.trainer.should_stop = True

    def clip_and_step(self, optimizer, loss: torch.Tensor, max_norm: float | None, *also) -> None:
        """Backward ``loss``, average the gradients over ranks (DDP), clip ``optimizer``'s and step
        it and the optimizers in ``also`` (unclipped, e.g. MPO's duals). If the loss is non-finite
        on any rank, no rank changes anything."""
        optimizers = (optimizer, *also)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        nonfinite_before = len(self._nonfinite_losses)
        self.manual_backward(loss)
        backward_done = len(self._nonfinite_losses) == nonfinite_before
        params = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
        if not average_gradients(params, backward_done) and backward_done:
            self._nonfinite_losses.append("non-finite on another process")
        if max_norm is not None:
            self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")
        for opt in optimizers:
            opt.step()

    # ------------------------------------------------------------ evaluation

    def validation_step(self, result: EpisodeResult) -> None:
        self._test_results.append(result)

    def test_step(self, result: EpisodeResult) -> None:
        self._test_results.append(result)

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    def on_validation_epoch_end(self) -> None:
        results = [r for rank in gather_objects(self._test_results) for r in rank]  # every rank's episodes
        self._test_results = []
        if not results:
            return
        returns = torch.tensor([r.episode_return for r in results], dtype=torch.float64)
        lengths = torch.tensor([r.episode_length for r in results], dtype=torch.float64)
        metrics = {
            "test/episode_return": returns.mean(),
            "test/episode_return_std": returns.std(unbiased=False),
            "test/episode_return_min": returns.min(),
            "test/episode_return_max": returns.max(),
            "test/episode_length": lengths.mean(),
        }
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            metrics["env_steps"] = torch.tensor(float(datamodule.env_steps))
        # the same on every rank (gathered above); sync_dist only keeps Lightning from warning
        self.log_dict({k: v.float() for k, v in metrics.items()}, prog_bar=False, sync_dist=True)
