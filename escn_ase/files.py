"""Writing files so that an interrupted job never leaves a truncated one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Call ``write(temporary_path)``, then move the finished file onto ``path`` in one step.

    A crash or kill during ``write`` leaves the old ``path`` (or none) and a ``.tmp`` file, never a
    half-written ``path``.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)
