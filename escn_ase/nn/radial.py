"""Radial basis of edge lengths."""

from __future__ import annotations

import torch

__all__ = ["GaussianBasis", "cosine_cutoff_envelope"]

SUBNORMAL_GUARD = -80.0


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
        exponent = self.coeff * (distances[:, None] - self.offsets[None, :]) ** 2
        # Gaussians below exp(-80) = 1.8e-35 are set to exactly zero: in float32 most of them
        # would be subnormal numbers, which make exp, and every product with this basis (the edge
        # MLP of each layer), 10-100x slower on x86 CPUs.  The change is below 2e-35 per entry.
        return torch.exp(exponent.clamp(min=SUBNORMAL_GUARD)).masked_fill(exponent < SUBNORMAL_GUARD, 0.0)


def cosine_cutoff_envelope(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``(n_edges,)`` smooth weight, 1 at d = 0 and 0 with zero slope at d = cutoff."""
    ratio = (distances / cutoff).clamp(max=1.0)
    return 0.5 * (torch.cos(torch.pi * ratio) + 1.0)
