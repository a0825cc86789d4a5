"""Each private Lightning API (and undocumented behaviour) that lit_rl uses, as
``lit_rl.training.lightning_internals`` uses it, against the installed Lightning: an upgrade that changes
one fails here, by name."""

import inspect
import logging
import os
import re
import subprocess
import sys
import warnings

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import _pytree

from lit_rl.training.lightning_internals import (
    LEAFSPEC_WARNING,
    LITLOGGER_TIP,
    MOVED_RUN_WARNING,
    PREFETCHED_ITEMS,
    RANK_ZERO_LOGGERS,
    CheckedCLI,
    attached_trainer,
    drop_wandb_anonymous,
    not_the_litlogger_tip,
    quiet_lightning,
    save_checkpoint,
    should_log,
    start_method,
    tracing,
)


class Recorder(LightningModule):
    """Records, per training_step, how many items the dataloader had handed out and should_log."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.layer = torch.nn.Linear(1, 1)
        self.fetched = 0
        self.seen: list[tuple[int, bool]] = []

    def items(self):
        for i in range(6):
            self.fetched += 1
            yield torch.tensor([float(i)])

    def training_step(self, batch):
        self.seen.append((self.fetched, should_log(self.trainer)))

    def train_dataloader(self):
        module = self

        class Items:  # an iterable of unknown length, as the rollout is
            def __iter__(self):
                return module.items()

        return Items()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def forward(self, x):
        return self.layer(x)


def trainer(tmp_path, **kwargs) -> Trainer:
    options = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return Trainer(max_epochs=1, enable_model_summary=False, default_root_dir=tmp_path, **{**options, **kwargs})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    module = Recorder()
    run = trainer(tmp_path_factory.mktemp("fit"), log_every_n_steps=2)
    run.fit(module)
    return module, run


def test_the_train_dataloader_is_fetched_exactly_one_item_ahead(fitted):
    module, _ = fitted
    assert [fetched for fetched, _ in module.seen] == [min(i + 1 + PREFETCHED_ITEMS, 6) for i in range(6)]


def test_should_log_is_true_on_lightnings_logging_steps(fitted):
    module, _ = fitted
    assert [flag for _, flag in module.seen] == [False, True, False, True, False, True]  # log_every_n_steps=2


def test_model_checkpoints_own_save(fitted, tmp_path):
    _, run = fitted
    assert list(inspect.signature(ModelCheckpoint._save_checkpoint).parameters) == ["self", "trainer", "filepath"]
    callback = ModelCheckpoint(dirpath=tmp_path)
    save_checkpoint(callback, run, str(tmp_path / "saved.ckpt"))
    assert "state_dict" in torch.load(tmp_path / "saved.ckpt", weights_only=True)


def test_attached_trainer(fitted):
    module, run = fitted
    assert attached_trainer(module) is run and attached_trainer(Recorder()) is None


def test_ddp_start_method():
    assert start_method(DDPStrategy()) == "popen"
    assert start_method(DDPStrategy(start_method="spawn")) == "spawn"


def test_tracing_a_module_outside_a_trainer():
    module = Recorder()
    with pytest.raises(RuntimeError, match="not attached to a `Trainer`"):
        _ = module.trainer
    with tracing(module), torch.no_grad():
        traced = torch.jit.trace(module, torch.zeros(2, 1))
    assert module._jit_is_scripting is False
    assert torch.equal(traced(torch.ones(3, 1)), module(torch.ones(3, 1)))


def test_the_cli_hooks_exist_with_the_signatures_used():
    for name, parameters in {
        "_parse_ckpt_path": ["self"],
        "_instantiate_trainer": ["self", "config", "callbacks"],
        "_get": ["self", "config", "key", "default"],
        "_parser": ["self", "subcommand"],
        "_run_subcommand": ["self", "subcommand"],
        "_set_seed": ["self"],
    }.items():
        assert list(inspect.signature(getattr(LightningCLI, name)).parameters) == parameters, name
    for name in ("_parse_ckpt_path", "_run_subcommand", "_set_seed"):  # the overrides are in place
        assert getattr(CheckedCLI, name) is not getattr(LightningCLI, name), name


def test_seed_everything_logs_seed_set_on_the_logger_the_cli_holds_back(caplog):
    from lightning.pytorch import seed_everything

    with caplog.at_level(logging.INFO, logger=CheckedCLI.SEED_LOGGER):
        seed_everything(3)
    assert [r.name for r in caplog.records if "Seed set to 3" in r.getMessage()] == [CheckedCLI.SEED_LOGGER]


def test_the_wandb_logger_keeps_its_run_in_experiment_until_it_starts_one(tmp_path):
    """``finish_wandb_run`` reads ``WandbLogger._experiment``: None until the logger starts a run."""
    logger = WandbLogger(project="lit_rl", offline=True, save_dir=str(tmp_path))
    assert logger._experiment is None


WANDB_RUN = """
import sys
from lightning.pytorch.loggers import WandbLogger
from lit_rl.training.lightning_internals import drop_wandb_anonymous
logger = WandbLogger(project="lit_rl", offline=True, save_dir=sys.argv[1])
drop_wandb_anonymous(logger)
logger.experiment.log({"x": 1.0})
logger.experiment.finish()
"""


def test_wandb_logger_passes_anonymous_and_dropping_it_silences_wandb(tmp_path):
    logger = WandbLogger(project="lit_rl", offline=True, save_dir=str(tmp_path))
    assert "anonymous" in logger._wandb_init and logger._wandb_init["anonymous"] is None
    drop_wandb_anonymous(logger)
    assert "anonymous" not in logger._wandb_init
    # A real run, in its own process: a W&B service started here would be inherited by every
    # later test's training subprocess through the environment.
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    result = subprocess.run(
        [sys.executable, "-c", WANDB_RUN, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "anonymous" not in result.stderr


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def tips_logged(tmp_path) -> list[str]:
    """The litlogger tips a new Trainer logs (at INFO, whatever level pytest leaves Lightning at)."""
    handler, lightning_logger = Records(), logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.INFO)
    loggers = [logging.getLogger(name) for name in RANK_ZERO_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        Trainer(logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        lightning_logger.setLevel(level)
    return [m for m in handler.messages if "litlogger" in m]


def test_the_litlogger_tip_is_dropped_and_still_the_one_lightning_logs(tmp_path):
    """Fails when Lightning changes the tip's text or logger, and the filter would drop nothing."""
    assert tips_logged(tmp_path) == []
    for name in RANK_ZERO_LOGGERS:
        logging.getLogger(name).removeFilter(not_the_litlogger_tip)
    try:
        tips = tips_logged(tmp_path)
    finally:
        quiet_lightning()
    assert len(tips) == 1 and tips[0].startswith(LITLOGGER_TIP), tips


def test_the_leafspec_warning_is_dropped_and_still_the_one_lightning_causes():
    """Lightning's _tree_flatten builds torch's deprecated LeafSpec; fails when either changes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _pytree._tree_flatten(1.0)
    assert any(w.category is FutureWarning and re.match(LEAFSPEC_WARNING, str(w.message)) for w in caught), caught
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning()  # on top of "always"
        _pytree._tree_flatten(1.0)
    assert caught == []


def test_the_moved_run_warning_is_still_the_one_modelcheckpoint_gives(tmp_path):
    """validate/test filter it by its start; fails when Lightning rewords it."""
    callback = ModelCheckpoint(dirpath=tmp_path / "here")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback.load_state_dict({"dirpath": str(tmp_path / "there"), "best_model_path": ""})
    assert any(str(w.message).startswith(MOVED_RUN_WARNING) for w in caught), caught
