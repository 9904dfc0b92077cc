"""escn_ase: eSCN (Equivariant Spherical Channel Network) behind ASE's Calculator interface."""

from .calculator import ESCNCalculator
from .checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from .errors import (
    CheckpointError,
    ESCNError,
    InvalidStructureError,
    NeighborTieWarning,
    StructureTooLargeError,
    UnsupportedElementError,
)
from .model import ESCN, ESCNConfig

__version__ = "0.1.0"

__all__ = [
    "ESCN",
    "ESCNCalculator",
    "ESCNConfig",
    "CheckpointError",
    "ESCNError",
    "InvalidStructureError",
    "LoadedModel",
    "NeighborTieWarning",
    "StructureTooLargeError",
    "UnsupportedElementError",
    "load_checkpoint",
    "save_checkpoint",
]
