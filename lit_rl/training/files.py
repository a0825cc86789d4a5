"""Crash-safe files: every file lit_rl writes (checkpoints, replay files, videos, the W&B id)
appears whole under its name or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

EVAL_DIR = "eval"  # <run_dir>/eval/<evaluation>/: validate's and test's outputs, never read as training results


def run_dir_of(ckpt_path: Path) -> Path:
    """The run directory a checkpoint belongs to (``<run_dir>/checkpoints/<file>``)."""
    ckpt_path = Path(ckpt_path).resolve()
    return ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent


def fsync_dir(path: Path) -> None:
    """Make the renames in ``path`` durable (a rename lives in the directory's own data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replaced_atomically(path: Path, tmp: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (``<path>.tmp`` unless given) for the block to
    write; after the block it is fsynced and renamed over ``path``: a reader (or a run resumed
    after a crash) sees the old file or the new one, never a partial one. On any error the
    temporary file is removed and the old file is untouched."""
    tmp = tmp or path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """``write`` into a file that replaces ``path`` atomically (``replaced_atomically``)."""
    try:
        with replaced_atomically(path) as tmp, open(tmp, "wb") as f:
            write(f)
    except RuntimeError as error:
        if isinstance(error.__context__, OSError):
            # torch's zip writer hides the OS error (e.g. a full disk) behind its own
            cause = error.__context__
            raise OSError(cause.errno, f"could not write {path}: {cause.strerror}") from error
        raise
