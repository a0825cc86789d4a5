import importlib
import sys

# Commands outside the LightningCLI, each a module with ``main(argv) -> exit status``, imported
# only when used (convert and plot start without importing Lightning).
COMMANDS = {
    "algorithms": "lit_rl.catalog",  # the registered algorithms and their config keys
    "compare": "lit_rl.compare",  # configs over seeds: IQM, bootstrap intervals, P(improvement)
    "convert": "lit_rl.convert",  # a deprl config -> a lit_rl config
    "export": "lit_rl.export",  # a checkpoint's policy as ONNX or TorchScript
    "plot": "lit_rl.plot",  # learning curves
    "sweep": "lit_rl.sweep",  # overrides x seeds as separate fit runs, resumable
}


def main() -> None:
    """``python -m lit_rl algorithms|compare|convert|export|plot|sweep ...``; everything else is the LightningCLI."""
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        raise SystemExit(importlib.import_module(COMMANDS[sys.argv[1]]).main(sys.argv[2:]))
    from lit_rl.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
