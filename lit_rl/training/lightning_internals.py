"""Every use of a private Lightning API (or of a behaviour Lightning does not document) in one
place. tests/test_lightning_internals.py checks each against the installed Lightning, so an
upgrade that changes one fails there, by name, instead of somewhere in a training run.
Checked with lightning 2.6."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.strategies import Strategy

# Two messages on every run that say nothing about it: Lightning's advertisement for its cloud
# logger (logged by every Trainer's logger connector through the rank-zero logger), and the
# deprecation (torch 2.13) of the LeafSpec that Lightning's own _pytree still builds when it logs.
LITLOGGER_TIP = "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]"
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
LEAFSPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# ModelCheckpoint's warning when a checkpoint's run folder was moved or copied: its best-k
# bookkeeping is not reloaded, which validate and test do not use.
MOVED_RUN_WARNING = "The dirpath has changed from"


def not_the_litlogger_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(LITLOGGER_TIP)


def quiet_lightning() -> None:
    """Drop exactly those two messages (idempotent; done when this module is imported)."""
    for name in RANK_ZERO_LOGGERS:
        logging.getLogger(name).addFilter(not_the_litlogger_tip)
    warnings.filterwarnings("ignore", message=LEAFSPEC_WARNING, category=FutureWarning)


quiet_lightning()

# Behaviour relied on, not an API: with an iterable train dataloader of unknown length,
# Lightning fetches one item ahead of training_step. The rollout yields a PhaseEnd marker after
# each phase's last batch so that the envs are never stepped ahead of the weights.
PREFETCHED_ITEMS = 1


def should_log(trainer: Trainer) -> bool:
    """Whether ``self.log(..., on_step=True)`` values of this batch reach the loggers (Lightning's
    ``log_every_n_steps``); other batches' step values are overwritten unlogged."""
    return trainer._logger_connector.should_update_logs


def attached_trainer(module: LightningModule) -> Trainer | None:
    """The module's Trainer, or None outside one (its ``trainer`` property raises then)."""
    return module._trainer


def save_checkpoint(callback: ModelCheckpoint, trainer: Trainer, path: str) -> None:
    """``ModelCheckpoint``'s own save: the checkpoint dict, the strategy's write (rank 0) and the
    barrier after it, and the callback's bookkeeping."""
    callback._save_checkpoint(trainer, path)


def start_method(strategy: Strategy) -> str:
    """How a DDP strategy starts its processes: ``popen`` (``ddp``) or ``spawn``/``fork``."""
    return getattr(strategy, "_start_method", "popen")


def finish_wandb_run(logger, opened_before=None) -> None:
    """End the W&B run ``logger`` started, if it started one. ``wandb.run`` is global to the
    process, and a later ``WandbLogger`` reuses an open run (Lightning only warns): a second run in
    the same process (``lit_rl.api.train`` in a loop) would log into the first one's W&B run. A run
    that was open before (``opened_before``, the user's own ``wandb.init``) is the user's to finish.

    ``finish`` returns before W&B's service process has closed the run's ``.wandb`` file (on a busy
    machine ``plot`` right after ``train()`` read it empty); with no other run open the service is
    shut down too, which waits for that, and the next run starts a new one."""
    experiment = logger._experiment
    if experiment is None or experiment is opened_before or not hasattr(experiment, "finish"):
        return  # none, not this logger's, or the DummyExperiment of the other ranks
    experiment.finish()
    import wandb

    if wandb.run is None:
        wandb.teardown()


def drop_wandb_anonymous(logger) -> None:
    """Lightning's ``WandbLogger`` always passes ``anonymous=None`` to ``wandb.init``, and wandb
    0.31 warns on every run that the setting has no effect; leave it out unless it was asked for."""
    if logger._wandb_init.get("anonymous") is None:
        logger._wandb_init.pop("anonymous", None)


@contextmanager
def tracing(module: LightningModule) -> Iterator[None]:
    """Lets ``torch.jit.trace`` touch every attribute of a module outside a Trainer (its
    ``trainer`` property raises otherwise; ``LightningModule.to_torchscript`` does the same)."""
    module._jit_is_scripting = True
    try:
        yield
    finally:
        module._jit_is_scripting = False


class CheckedCLI(LightningCLI):
    """LightningCLI with the private hooks lit_rl's CLI uses, behind public names.

    - ``check_ckpt_path()`` runs where LightningCLI reads ``--ckpt_path``'s hyperparameters
      (``_parse_ckpt_path``), so a bad checkpoint is reported before Lightning unpickles it;
    - ``finish_run()`` runs after the subcommand (``_run_subcommand``), also when it raised: what
      one run holds in the process (a W&B run) ends with it; ``validate`` and ``test`` of a run
      folder that was moved or copied do not warn that ModelCheckpoint's bookkeeping is not reloaded;
    - LightningCLI's ``Seed set to N`` (logged by ``_set_seed`` before the classes are built) is held
      back until the classes are built, so that a config error found while building them (an
      unknown env id) is the only line printed;
    - ``parse_ckpt_path()``, ``build_trainer()``, ``config_value()``, ``callback_keys()`` and
      ``option_strings()`` wrap ``_parse_ckpt_path``, ``_instantiate_trainer``, ``_get`` and ``_parser``.
    """

    SEED_LOGGER = "lightning.fabric.utilities.seed"

    def finish_run(self) -> None:
        """Override: release what the run holds in this process."""

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            with warnings.catch_warnings():
                if subcommand in ("validate", "test"):  # of a run copied from elsewhere: nothing to warn about
                    warnings.filterwarnings("ignore", message=MOVED_RUN_WARNING, category=UserWarning)
                super()._run_subcommand(subcommand)
        finally:
            self.finish_run()

    def _set_seed(self) -> None:
        held: list[logging.LogRecord] = []

        def hold(record: logging.LogRecord) -> bool:
            held.append(record)
            return False

        logger = logging.getLogger(self.SEED_LOGGER)
        logger.addFilter(hold)
        try:
            super()._set_seed()
        finally:
            logger.removeFilter(hold)
        self._held_seed_records = held

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        logger = logging.getLogger(self.SEED_LOGGER)
        for record in getattr(self, "_held_seed_records", []):
            logger.handle(record)
        self._held_seed_records = []

    def check_ckpt_path(self) -> None:
        """Override: check ``--ckpt_path`` before LightningCLI loads its hyperparameters."""

    def _parse_ckpt_path(self) -> None:
        self.check_ckpt_path()
        super()._parse_ckpt_path()

    def parse_ckpt_path(self) -> None:
        self._parse_ckpt_path()

    def build_trainer(self, config: dict, callbacks: list) -> Trainer:
        return self._instantiate_trainer(config, callbacks)

    def config_value(self, config, key: str, default=None):
        return self._get(config, key, default=default)

    def callback_keys(self) -> list[str]:
        return list(self._parser(self.subcommand).callback_keys)

    def option_strings(self, subcommand: str | None) -> list[str]:
        """Every ``--key`` the parser of ``subcommand`` (None: the main parser) takes."""
        return [option for action in self._parser(subcommand)._actions for option in action.option_strings]
