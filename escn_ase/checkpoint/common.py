"""What every checkpoint reader shares: safe file reading, the loaded-model record, weight checks."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..model import ESCN, ESCNConfig

__all__ = ["LoadedModel", "read_checkpoint_file", "load_weights"]


@dataclass
class LoadedModel:
    """A model and what is known about it.

    Attributes:
        model: the network, in float32 on the CPU, eval mode.
        config: its architecture.
        source: ``"fairchem"``, ``"fairchem-legacy"`` (2023 OCP layout) or ``"escn_ase"``.
        elements: atomic numbers the model covers.
        path: the file it came from.
        metadata: free-form facts (training data, metrics, normalisers ...).
    """

    model: ESCN
    config: ESCNConfig
    source: str
    elements: tuple[int, ...]
    path: str
    metadata: dict = field(default_factory=dict)


def read_checkpoint_file(path: str | os.PathLike) -> dict:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong with the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a directory, not a file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused by torch.load(weights_only=True); the file holds objects other than "
            f"tensors and plain containers, or is not a torch checkpoint ({exc})"
        ) from exc
    except Exception as exc:  # torch raises many types for damaged files (RuntimeError, EOFError, KeyError ...)
        raise CheckpointError(
            f"{path}: could not be read as a torch checkpoint; it is corrupt or truncated "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict at the top level, found {type(data).__name__}")
    return data


def load_weights(model: ESCN, state_dict: dict[str, torch.Tensor], path: str) -> None:
    """Load ``state_dict`` into ``model``, naming missing, unexpected and mis-shaped entries."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = [
        f"{name}: checkpoint {tuple(state_dict[name].shape)} vs config {tuple(expected[name].shape)}"
        for name in expected
        if name in state_dict and tuple(state_dict[name].shape) != tuple(expected[name].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_short_list(unexpected)}")
    if mis_shaped:
        problems.append(f"shape mismatch {_short_list(mis_shaped)}")
    if problems:
        raise CheckpointError(f"{path}: weights do not match the model config: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def _short_list(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} in all)"
