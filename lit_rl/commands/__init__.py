"""What a user runs: ``python -m lit_rl <command>`` (the LightningCLI in ``cli``, and ``convert``,
``export``, ``sweep``, ``compare``, ``plot``, ``algorithms``)."""
