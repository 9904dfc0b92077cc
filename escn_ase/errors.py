"""Exceptions raised for bad input; each names the problem instead of failing deep inside torch."""

from __future__ import annotations

__all__ = [
    "ESCNError",
    "CheckpointError",
    "InvalidStructureError",
    "UnsupportedElementError",
    "StructureTooLargeError",
    "NeighborTieWarning",
    "ScreeningError",
]


class ESCNError(Exception):
    """Base class of escn_ase's errors."""


class CheckpointError(ESCNError, ValueError):
    """A checkpoint file is unreadable, truncated, of another architecture, or does not match its config."""


class InvalidStructureError(ESCNError, ValueError):
    """The structure cannot be evaluated: empty, NaN/inf coordinates, a periodic axis without a cell vector."""


class UnsupportedElementError(InvalidStructureError):
    """The structure holds an element that the model was not built or trained for."""


class StructureTooLargeError(ESCNError, MemoryError):
    """The estimated memory of an evaluation exceeds what the device has available."""


class ScreeningError(ESCNError, RuntimeError):
    """Every job of an adsorption screening failed: there is no result to report."""


class NeighborTieWarning(UserWarning):
    """``max_neighbors`` truncation cut through a shell of (nearly) equidistant neighbours."""
