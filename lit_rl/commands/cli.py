"""``python -m lit_rl {fit,validate,test}``: LightningCLI with run directories, resume and
environment-step callbacks."""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
import yaml
from jsonargparse import ArgumentError, Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from lit_rl.algos import OffPolicyAlgorithm
from lit_rl.commands import lit_rl_command
from lit_rl.commands.config_errors import explain, trainer_problem, unknown_empty_mapping
from lit_rl.commands.export import checkpoint_of
from lit_rl.data import ReplayBuffer, RolloutDataModule
from lit_rl.training.callbacks import EnvStepCheckpoint, EnvStepProgressBar, check_output_dir
from lit_rl.training.distributed import RANKS_KEY, checkpoint_world_message, ddp_strategy
from lit_rl.training.files import EVAL_DIR, run_dir_of, write_atomically
from lit_rl.training.lightning_internals import CheckedCLI, drop_wandb_anonymous, finish_wandb_run, start_method
from lit_rl.training.resume import replay_file_problem

log = logging.getLogger(__name__)

WANDB_ID_FILE = "wandb_run_id"
EVAL_DIR_ENV = "LIT_RL_EVAL_DIR"  # the evaluation folder the first rank chose, for the ranks Lightning starts
LIGHTNING_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")
LINKED_MODEL_KEYS = ("observation_dim", "action_bounds")  # set from the env, not by the config
EVALUATIONS = ("validate", "test")  # read a run's config.yaml when given only its checkpoint


class ConfigError(ValueError):
    """A problem with the config, the checkpoint or the output directory, found before training
    starts; ``python -m lit_rl`` prints it as one line instead of a traceback."""


class AlreadyFinished(Exception):
    """``fit`` resumed a run whose checkpoint already holds ``total_steps``: nothing to train, and
    the checkpoint is left as it is (a job killed after its last save and started again ends here)."""


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
    """Writes the resolved config to ``<run_dir>/config.yaml`` (an evaluation's to its own folder)
    and logs it to every logger."""

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


def resolve_class(class_path: str) -> type | None:
    """The class a ``class_path`` names (None if it does not import)."""
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None


class LitRLCLI(CheckedCLI):
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
            # Errors raise (parse_arguments makes them one line) instead of printing the usage and
            # exiting; an abbreviated key (--trainer.max_epoch) is an error, not the key it begins.
            parser_kwargs={"prog": "python -m lit_rl", "exit_on_error": False, "allow_abbrev": False}
            | {name: {"exit_on_error": False, "allow_abbrev": False} for name in self.subcommands()},
            args=args,
            run=run,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test; not predict: an RL run has no predict_dataloader to run it on."""
        return {name: skip for name, skip in CheckedCLI.subcommands().items() if name != "predict"}

    def parse_arguments(self, parser, args) -> None:
        """jsonargparse's error (the usage and a tree of union types, 60 lines) as a ConfigError of
        one line; then the devices and loggers the config asks for, before anything is built.
        ``validate`` and ``test`` given a run's checkpoint (or the run's folder) and no ``--config``
        read the run's ``config.yaml``."""
        argv = sys.argv[1:] if args is None else args
        if isinstance(argv, list):
            args = argv = with_run_config(list(argv))
        named = [a for a in argv if a in self.subcommands()] if isinstance(argv, list) else []
        try:  # LightningCLI.parse_arguments, without its warning about args next to sys.argv (sweep has both)
            parse = parser.parse_object if isinstance(args, dict | Namespace) else parser.parse_args
            self.config = parse(args)
        except ArgumentError as error:
            raise ConfigError(explain(str(error), self.option_strings(named[0] if named else None))) from error
        config = self.config.get(str(self.config.get("subcommand")), self.config)
        if isinstance(argv, list):
            # jsonargparse drops a key whose value is an empty mapping (modle: {}) without a word
            given = config_files(argv[argv.index(named[0]) + 1 :] if named else argv)
            if (problem := unknown_empty_mapping(given, config, named[0] if named else None)) is not None:
                raise ConfigError(problem)
        if (problem := trainer_problem(config.trainer)) is not None:
            raise ConfigError(problem)

    @classmethod
    def check_args(cls, args: list[str]) -> None:
        """Parse ``args`` as ``python -m lit_rl`` does and stop there: a ConfigError for an unknown
        key, a value of the wrong type or a missing device, and nothing built (``sweep`` checks its
        overrides so before it starts any run)."""

        class Parsed(Exception):
            pass

        class ParseOnly(cls):
            def parse_arguments(self, parser, args) -> None:
                super().parse_arguments(parser, args)
                raise Parsed

        try:
            ParseOnly(args=args)
        except Parsed:
            pass

    def build_trainer(self, config: dict, callbacks: list):
        """Lightning's own checks of the trainer arguments (devices, strategy, precision) as one
        line; they raise MisconfigurationException, or TypeError for some ``devices``."""
        try:
            return super().build_trainer(config, callbacks)
        except (MisconfigurationException, TypeError) as error:
            raise ConfigError(f"--trainer: {' '.join(str(error).split())}") from error

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
        parser.add_argument(
            "--keep_checkpoints",
            type=int | None,
            default=None,
            help="keep only the newest N periodic step=<env_steps>.ckpt files (null: keep all); last.ckpt is "
            "always kept",
        )
        parser.link_arguments("data.observation_dim", "model.init_args.observation_dim", apply_on="instantiate")
        parser.link_arguments("data.action_bounds", "model.init_args.action_bounds", apply_on="instantiate")

    def check_ckpt_path(self) -> None:
        config = self.config.get(str(self.config.get("subcommand")))
        path = config.get("ckpt_path") if config is not None else None
        if path is None or path in LIGHTNING_CKPT_KEYWORDS:
            return
        if not Path(path).is_file():
            raise ConfigError(f"--ckpt_path {path}: no such checkpoint file")
        try:
            checkpoint = torch.load(path, weights_only=True, map_location="cpu")
            hparams = checkpoint["hyper_parameters"]
            self._checkpoint_spaces = (hparams.get("observation_dim"), hparams.get("action_bounds"))
            self._checkpoint_data = checkpoint.get(RolloutDataModule.__qualname__)
        except Exception as error:  # noqa: BLE001 - unpickling garbage raises anything
            raise ConfigError(
                f"--ckpt_path {path} is not a readable lit_rl checkpoint ({type(error).__name__}: {error}). "
                "An earlier step=<env_steps>.ckpt in the same folder may still be good."
            ) from error
        written_by, wanted = hparams.get("_class_path"), config.model.class_path
        if written_by is not None and resolve_class(written_by) is not resolve_class(wanted):
            raise ConfigError(
                f"--ckpt_path {path} was written by {written_by}, but the config trains {wanted}; "
                "use a config of the same algorithm"
            )
        self._check_model_keys(config, hparams, path)

    def _check_model_keys(self, config, hparams: dict, path: str) -> None:
        """The model is rebuilt from the checkpoint's hyperparameters, so model keys of the config
        that differ from them would be dropped without a word: ``fit`` refuses them (a resumed run
        keeps the model it was trained with), an evaluation says it ignores them."""
        given = config.model.init_args
        given = given.as_dict() if hasattr(given, "as_dict") else dict(given or {})
        differ = {
            key: (value, given[key])
            for key, value in hparams.items()
            if key in given and key not in LINKED_MODEL_KEYS and _plain(given[key]) != _plain(value)
        }
        if not differ:
            return
        listed = "; ".join(
            f"model.init_args.{k} {theirs!r} (checkpoint: {ours!r})" for k, (ours, theirs) in differ.items()
        )
        if self.config.get("subcommand") in (None, "fit"):
            raise ConfigError(
                f"--ckpt_path {path}: the config's {listed}. A resumed run keeps its model's hyperparameters; "
                "for other values train a new run (another --name, or --resume false)"
            )
        log.warning("Evaluating --ckpt_path %s with its own hyperparameters; ignored from the config: %s", path, listed)

    # ------------------------------------------------------------------ run directory

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config)
        fitting = self.subcommand in (None, "fit")  # run=False is used to fit from Python
        name = config.name or self._default_name(config)
        self.run_dir = Path(config.working_dir) / name
        checkpoint_dir = self.run_dir / "checkpoints"
        self._launcher = _started_by_user()
        self._move_aside = False
        self._wandb_id: str | None = None
        if fitting and config.get("ckpt_path") is None:
            if (checkpoint_dir / "last.ckpt").is_file() and config.resume:
                config.ckpt_path = str(checkpoint_dir / "last.ckpt")
                log.warning("Resuming %s from %s", self.run_dir, config.ckpt_path)
            else:
                # Done in before_fit, once the config is known to be good.
                self._move_aside = self.run_dir.exists() and any(self.run_dir.iterdir()) and self._launcher
        if config.get("ckpt_path") == "last":
            if not (checkpoint_dir / "last.ckpt").is_file():
                raise ConfigError(f"--ckpt_path last: there is no {checkpoint_dir / 'last.ckpt'}")
            config.ckpt_path = str(checkpoint_dir / "last.ckpt")
        if config.get("ckpt_path") is not None:
            # As for an explicit path: the model is rebuilt with the checkpoint's hyperparameters.
            self.parse_ckpt_path()
            config = self.config.get(str(self.subcommand), self.config)
        if fitting:
            self.output_dir = self.run_dir
        else:
            if config.get("ckpt_path") is not None:
                self.run_dir = run_dir_of(Path(config.ckpt_path))
            self.output_dir = self._evaluation_dir(config.get("ckpt_path"))
        self.save_config_kwargs["run_dir"] = str(self.output_dir)
        self._configure_loggers(config, fitting)

    def _evaluation_dir(self, ckpt_path: str | None) -> Path:
        """``<run_dir>/eval/<subcommand>_<checkpoint>_<time>``: validate and test write their config,
        logs, metrics and videos there and leave the training run's files as they are."""
        if not self._launcher and EVAL_DIR_ENV in os.environ:
            return Path(os.environ[EVAL_DIR_ENV])
        stem = Path(ckpt_path).stem if ckpt_path is not None else "untrained"
        base = self.run_dir / EVAL_DIR / f"{self.subcommand}_{stem}_{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while path.exists():
            path, n = base.with_name(f"{base.name}-{n}"), n + 1
        os.environ[EVAL_DIR_ENV] = str(path)
        return path

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, ImportError, gym.error.Error) as error:  # the classes' own checks, env ids, env packages
            raise ConfigError(str(_raised_outside_jsonargparse(error))) from error

    def before_fit(self) -> None:
        saved, total = getattr(self, "_checkpoint_data", None), self.datamodule.schedule.total_steps
        if saved is not None and saved["env_steps"] >= total:
            raise AlreadyFinished(
                f"{self.run_dir} is finished: its checkpoint holds {saved['env_steps']:,} env steps of total_steps "
                f"{total:,}, so there is nothing to train (a larger --data.init_args.total_steps trains on)"
            )
        if (problem := self.datamodule.env_problem(self.model)) is not None:  # DEP on a body without muscles
            raise ConfigError(problem)
        self._check_checkpoint_spaces()
        self._check_checkpoint_replay()
        if not self._launcher:
            return
        try:
            check_output_dir(self.run_dir.parent, self._checkpoint_bytes())
            if self._move_aside:
                kept = self.run_dir.with_name(f"{self.run_dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
                self.run_dir.rename(kept)
                log.warning("resume is false: moved the earlier run to %s and starting fresh", kept)
            check_output_dir(self.run_dir / "checkpoints", 0)
        except OSError as error:
            raise ConfigError(str(error)) from error
        if self._wandb_id is not None:
            path = self.run_dir / WANDB_ID_FILE
            if not path.is_file():
                write_atomically(path, lambda f: f.write(self._wandb_id.encode()))

    def before_validate(self) -> None:
        self._check_checkpoint_spaces()

    def before_test(self) -> None:
        self._check_checkpoint_spaces()

    def after_validate(self) -> None:
        self._write_evaluation()

    def after_test(self) -> None:
        self._write_evaluation()

    def last_metrics(self) -> dict[str, float]:
        """The last logged value of each metric (what fit, validate and test report)."""
        return {name: float(value) for name, value in self.trainer.callback_metrics.items()}

    def _write_evaluation(self) -> None:
        """``metrics.json`` of the evaluation folder: what was evaluated and every metric."""
        if not self.trainer.is_global_zero:
            return
        record = {
            "command": self.subcommand,
            "ckpt_path": self.config_value(self.config, "ckpt_path"),
            "metrics": self.last_metrics(),
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / "metrics.json"
        write_atomically(path, lambda f: f.write(json.dumps(record, indent=2).encode()))
        print(
            f"lit_rl: {self.subcommand} of {record['ckpt_path']}: {_metrics_text(record['metrics'])}; written to {path}"
        )

    def finish_run(self) -> None:
        """End the W&B runs this run started: the next run in this process (``lit_rl.api.train`` in
        a loop) starts its own instead of logging into this one's."""
        for logger in getattr(getattr(self, "trainer", None), "loggers", []):
            if isinstance(logger, WandbLogger):
                finish_wandb_run(logger, opened_before=getattr(self, "_open_wandb_run", None))

    def _plottable(self) -> bool:
        """Whether ``plot`` finds this run's metrics in its directory: a W&B logger writing into it,
        or a CSVLogger writing below it."""
        run_dir = self.run_dir.resolve()
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.save_dir is not None:
                if Path(logger.save_dir).resolve() == run_dir:
                    return True
            elif isinstance(logger, CSVLogger) and Path(logger.log_dir).resolve().is_relative_to(run_dir):
                return True
        return False

    def after_fit(self) -> None:
        """One summary for the person who started the run: where things are and how to look at them."""
        if not self.trainer.is_global_zero or self.trainer.interrupted:
            return
        metrics = self.last_metrics()
        lines = [f"lit_rl: finished {self.run_dir}"]
        if metrics:
            lines.append(f"  last metrics: {_metrics_text(metrics)}")
        last = self.run_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            lines.append(f"  checkpoint:   {last}")
        videos = Path(self.trainer.default_root_dir) / "videos"
        if videos.is_dir():
            lines.append(f"  videos:       {videos}")
        if self._plottable():
            plot = lit_rl_command("plot", self.run_dir, "--out", self.run_dir / "curves.png")
            lines.append(f"  curves:       {plot}")
        print("\n".join(lines))

    def _check_checkpoint_spaces(self) -> None:
        spaces = getattr(self, "_checkpoint_spaces", None)
        ckpt_path = self.config_value(self.config, "ckpt_path")
        if spaces is None or ckpt_path is None:
            return
        here = (self.datamodule.observation_dim, self.datamodule.action_bounds)
        if spaces[0] is not None and (spaces[0], spaces[1]) != here:
            raise ConfigError(
                f"--ckpt_path {ckpt_path} was trained with observations of size {spaces[0]} and action bounds "
                f"{spaces[1]}; env {self.datamodule.env_config.id} here has {here[0]} and {here[1]}"
            )

    def _check_checkpoint_replay(self) -> None:
        """The checkpoint was written by as many processes as this run has, and every rank's replay
        file it names is there, whole."""
        state, ckpt_path = getattr(self, "_checkpoint_data", None), self.config_value(self.config, "ckpt_path")
        if state is None or ckpt_path is None:
            return
        records = state.get(RANKS_KEY, [state])
        if len(records) != self.trainer.world_size:
            message = checkpoint_world_message(f"--ckpt_path {ckpt_path}", len(records), self.trainer.world_size)
            raise ConfigError(message)
        for record in records:
            here = self.datamodule.replay_settings(self.trainer.world_size)
            problem = replay_file_problem(record, Path(ckpt_path).parent, here=here)
            if problem is not None:
                raise ConfigError(
                    f"--ckpt_path {ckpt_path} {problem}; resume from a step=<env_steps>.ckpt (no replay) or with "
                    "--resume false"
                )

    def _checkpoint_bytes(self) -> int:
        """Disk space the run's checkpoints need at most: a full replay file twice (the new one is
        written before the old one is deleted), and the model and optimizer states a few times."""
        model_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        needed = 4 * 3 * model_bytes  # weights and two Adam moments, in last.ckpt, its .tmp and one periodic
        if self.config_value(self.config_init, "full_save"):
            data = self.datamodule
            cfg = data.replay_config
            rows = cfg.size // data.num_envs
            per_transition = ReplayBuffer.transition_bytes(data.observation_dim, len(data.action_bounds[0]))
            needed += 2 * rows * data.num_envs * per_transition
        return needed

    @staticmethod
    def _default_name(config) -> str:
        algorithm = config.model.class_path.rsplit(".", 1)[-1].lower()
        return f"{algorithm}_{config.data.init_args.env.id}"

    def _configure_loggers(self, config, fitting: bool) -> None:
        """Loggers write into the output folder (the run's, an evaluation's own). A ``save_dir``
        given is kept, except a run directory: that is what this method filled in when the config
        was saved there, and the W&B id and name that came with it belong to that run."""
        loggers = config.trainer.logger
        if not loggers or loggers is True:
            return
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = logger.init_args
            filled_for = None
            if "save_dir" in init_args:
                if init_args.save_dir is not None and (Path(init_args.save_dir) / "config.yaml").is_file():
                    filled_for = Path(init_args.save_dir).resolve()
                if init_args.save_dir in (None, ".") or filled_for is not None:
                    init_args.save_dir = str(self.output_dir)
            if logger.class_path.endswith("WandbLogger"):
                resumed = fitting and not self._move_aside and filled_for == self.run_dir.resolve()
                if filled_for is not None and not resumed:
                    if init_args.name == filled_for.name:
                        init_args.name = None
                    id_file = filled_for / WANDB_ID_FILE
                    if id_file.is_file() and init_args.id == id_file.read_text().strip():
                        init_args.id = None
                evaluation = f"{self.run_dir.name}-{self.output_dir.name}"
                init_args.name = init_args.name or (self.run_dir.name if fitting else evaluation)
                if fitting and init_args.id is None:
                    init_args.id = self._wandb_id = self._wandb_run_id()

    def _wandb_run_id(self) -> str:
        """One W&B run per run directory: a resumed run continues the same W&B history (the id
        file is written in ``before_fit``)."""
        path = self.run_dir / WANDB_ID_FILE
        if not self._move_aside and path.is_file() and (run_id := path.read_text().strip()):
            return run_id
        return secrets.token_hex(4)

    def instantiate_trainer(self, **kwargs):
        trainer_config = {**self.config_value(self.config_init, "trainer", default={}), **kwargs}
        if trainer_config.get("default_root_dir") is None:  # run outputs without a logger, e.g. videos/
            trainer_config["default_root_dir"] = str(self.output_dir)
        callbacks = [self.config_value(self.config_init, key) for key in self.callback_keys()]
        if trainer_config.get("enable_checkpointing", True) is not False:
            full_save = self.config_value(self.config_init, "full_save")
            keep = self.config_value(self.config_init, "keep_checkpoints")
            callbacks.append(EnvStepCheckpoint(self.run_dir / "checkpoints", full_save=full_save, keep_last=keep))
        if trainer_config.get("enable_progress_bar", True) is not False:
            callbacks.append(EnvStepProgressBar())
        configured = list(trainer_config.get("callbacks") or [])  # build_trainer extends the list
        trainer = self.build_trainer({**trainer_config, "callbacks": list(configured)}, callbacks)
        strategy = trainer_config.get("strategy", "auto")
        if strategy == "ddp" or (trainer.world_size > 1 and strategy == "auto"):  # ddp on 1 device too
            ddp = {**trainer_config, "callbacks": list(configured), "strategy": ddp_strategy()}
            trainer = self.build_trainer(ddp, callbacks)
        self._open_wandb_run = None  # a W&B run open before this one (the user's wandb.init): not finished here
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                drop_wandb_anonymous(logger)
                self._open_wandb_run = sys.modules["wandb"].run if "wandb" in sys.modules else None
        cores = _cores()
        if isinstance(trainer.accelerator, CPUAccelerator) and trainer.num_devices > cores and self._launcher:
            log.warning(
                "--trainer.devices %d starts %d training processes on %d CPU cores: they take turns on the cores, "
                "so the run is slower than with --trainer.devices %d or fewer",
                trainer.num_devices,
                trainer.num_devices,
                cores,
                cores,
            )
        precision = str(trainer_config.get("precision") or "")
        if (
            isinstance(trainer.accelerator, CPUAccelerator)
            and precision.startswith("bf16")
            and cpu_bf16_native() is False
        ):
            log.warning(
                "--trainer.precision %s on a CPU without bfloat16 instructions (none of %s in /proc/cpuinfo): "
                "its matrix products are emulated, several times slower than --trainer.precision 32-true",
                precision,
                ", ".join(BF16_CPU_FLAGS),
            )
        if start_method(trainer.strategy) != "popen":
            raise ConfigError(
                f"--trainer.strategy {trainer_config['strategy']}: spawned or forked processes hand only the weights "
                "back, not the envs, replay and step counters; use ddp (the default with several devices)"
            )
        return trainer


def _plain(value):
    """A hyperparameter as plain JSON values (tuples as lists), to compare the config's with a checkpoint's."""
    return json.loads(json.dumps(value, default=list))


def _metrics_text(metrics: dict[str, float]) -> str:
    shown = [name for name in ("test/episode_return", "test/episode_length", "env_steps") if name in metrics]
    return ", ".join(f"{name} {metrics[name]:.6g}" for name in shown or sorted(metrics))


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86's AVX-512 BF16 and AMX, ARM's BF16 extension


def cpu_bf16_native(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes bfloat16 matrix products in hardware (``BF16_CPU_FLAGS`` among the
    flags of ``/proc/cpuinfo``, or of ``cpuinfo`` when given); None where that cannot be read. Without
    it oneDNN emulates bfloat16, and bf16-mixed runs several times slower than 32-true."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = {
        flag for line in cpuinfo.splitlines() if line.split(":")[0].strip() in ("flags", "Features")
        for flag in line.split(":", 1)[1].split()
    }  # fmt: skip
    return bool(flags & set(BF16_CPU_FLAGS)) if flags else None


def _cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _option(argv: list[str], names: tuple[str, ...]) -> tuple[int, str] | None:
    """``(index of the value, value)`` of the last ``--name VALUE`` or ``--name=VALUE`` in ``argv``."""
    found = None
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in names:
            found = (i, value) if equals else (i + 1, argv[i + 1]) if i + 1 < len(argv) else None
    return found


def with_run_config(argv: list[str]) -> list[str]:
    """``validate``/``test`` arguments with a run folder given as ``--ckpt_path`` replaced by its
    ``checkpoints/last.ckpt``, and, without ``--config``, the run's ``config.yaml`` as the config
    (first, so the other arguments still override it); other arguments are returned as they are."""
    if not argv or argv[0] not in EVALUATIONS:
        return argv
    ckpt = _option(argv, ("--ckpt_path",))
    if ckpt is None or ckpt[1] in LIGHTNING_CKPT_KEYWORDS:
        return argv
    index, given = ckpt
    path = checkpoint_of(Path(given))
    if path != Path(given):
        argv[index] = f"--ckpt_path={path}" if argv[index].startswith("--ckpt_path=") else str(path)
    if _option(argv, ("--config", "-c")) is not None:
        return argv
    if not path.is_file():
        raise ConfigError(f"--ckpt_path {given}: no such checkpoint file")
    config = run_dir_of(path) / "config.yaml"
    if not config.is_file():
        raise ConfigError(
            f"--ckpt_path {given}: the run's {config} is missing (it names the env); give the config with --config"
        )
    return [argv[0], "--config", str(config), *argv[1:]]


def config_files(argv: list[str]) -> list:
    """The contents of every ``--config`` in ``argv`` (a file, or YAML given inline), as parsed YAML."""
    found = []
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name not in ("--config", "-c") or (not equals and i + 1 >= len(argv)):
            continue
        value = value if equals else argv[i + 1]
        try:
            found.append(yaml.safe_load(Path(value).read_text() if Path(value).is_file() else value))
        except (OSError, ValueError, yaml.YAMLError):  # jsonargparse has reported it already
            continue
    return found


def _started_by_user() -> bool:
    """True in the process the user started, false in the other ranks' processes: those Lightning
    starts (LOCAL_RANK/NODE_RANK), torchrun's (RANK) and srun's (SLURM_PROCID). Only that process
    prepares the run directory."""
    return all(int(os.environ.get(var, 0)) == 0 for var in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


def _raised_outside_jsonargparse(error: BaseException) -> BaseException:
    """jsonargparse wraps a class's own error in long union-type messages: the error itself is the
    first one in the chain that was not raised inside jsonargparse."""
    found = error
    while found is not None:
        tb = found.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is None or "jsonargparse" not in tb.tb_frame.f_code.co_filename:
            return found
        found = found.__cause__ or found.__context__
    return error


def main(args=None) -> None:
    """``python -m lit_rl fit|validate|test``: a ConfigError is one line and exit status 2, as
    argparse's errors."""
    try:
        LitRLCLI(args=args)
    except ConfigError as error:
        print(f"lit_rl: error: {error}", file=sys.stderr)
        sys.exit(2)
    except AlreadyFinished as finished:
        print(f"lit_rl: {finished}", file=sys.stderr)
