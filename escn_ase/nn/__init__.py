"""Neural-network layers of eSCN: radial basis, SO(2) convolution, blocks and heads."""

from .blocks import EdgeBlock, EdgeChunk, EdgeGraph, EnergyBlock, ForceBlock, LayerBlock, MessageBlock
from .oracle import message_oracle, so2_convolution_oracle
from .radial import GaussianBasis, cosine_cutoff_envelope
from .repulsion import ZBLRepulsion
from .so2 import SO2Convolution, SO2OrderMap

__all__ = [
    "EdgeBlock",
    "EdgeChunk",
    "EdgeGraph",
    "EnergyBlock",
    "ForceBlock",
    "GaussianBasis",
    "LayerBlock",
    "MessageBlock",
    "SO2Convolution",
    "SO2OrderMap",
    "ZBLRepulsion",
    "cosine_cutoff_envelope",
    "message_oracle",
    "so2_convolution_oracle",
]
