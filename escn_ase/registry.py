"""Where checkpoints come from: a path, a registered name, or the default model in ``models/``."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CheckpointError

__all__ = ["resolve_checkpoint", "default_model_path", "DEFAULT_MODEL_NAME"]

DEFAULT_MODEL_NAME = "escn-emt-small"


def default_model_path() -> Path:
    """Path of the default model: ``$ESCN_ASE_DEFAULT_MODEL``, else ``models/<DEFAULT_MODEL_NAME>.pt``."""
    override = os.environ.get("ESCN_ASE_DEFAULT_MODEL")
    if override:
        return Path(override)
    for root in (Path(__file__).resolve().parent / "models", Path(__file__).resolve().parent.parent / "models"):
        candidate = root / f"{DEFAULT_MODEL_NAME}.pt"
        if candidate.exists():
            return candidate
    return Path(__file__).resolve().parent.parent / "models" / f"{DEFAULT_MODEL_NAME}.pt"


def resolve_checkpoint(checkpoint: str | os.PathLike | None) -> str:
    """A readable file path for ``checkpoint`` (path, or None for the default model)."""
    if checkpoint is None:
        path = default_model_path()
        if not path.exists():
            raise CheckpointError(
                f"no default model found at {path}; pass the path of an eSCN checkpoint, "
                "e.g. ESCNCalculator('escn_l4_m2_lay12_2M_s2ef.pt')"
            )
        return str(path)
    path = Path(checkpoint).expanduser()
    if path.exists():
        return str(path)
    raise FileNotFoundError(f"checkpoint not found: {checkpoint} (not a file path)")
