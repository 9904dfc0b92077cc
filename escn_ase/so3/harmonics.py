"""Real spherical harmonics in e3nn order (thin wrapper around e3nn)."""

from __future__ import annotations

import torch

__all__ = ["spherical_harmonics_unnormalized"]


def spherical_harmonics_unnormalized(lmax: int, vectors: torch.Tensor) -> torch.Tensor:
    """``(n, (lmax+1)**2)`` e3nn real spherical harmonics, integral normalisation, of the raw vectors.

    The vectors are *not* normalised first (e3nn ``normalize=False``): eSCN evaluates the
    harmonic polynomials on its density-weighted sphere points, whose norms are not exactly 1.
    """
    from e3nn import o3

    return o3.spherical_harmonics(list(range(lmax + 1)), vectors, normalize=False, normalization="integral")
