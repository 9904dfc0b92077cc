"""What every checkpoint reader shares: safe file reading, the loaded-model record, weight checks."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..model import ESCN, ESCNConfig

__all__ = ["LoadedModel", "read_checkpoint_file", "load_weights", "weights_sha256"]


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
    _verify_archive(path)
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


def _verify_archive(path: Path) -> None:
    """Check the CRC-32 of every record of a torch zip archive (torch.load does not): a damaged tensor
    would otherwise load as wrong weights.  Files in torch's legacy (non-zip) format have no checksums."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: the checkpoint archive is damaged ({exc})") from exc
    if damaged is not None:
        raise CheckpointError(
            f"{path}: the checkpoint is corrupt: record {damaged!r} fails its checksum (the file was damaged "
            "after it was written); download or copy it again"
        )


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the tensors of ``state_dict`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_finite_weights(state_dict: dict[str, torch.Tensor], path: str) -> None:
    """Refuse weights or scaling buffers that hold NaN or inf (they would give NaN or inf energies)."""
    bad = [
        name
        for name, tensor in state_dict.items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise CheckpointError(f"{path}: non-finite values (NaN or inf) in {_short_list(sorted(bad))}")


def load_weights(model: ESCN, state_dict: dict[str, torch.Tensor], path: str) -> None:
    """Load ``state_dict`` into ``model``, naming missing, unexpected, mis-shaped, non-float and
    non-finite entries."""
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
    not_float = [
        f"{name} ({state_dict[name].dtype})"
        for name in expected
        if name in state_dict and expected[name].is_floating_point() and not state_dict[name].is_floating_point()
    ]
    if not_float:
        problems.append(f"integer or boolean tensors where weights are expected {_short_list(not_float)}")
    if problems:
        raise CheckpointError(f"{path}: weights do not match the model config: " + "; ".join(problems))
    check_finite_weights(state_dict, path)
    model.load_state_dict(state_dict, strict=True)


def _short_list(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} in all)"
