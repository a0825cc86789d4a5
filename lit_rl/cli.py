"""``python -m lit_rl {fit,validate,test}``: LightningCLI with run directories, resume and
environment-step callbacks."""

from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import time
from pathlib import Path

from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from lit_rl.algos.base import OffPolicyAlgorithm
from lit_rl.callbacks import EnvStepCheckpoint, EnvStepProgressBar
from lit_rl.data import RolloutDataModule

log = logging.getLogger(__name__)

WANDB_ID_FILE = "wandb_run_id"

TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": "lit_rl", "offline": True},
    },
    "max_epochs": -1,  # the DataModule's total_steps ends training
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 50,
}


class RunConfigCallback(SaveConfigCallback):
    """Writes the resolved config to ``<run_dir>/config.yaml`` and logs it to every logger."""

    def __init__(self, *args, run_dir: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_dir = Path(run_dir)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved or not trainer.is_global_zero:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, self.run_dir / self.config_filename, skip_none=False, overwrite=True)
        config = self.parser.dump(self.config, format="json_indented", skip_none=False)
        for logger in trainer.loggers:
            logger.log_hyperparams(json.loads(config))
        self.already_saved = True


class LitRLCLI(LightningCLI):
    def __init__(self, args=None, run: bool = True):
        super().__init__(
            OffPolicyAlgorithm,
            RolloutDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=RunConfigCallback,
            save_config_kwargs={"overwrite": True},
            trainer_defaults=TRAINER_DEFAULTS,
            auto_configure_optimizers=False,
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--working_dir", type=str, default="runs", help="parent folder of run directories")
        parser.add_argument(
            "--name", type=str | None, default=None, help="run directory name (default: <algorithm>_<env id>)"
        )
        parser.add_argument(
            "--resume",
            type=bool,
            default=True,
            help="fit in an existing run directory: true continues from its last.ckpt, false moves the "
            "old directory aside (nothing is deleted) and starts fresh",
        )
        parser.add_argument(
            "--full_save", type=bool, default=True, help="save the replay buffer with last.ckpt, for exact resume"
        )
        parser.link_arguments("data.observation_dim", "model.init_args.observation_dim", apply_on="instantiate")
        parser.link_arguments("data.action_bounds", "model.init_args.action_bounds", apply_on="instantiate")

    def _parse_ckpt_path(self) -> None:
        try:
            super()._parse_ckpt_path()
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError) as error:
            path = self.config[self.config.subcommand].get("ckpt_path")
            raise ValueError(f"--ckpt_path {path} is not a readable lit_rl checkpoint ({error})") from error

    # ------------------------------------------------------------------ run directory

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        fitting = self.subcommand in (None, "fit")  # run=False is used to fit from Python
        name = config.name or self._default_name(config)
        self.run_dir = Path(config.working_dir) / name
        checkpoint_dir = self.run_dir / "checkpoints"
        launcher = int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
        if fitting and config.get("ckpt_path") is None:
            if (checkpoint_dir / "last.ckpt").is_file() and config.resume:
                config.ckpt_path = str(checkpoint_dir / "last.ckpt")
                log.warning("Resuming %s from %s", self.run_dir, config.ckpt_path)
            elif self.run_dir.exists() and any(self.run_dir.iterdir()) and launcher:
                kept = self.run_dir.with_name(f"{name}.{time.strftime('%Y%m%d-%H%M%S')}")
                self.run_dir.rename(kept)
                log.warning("resume is false: moved the earlier run to %s and starting fresh", kept)
        if config.get("ckpt_path") == "last" and (checkpoint_dir / "last.ckpt").is_file():
            config.ckpt_path = str(checkpoint_dir / "last.ckpt")
        if config.get("ckpt_path") is not None:
            # As for an explicit path: the model is rebuilt with the checkpoint's hyperparameters.
            self._parse_ckpt_path()
            config = self.config.get(str(self.subcommand), self.config)
        if fitting and launcher:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.save_config_kwargs["run_dir"] = str(self.run_dir)
        self._configure_loggers(config, fitting)

    @staticmethod
    def _default_name(config) -> str:
        algorithm = config.model.class_path.rsplit(".", 1)[-1].lower()
        return f"{algorithm}_{config.data.init_args.env.id}"

    def _configure_loggers(self, config, fitting: bool) -> None:
        loggers = config.trainer.logger
        if not loggers or loggers is True:
            return
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = logger.init_args
            if "save_dir" in init_args:
                init_args.save_dir = str(self.run_dir)
            if logger.class_path.endswith("WandbLogger"):
                init_args.name = init_args.name or self.run_dir.name
                if fitting and init_args.id is None:
                    init_args.id = self._wandb_run_id()

    def _wandb_run_id(self) -> str:
        """One W&B run per run directory: a resumed run continues the same W&B history."""
        path = self.run_dir / WANDB_ID_FILE
        if path.is_file():
            return path.read_text().strip()
        run_id = secrets.token_hex(4)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id)
        return run_id

    def instantiate_trainer(self, **kwargs):
        trainer_config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        callbacks = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        if trainer_config.get("enable_checkpointing", True) is not False:
            full_save = self._get(self.config_init, "full_save")
            callbacks.append(EnvStepCheckpoint(self.run_dir / "checkpoints", full_save=full_save))
        if trainer_config.get("enable_progress_bar", True) is not False:
            callbacks.append(EnvStepProgressBar())
        return self._instantiate_trainer(trainer_config, callbacks)


def main(args=None) -> None:
    LitRLCLI(args=args)
