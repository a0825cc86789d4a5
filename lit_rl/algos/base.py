"""What every off-policy algorithm shares: the policy interface the acting layer
(``lit_rl.acting.Actor``) acts through, the training step over replay batches, the non-finite
guard, logging, evaluation logging and target-network updates.

A new algorithm subclasses ``OffPolicyAlgorithm`` in a file of its own in ``lit_rl/algos/``
(it is registered and importable as ``lit_rl.algos.<Name>`` from then on) and writes
``explore``, ``act_greedy``, ``update`` and ``configure_optimizers``. The rules the base class
enforces so that nothing fails silently are in docs/extending.md, "Adding an algorithm".
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from typing import ClassVar, Literal

import torch
from lightning.pytorch import LightningModule
from torch import nn

from lit_rl.acting import ActingConfig, DEPConfig
from lit_rl.contract import Batch, DataView, EpisodeResult, PhaseEnd
from lit_rl.nets import ObservationNormalizer
from lit_rl.training.distributed import add_rank_states, average_optimizer_gradients, gather_objects, sum_across_ranks
from lit_rl.training.lightning_internals import attached_trainer, should_log

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[OffPolicyAlgorithm]] = {}  # "module.Class" of every subclass, in definition order


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
    """Base of every off-policy algorithm (DDPG, MPO, Dyna, ...).

    Args:
        observation_dim: observation size; linked from the DataModule by the CLI.
        action_bounds: ``[low, high]`` of the agent's actions; linked from the DataModule.
        normalize_observations: keep a running mean/std of the observations acted on and feed
            the networks normalised observations (statistics updated after each training phase):
            ``true`` for actor and critic, ``critic`` for the critic only, the actor (acting,
            evaluation, export) on raw observations, as deprl (tonic's ``Actor.initialize``
            hands the normaliser to its encoder's ``action_space`` slot), ``false`` for none.
        normalizer_statistics: ``exact`` (float64) or ``float32``, deprl's running sums (see
            ``lit_rl.nets.ObservationNormalizer``).
        dep_mode: DEP-RL switching mode (deprl's ``dep_factory`` number): 0 no DEP, 1
            InitExplore, 2 DetSwitch, 3 StochSwitch (the paper's), 4 PureDep (DEP only, nothing
            trained). See ``lit_rl.acting.DEPSwitch``. Modes 1-4 need muscle states, so a MuJoCo
            env with actuators.
        dep: the DEP block (deprl's key names, ``lit_rl.acting.DEPConfig``); its defaults when
            omitted.
        random_steps: act uniformly at random until this many env transitions were collected.
        exploration_noise: a deterministic policy's noise, added to ``explore``'s actions (then
            clipped to the bounds): ``gaussian``, ``ornstein_uhlenbeck`` or ``pink``; a stochastic
            policy's (SAC, CrossQ, MPO): ``pink``, the standard-normal draw its sampling uses
            (``a = mean + std * pink``, squashed as usual); None: no noise (a stochastic policy
            explores with its own Gaussian draw). Where the noise goes is the class's
            ``noise_enters``. docs/exploration.md.
        noise_std: additive noise's scale as a fraction of the action half-range.
        ou_theta, ou_dt: Ornstein-Uhlenbeck parameters.
        pink_beta: the exponent of the colored noise's power spectrum ``1 / f^beta`` (1 pink, 0
            white, 2 red); pink-noise-rl's ``ColoredNoiseProcess``, one per env.
        pink_seq_len: steps of each env's noise sequence (then the next one starts; an episode
            start starts one too); Eberhard et al. use the episode length.

    Subclasses choose their own defaults for the exploration arguments by declaring them in
    their ``__init__`` and passing them on (see ``DDPG``). Every ``__init__`` argument of every
    class in the hierarchy is saved as a hyperparameter (``self.hparams``), which is what
    ``validate``, ``test`` and ``export`` rebuild the module from.

    A non-finite loss (NaN or inf) is not backpropagated, so the optimizer step that follows it
    changes nothing; batches with one are counted (``train/nonfinite_batches``) and after
    ``max_nonfinite_batches`` of them in a row training stops with an error.
    """

    max_nonfinite_batches = 10
    # Where exploration_noise goes (lit_rl.acting.ActingConfig): "action", added to explore's
    # actions (a deterministic policy), or "draw", handed to explore as the standard-normal draw it
    # samples with (a stochastic policy); None (not declared): Gaussian and Ornstein-Uhlenbeck
    # noise are added, pink noise is refused.
    noise_enters: ClassVar[Literal["action", "draw"] | None] = None
    # deprl/tonic agent classes ``python -m lit_rl convert`` turns into this algorithm, each with
    # the names of its constructor's positional parameters
    tonic_agents: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ALGORITHMS[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def __init__(
        self,
        observation_dim: int | None = None,
        action_bounds: list[list[float]] | None = None,
        normalize_observations: bool | Literal["critic"] = False,
        dep_mode: int = 0,
        dep: DEPConfig | None = None,
        random_steps: int = 0,
        exploration_noise: str | None = None,
        noise_std: float = 0.1,
        ou_theta: float = 0.15,
        ou_dt: float = 0.01,
        normalizer_statistics: Literal["exact", "float32"] = "exact",
        pink_beta: float = 1.0,
        pink_seq_len: int = 1000,
    ):
        super().__init__()
        self.save_hyperparameters()  # Lightning collects the subclasses' __init__ arguments too
        # how the acting layer acts around this policy (lit_rl.acting.Actor); checks the keys
        self.acting = ActingConfig(
            dep_mode, dep if dep_mode else None, random_steps, exploration_noise, noise_std, ou_theta, ou_dt,
            pink_beta=pink_beta, pink_seq_len=pink_seq_len, noise_enters=self.noise_enters,
            learner=type(self).__name__,
        )  # fmt: skip
        self.dep_mode = dep_mode
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
        if normalize_observations not in (True, False, "critic"):
            raise ValueError(f"normalize_observations must be true, false or critic, got {normalize_observations!r}")
        self.normalizer = (
            ObservationNormalizer(observation_dim, statistics=normalizer_statistics) if normalize_observations else None
        )
        self.actor_normalizes = normalize_observations is True
        self.updates = 0  # update() calls completed; a Python int, checkpointed, the same on every rank
        self._test_results: list[EpisodeResult] = []
        self._pending_metrics: dict[str, torch.Tensor | float] = {}
        self.nonfinite_batches = 0
        self._nonfinite_in_a_row = 0
        self._nonfinite_losses: list[str] = []  # in the current batch

    # ------------------------------------------------------------ what an algorithm writes

    def explore(
        self,
        observations: torch.Tensor,
        env_steps: int,
        episode_starts: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The policy's training actions ``[E, A]`` (a sample for a stochastic policy, the
        deterministic action for one with ``exploration_noise``); ``episode_starts`` marks envs
        whose episode just began. Runs under ``torch.no_grad``. The acting layer
        (``lit_rl.acting.Actor``) has already recorded the observations for the normaliser, and
        adds the noise after (``noise_enters = "action"``). ``noise`` (``[E, A]``, only for
        ``noise_enters = "draw"`` with ``exploration_noise: pink``): the standard-normal draw to
        sample with instead of a fresh one; the acting layer passes it only when set, so an
        ``explore`` without the argument works as before."""
        raise NotImplementedError

    def act_greedy(self, observations: torch.Tensor) -> torch.Tensor:
        """Deterministic actions for evaluation (and export)."""
        raise NotImplementedError

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient batch: step the optimizers (``clip_and_step``, or ``manual_backward`` and
        ``opt.step()``), return detached metrics. A metric may be returned by some batches only:
        each is logged at the next logging step with its latest value."""
        raise NotImplementedError

    # ------------------------------------------------------------ the policy (what the acting layer calls)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Inference: the deterministic policy (what ``python -m lit_rl export`` writes)."""
        return self.act_greedy(observations)

    @property
    def evaluation_every(self) -> int | None:
        """Env steps between evaluations this algorithm asks for (the DataModule's epoch length);
        None leaves ``epoch_steps`` as configured."""
        return None

    # ------------------------------------------------------------ checkpointed state

    def rank_state_dict(self) -> dict:
        """What differs between DDP ranks in this module: the observations recorded for the
        normaliser since its last update (``checkpoint["learner"]``, every rank's; see
        ``lit_rl.training.distributed``). An algorithm with per-rank state of its own adds it here (and
        in ``load_rank_state_dict``)."""
        if self.normalizer is None:
            return {}
        return {"normalizer_pending": self.normalizer.pending_state_dict()}

    def load_rank_state_dict(self, state: dict) -> None:
        """Restore ``rank_state_dict`` but the normaliser's part, which ``on_load_checkpoint``
        puts into the weights that Lightning loads after it."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        hparams = checkpoint.get("hyper_parameters", {})
        for key, value in hparams.items():  # checkpoints hold plain types only (DEP, dynamics configs)
            if is_dataclass(value) and not isinstance(value, type):
                hparams[key] = asdict(value)
        checkpoint["learner"] = add_rank_states({}, self.rank_state_dict())
        checkpoint["updates"] = self.updates

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        learner = checkpoint.get("learner", {})  # this rank's part when fitting (lit_rl.checkpoints)
        if "normalizer_pending" in learner:  # the weights hold rank 0's recorded sums: use this rank's
            for name, value in learner["normalizer_pending"].items():
                checkpoint["state_dict"][f"normalizer.{name}"] = value
        self.load_rank_state_dict(learner)
        self.updates = checkpoint.get("updates", 0)

    # ------------------------------------------------------------ helpers for algorithms

    @property
    def data(self) -> DataView | None:
        """The data side as an algorithm may see it: env steps, replay samples, recent transitions,
        train metrics (None outside a trainer with a RolloutDataModule)."""
        trainer = attached_trainer(self)
        datamodule = trainer.datamodule if trainer is not None else None
        return getattr(datamodule, "view", None)

    def normalize_for_critic(self, observations: torch.Tensor) -> torch.Tensor:
        """What a critic (or any value network) is fed: normalised when ``normalize_observations``."""
        return self.normalizer(observations) if self.normalizer is not None else observations

    def normalize_for_actor(self, observations: torch.Tensor) -> torch.Tensor:
        """What the policy is fed: raw with ``normalize_observations: critic`` (deprl's)."""
        return self.normalizer(observations) if self.actor_normalizes else observations

    @property
    def action_half_range(self) -> torch.Tensor:
        return (self.action_high - self.action_low) / 2

    def scale_action(self, unit: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> [low, high]."""
        return self.action_low + (unit + 1.0) * self.action_half_range

    def clip_and_step(self, optimizer, loss: torch.Tensor, max_norm: float | None, *also) -> None:
        """Backward ``loss``, average the gradients over ranks (DDP), clip ``optimizer``'s and step
        it and the optimizers in ``also`` (unclipped, e.g. MPO's duals). If the loss is non-finite
        on any rank, no rank changes anything. (Plain ``manual_backward(loss); opt.step()`` is
        averaged too, by the strategy, but clipping before ``opt.step()`` then clips each rank's
        own gradients.)"""
        optimizers = (optimizer, *also)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        nonfinite_before = len(self._nonfinite_losses)
        self.manual_backward(loss)
        backward_done = len(self._nonfinite_losses) == nonfinite_before
        if not average_optimizer_gradients(optimizers, backward_done) and backward_done:
            self._nonfinite_losses.append("non-finite on another process")
        if max_norm is not None:
            self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")
        for opt in optimizers:
            opt.step()

    def log_when_due(self, metrics: dict[str, torch.Tensor | float]) -> None:
        """Keep ``metrics`` (latest value per name) until Lightning's next logging step, then log
        them: a metric produced on some batches only is still logged. No device sync until then."""
        self._pending_metrics.update(metrics)
        if should_log(self.trainer):
            self.log_dict(self._pending_metrics)
            self._pending_metrics = {}

    # ------------------------------------------------------------ training

    def training_step(self, batch: Batch | PhaseEnd) -> None:
        if isinstance(batch, PhaseEnd):
            return
        metrics = self.guarded_update(batch)
        if batch.last_in_phase and self.normalizer is not None:
            self.normalizer.update(reduce=sum_across_ranks)
        self.log_when_due({**metrics, "train/nonfinite_batches": float(self.nonfinite_batches)})

    def guarded_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``update`` under the non-finite loss guard (see the class docstring); counts ``updates``."""
        self._nonfinite_losses = []
        metrics = self.update(batch)
        self.updates += 1
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
            data = self.data
            where = f" at env step {data.env_steps}" if data is not None else ""
            raise RuntimeError(
                f"{self._nonfinite_in_a_row} batches in a row had a non-finite loss{where} "
                f"({', '.join(self._nonfinite_losses)}): training stopped instead of going on without "
                "updates. Look for huge or non-finite rewards or observations, or lower the learning rates."
            )

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if should_log(self.trainer):  # Lightning writes step metrics only then
            self.log_dict(self.data.pop_train_metrics())

    def on_train_epoch_end(self) -> None:
        # Also at every epoch end: during a DEP-only warm-up and in mode 4 there are no gradient
        # batches, so the logging steps above never come. (Collective under DDP, like those; the
        # values are the same on every rank, sync_dist only keeps Lightning from warning.)
        metrics = {k: float(v) for k, v in self.data.pop_train_metrics().items()}
        self.log_dict(metrics, sync_dist=True)
        if self.data.done:
            self.trainer.should_stop = True

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
            "test/episode_length_std": lengths.std(unbiased=False),
            "test/episode_length_min": lengths.min(),
            "test/episode_length_max": lengths.max(),  # a first full-length episode shows here before the mean
        }
        for name in set.intersection(*(set(r.reward_terms) for r in results)):
            metrics[f"test/reward_terms/{name}"] = torch.tensor([r.reward_terms[name] for r in results]).mean()
        if self.data is not None:
            metrics["env_steps"] = torch.tensor(float(self.data.env_steps))
        # the same on every rank (gathered above); sync_dist only keeps Lightning from warning
        self.log_dict({k: v.float() for k, v in metrics.items()}, prog_bar=False, sync_dist=True)
