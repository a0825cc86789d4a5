"""What a user runs: ``python -m lit_rl <command>`` (the LightningCLI in ``cli``, and ``convert``,
``export``, ``sweep``, ``compare``, ``plot``, ``algorithms``)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def interpreter() -> str:
    """The Python that runs this process, as a command the reader can type here: relative to the
    current folder when it lives below it (``.venv/bin/python`` in the project's root), else its
    full path. ``python`` alone may be another Python, one without lit_rl's packages."""
    executable = Path(sys.executable or "python")
    try:
        shown = str(executable.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(executable)
    return shown if "/" in shown else f"./{shown}"


def lit_rl_command(*args: str | Path) -> str:
    """``<interpreter> -m lit_rl ARGS``, quoted for a shell: what printed commands say."""
    return shlex.join([interpreter(), "-m", "lit_rl", *map(str, args)])
