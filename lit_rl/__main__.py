import sys


def main() -> None:
    """``python -m lit_rl convert FILE`` converts a deprl config, ``export`` writes a checkpoint's
    policy as TorchScript, ``plot`` draws learning curves; everything else is the LightningCLI."""
    if len(sys.argv) > 1 and sys.argv[1] == "convert":
        from lit_rl.convert import main as convert_main  # no Lightning import: converting stays fast

        raise SystemExit(convert_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        from lit_rl.export import main as export_main

        raise SystemExit(export_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "plot":
        from lit_rl.plot import main as plot_main

        raise SystemExit(plot_main(sys.argv[2:]))
    from lit_rl.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
