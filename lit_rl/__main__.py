"""``python -m lit_rl COMMAND ...``; ``python -m lit_rl --help`` lists the commands."""

import importlib
import sys
from pathlib import Path

# The LightningCLI's commands (lit_rl.commands.cli.LitRLCLI.subcommands; a test keeps the two equal).
TRAINER_COMMANDS = {
    "fit": "train (or resume) a run from a config: fit --config configs/ddpg_pendulum.yaml",
    "validate": "play a checkpoint's test episodes: validate --config C --ckpt_path last",
    "test": "the same through Lightning's test loop: test --config C --ckpt_path last",
}
# Commands outside the LightningCLI, each a module with ``main(argv) -> exit status``, imported
# only when used (convert and plot start without importing Lightning).
COMMANDS = {
    "algorithms": ("lit_rl.commands.catalog", "the registered algorithms and their config keys"),
    "compare": ("lit_rl.commands.compare", "configs over seeds: IQM, bootstrap intervals, P(improvement)"),
    "convert": ("lit_rl.commands.convert", "a deprl config -> a lit_rl config"),
    "export": ("lit_rl.commands.export", "a checkpoint's policy as ONNX or TorchScript"),
    "plot": ("lit_rl.commands.plot", "learning curves of runs"),
    "sweep": ("lit_rl.commands.sweep", "overrides x seeds as separate fit runs, resumable"),
}


def usage() -> str:
    lines = ["usage: python -m lit_rl COMMAND [--help] ...", "", "commands:"]
    described = {**TRAINER_COMMANDS, **{name: text for name, (_, text) in COMMANDS.items()}}
    lines += [f"  {name:<11} {text}" for name, text in described.items()]
    lines += ["", "python -m lit_rl COMMAND --help describes a command; docs/cli.md describes them all."]
    return "\n".join(lines)


def missing_config(argv: list[str]) -> str | None:
    """The ``--config`` file that does not exist, found before Lightning is imported (10-20 s).
    A value with a colon is left to jsonargparse: it may be a config given as a YAML string."""
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name in ("--config", "-c"):
            value = value or (argv[i + 1] if i + 1 < len(argv) else "")
            if value and ":" not in value and not Path(value).exists():
                return value
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else None
    if command in COMMANDS:
        return importlib.import_module(COMMANDS[command][0]).main(argv[1:])
    if command in (None, "-h", "--help"):
        print(usage(), file=sys.stdout if command else sys.stderr)
        return 0 if command else 2
    if command not in TRAINER_COMMANDS and not command.startswith("-"):
        commands = ", ".join([*TRAINER_COMMANDS, *COMMANDS])
        print(f"lit_rl: error: no command {command!r}; the commands: {commands}", file=sys.stderr)
        return 2
    if (path := missing_config(argv)) is not None:
        print(f"lit_rl: error: --config {path}: no such file", file=sys.stderr)
        return 2
    from lit_rl.commands.cli import main as cli_main

    cli_main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
