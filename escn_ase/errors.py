"""Exceptions raised for bad input; each names the problem instead of failing deep inside torch."""

from __future__ import annotations

__all__ = [
    "ESCNError",
    "ReplicaError",
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


class ReplicaError(ESCNError, RuntimeError):
    """One or more MD replicas of ``run_md_batch`` failed; the others ran to the end and wrote their files.

    ``errors`` maps replica index to its exception; ``summaries`` holds the finished replicas'
    ``MDSummary`` (None where a replica failed).
    """

    def __init__(self, errors: dict, summaries: list) -> None:
        first = min(errors)
        super().__init__(
            f"{len(errors)} of {len(summaries)} replica(s) failed (replica {first}: "
            f"{type(errors[first]).__name__}: {errors[first]}); the others finished"
        )
        self.errors = errors
        self.summaries = summaries


class NeighborTieWarning(UserWarning):
    """``max_neighbors`` truncation cut through a shell of (nearly) equidistant neighbours."""
