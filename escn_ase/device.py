"""Which torch device and floating-point type a model runs on."""

from __future__ import annotations

import torch

__all__ = ["DTYPES", "resolve_device"]

# The floating-point types a model can run in, by the names users give.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names as torch.device, refusing unavailable CUDA."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(
            f"device {device!r} is not a device torch knows: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from error
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: escn_ase runs on 'cpu' or 'cuda' devices ('auto' picks one)")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available in this torch build")
    return resolved
