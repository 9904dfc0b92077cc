"""Radial basis of edge lengths."""

from __future__ import annotations

import torch

__all__ = ["GaussianBasis", "cosine_cutoff_envelope"]


class GaussianBasis(torch.nn.Module):
    """Gaussians ``exp(c (d - o_k)^2)`` at ``o = linspace(0, cutoff, n_basis)``.

    The width is ``basis_width_scalar`` times the spacing ``cutoff / (n_basis - 1)``, with
    ``c = -1 / (2 width^2)``; the spacing is taken from the float32 offsets as the reference does.
    """

    def __init__(self, cutoff: float, n_basis: int, basis_width_scalar: float) -> None:
        super().__init__()
        if n_basis < 2:
            raise ValueError(f"need at least 2 Gaussians, got {n_basis}")
        offsets = torch.linspace(0.0, cutoff, n_basis, dtype=torch.float32)
        self.coeff = -0.5 / (basis_width_scalar * (offsets[1] - offsets[0])).item() ** 2
        self.n_basis = n_basis
        self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """``(n_edges,)`` -> ``(n_edges, n_basis)``."""
        return torch.exp(self.coeff * (distances[:, None] - self.offsets[None, :]) ** 2)


def cosine_cutoff_envelope(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``(n_edges,)`` smooth weight, 1 at d = 0 and 0 with zero slope at d = cutoff."""
    ratio = (distances / cutoff).clamp(max=1.0)
    return 0.5 * (torch.cos(torch.pi * ratio) + 1.0)
