"""Checkpoint I/O: fairchem-core 1.x / OCP eSCN files and escn_ase's own format, detected automatically."""

from __future__ import annotations

import os

from ..errors import CheckpointError
from .common import LoadedModel, read_checkpoint_file
from .fairchem import escn_config_from_fairchem, is_fairchem_checkpoint, load_fairchem_checkpoint
from .native import FORMAT_VERSION, is_native_checkpoint, load_native_checkpoint, save_checkpoint

__all__ = ["LoadedModel", "load_checkpoint", "save_checkpoint", "escn_config_from_fairchem", "FORMAT_VERSION"]


def load_checkpoint(path: str | os.PathLike) -> LoadedModel:
    """Load an eSCN checkpoint of either format (float32, CPU, eval mode)."""
    path = os.fspath(path)
    data = read_checkpoint_file(path)
    if is_native_checkpoint(data):
        return load_native_checkpoint(data, path)
    if is_fairchem_checkpoint(data):
        return load_fairchem_checkpoint(data, path)
    raise CheckpointError(
        f"{path}: not an eSCN checkpoint: expected an escn_ase file (key 'format') or a fairchem trainer "
        f"file (keys 'state_dict' and 'config'); found keys {sorted(map(str, data))[:10]}"
    )
