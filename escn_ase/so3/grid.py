"""Matrices between spherical-harmonic coefficients and S2 grids, and sphere sample points.

Grids follow e3nn's ``ToS2Grid`` / ``FromS2Grid`` with ``normalization="integral"``:
``res_beta`` polar rings at ``beta_b = (b + 1/2) pi / res_beta`` about the Y axis and ``res_alpha``
equally spaced azimuths ``alpha_a = 2 pi a / res_alpha``.  ``from_grid`` includes the
Kostelec-Rockmore quadrature weights, so ``from_grid @ to_grid`` is the identity on
band-limited functions whenever the grid is fine enough.
"""

from __future__ import annotations

import math

import torch

from .cache import tensor_cache
from .layout import coefficient_layout

__all__ = ["grid_resolution", "to_grid_matrix", "from_grid_matrix", "sphere_sample_points"]

# CalcSpherePoints of the reference weights each Fibonacci point by its inverse local density,
# using a Gaussian kernel exp(-|p_i - p_k|^2 / DENSITY_KERNEL_WIDTH); parity needs the same points.
DENSITY_KERNEL_WIDTH = 0.5 * 0.3


def grid_resolution(lmax: int, mmax: int) -> tuple[int, int]:
    """``(res_beta, res_alpha)`` of the grid used for degree ``lmax`` and order ``mmax``.

    ``res_beta = 2 (lmax + 1)``; ``res_alpha = 2 mmax + 1``, or ``2 (mmax + 1) + 1`` when
    ``mmax == lmax`` (the reference's choice; parity needs the same grids).
    """
    res_beta = 2 * (lmax + 1)
    res_alpha = 2 * (mmax + 1) + 1 if lmax == mmax else 2 * mmax + 1
    return res_beta, res_alpha


@tensor_cache
def _grid_matrices_float64(lmax: int, mmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    from e3nn.o3 import FromS2Grid, ToS2Grid

    res = grid_resolution(lmax, mmax)
    previous_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        to_grid = ToS2Grid(lmax, res, normalization="integral", dtype=torch.float64)
        from_grid = FromS2Grid(res, lmax, normalization="integral", dtype=torch.float64)
    finally:
        torch.set_default_dtype(previous_default)
    # to[b, a, i] = sum_m shb[m, b, i] sha[a, m]; same contraction for from.
    to_mat = torch.einsum("mbi,am->bai", to_grid.shb, to_grid.sha).reshape(res[0] * res[1], -1)
    from_mat = torch.einsum("am,mbi->bai", from_grid.sha, from_grid.shb).reshape(res[0] * res[1], -1)
    return to_mat, from_mat


def _columns(lmax: int, mmax: int, layout: str) -> torch.Tensor:
    lay = coefficient_layout(lmax, mmax)
    if layout == "mmajor":
        return lay.mmajor
    if layout == "lmajor":
        return torch.arange(lay.n_coeffs)
    raise ValueError(f"layout must be 'mmajor' or 'lmajor', got {layout!r}")


def to_grid_matrix(
    lmax: int, mmax: int, *, layout: str = "lmajor", dtype: torch.dtype = torch.float32, device="cpu"
) -> torch.Tensor:
    """``(n_grid, n_cols)`` matrix mapping coefficients to grid values.

    ``layout="lmajor"`` (only for ``mmax == lmax``) takes all l-major coefficients;
    ``layout="mmajor"`` takes the reduced m-major coefficients of ``coefficient_layout(lmax, mmax)``.
    """
    to_mat, _ = _grid_matrices_float64(lmax, mmax)
    if layout == "lmajor" and mmax != lmax:
        raise ValueError("the l-major layout is only defined for mmax == lmax")
    return to_mat[:, _columns(lmax, mmax, layout)].to(dtype=dtype, device=device).contiguous()


def from_grid_matrix(
    lmax: int, mmax: int, *, layout: str = "lmajor", dtype: torch.dtype = torch.float32, device="cpu"
) -> torch.Tensor:
    """``(n_grid, n_cols)`` matrix: ``coeffs[i] = sum_g from[g, i] * values[g]`` (see ``to_grid_matrix``)."""
    _, from_mat = _grid_matrices_float64(lmax, mmax)
    if layout == "lmajor" and mmax != lmax:
        raise ValueError("the l-major layout is only defined for mmax == lmax")
    return from_mat[:, _columns(lmax, mmax, layout)].to(dtype=dtype, device=device).contiguous()


@tensor_cache
def _sphere_points_float32(n_points: int) -> torch.Tensor:
    # Computed in float32 like the reference so that stored and computed points agree bitwise.
    golden_ratio = (1 + 5**0.5) / 2
    i = torch.arange(n_points, dtype=torch.float32).view(-1, 1)
    theta = 2 * math.pi * i / golden_ratio
    phi = torch.arccos(1 - 2 * (i + 0.5) / n_points)
    points = torch.cat(
        [torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], dim=1
    )
    squared_gaps = torch.sum((points.view(1, -1, 3) - points.view(-1, 1, 3)) ** 2, dim=2)
    inverse_density = 1.0 / torch.sum(torch.exp(-squared_gaps / DENSITY_KERNEL_WIDTH), dim=1)
    weight = n_points * inverse_density / torch.sum(inverse_density)
    return points * weight.view(-1, 1)


def sphere_sample_points(n_points: int, dtype: torch.dtype = torch.float32, device="cpu") -> torch.Tensor:
    """``(n_points, 3)`` Fibonacci points scaled by a density weight (norms near, not equal to, 1).

    These are the sample points of eSCN's energy and force heads.
    """
    if n_points < 2:
        raise ValueError(f"need at least 2 sphere sample points, got {n_points}")
    return _sphere_points_float32(n_points).to(dtype=dtype, device=device)
