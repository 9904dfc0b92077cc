"""Edge frames and Wigner-D matrices (e3nn conventions, Y is the polar axis).

``D(R)`` is e3nn's real Wigner-D matrix (``o3.Irrep(l, 1).D_from_matrix``): a representation,
``D(R1 @ R2) = D(R1) @ D(R2)``, block diagonal in ``l``, with ``Y(R x) = D(R) Y(x)`` for e3nn's
real spherical harmonics ``Y``.  If ``c`` are the coefficients of a function ``f`` on the
sphere, ``D(R) @ c`` are those of ``f o R^-1``.

How it is computed: on a fixed set of ``n`` well-spread unit points ``P`` (columns),
``Y_l(R P) = D_l(R) Y_l(P)``, so ``D_l(R) = Y_l(R P) Y_l(P)^+``.  The pseudo-inverses are
constants; per edge the cost is one evaluation of the harmonics at ``n`` rotated points and
one contraction, for all ``l`` at once.  Unlike an Euler-angle route this is a polynomial in
the entries of ``R``, so its gradient is finite everywhere (needed for forces by autograd).

Edge frame: for an edge vector ``v`` (neighbour minus centre, plus the periodic shift) the
rotation ``R`` maps ``v / |v|`` onto ``+y``.  Its rows are ``(z', x', -y')`` with
``x' = v / |v|``, ``z' = normalise(x' x u)``, ``y' = x' x z'`` for a helper vector ``u``.
The reference draws ``u`` at random on every call; here ``u`` is the Cartesian axis least
aligned with the edge (the first such axis on ties), so the forward pass is deterministic.

The rule switches where two components of the edge direction have equal magnitude, and the frame
then turns about the edge by a finite angle.  Whether that reaches the energy depends on the model:
the reference blocks (``activation="s2_grid"``: SiLU on an edge-frame grid of 2 mmax + 1 azimuths)
are not invariant to such a roll, so their outputs step by a small amount there
(``benchmarks/bench_frame_rule.py``); the gated blocks (``activation="gate"``) commute with every
roll, so their energy does not depend on the rule and stays smooth.
"""

from __future__ import annotations

import math

import torch

from .cache import tensor_cache
from .harmonics import spherical_harmonics_unnormalized

__all__ = ["edge_rotation_matrices", "wigner_d_rows"]


def edge_rotation_matrices(edge_vectors: torch.Tensor) -> torch.Tensor:
    """Rotation matrices that map each edge direction onto +y.

    Args:
        edge_vectors: ``(n_edges, 3)``, non-zero.
    Returns:
        ``(n_edges, 3, 3)``; ``R[e] @ edge_vectors[e] / |edge_vectors[e]| = (0, 1, 0)``.
    """
    x_axis = edge_vectors / torch.linalg.norm(edge_vectors, dim=1, keepdim=True)
    helper_axis = torch.nn.functional.one_hot(x_axis.detach().abs().argmin(dim=1), 3).to(x_axis.dtype)
    z_axis = torch.linalg.cross(x_axis, helper_axis, dim=1)
    z_axis = z_axis / torch.linalg.norm(z_axis, dim=1, keepdim=True)
    y_axis = torch.linalg.cross(x_axis, z_axis, dim=1)
    return torch.stack([z_axis, x_axis, -y_axis], dim=1)


def _fibonacci_points(n_points: int) -> torch.Tensor:
    i = torch.arange(n_points, dtype=torch.float64) + 0.5
    polar = torch.arccos(1 - 2 * i / n_points)
    azimuth = math.pi * (1 + 5**0.5) * i
    return torch.stack(
        [torch.cos(azimuth) * torch.sin(polar), torch.sin(azimuth) * torch.sin(polar), torch.cos(polar)], dim=1
    )


@tensor_cache
def _probe_points_and_inverse(lmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Probe points ``(n, 3)`` and the block pseudo-inverse ``W (n_coeffs, n, n_coeffs)`` in float64.

    ``W[r, k, c] = pinv(Y_l(P))[k, c]`` when ``r`` and ``c`` both belong to degree ``l``, else 0.
    ``n = 2 (lmax + 1)^2`` Fibonacci points keep every ``Y_l(P)`` condition number near 1.
    """
    points = _fibonacci_points(2 * (lmax + 1) ** 2)
    harmonics = spherical_harmonics_unnormalized(lmax, points)  # (n, n_coeffs)
    n_coeffs = (lmax + 1) ** 2
    inverse = torch.zeros(n_coeffs, points.shape[0], n_coeffs, dtype=torch.float64)
    for l in range(lmax + 1):
        block = slice(l * l, (l + 1) ** 2)
        pinv = torch.linalg.pinv(harmonics[:, block].t())  # (n, 2l+1)
        inverse[block, :, block] = pinv[None]
    return points, inverse


@tensor_cache
def _probe_tables(
    lmax: int, rows: tuple[int, ...] | None, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probe points and the pseudo-inverse restricted to ``rows``, in ``dtype`` on ``device``."""
    points, inverse = _probe_points_and_inverse(lmax)
    if rows is not None:
        inverse = inverse[list(rows)]
    return points.to(dtype=dtype, device=device), inverse.to(dtype=dtype, device=device).contiguous()


def wigner_d_rows(rotations: torch.Tensor, lmax: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Rows of the block-diagonal Wigner-D matrix ``D(R)`` for all ``l <= lmax`` at once.

    Args:
        rotations: ``(n_edges, 3, 3)`` proper rotations.
        lmax: highest degree.
        rows: optional ``(n_rows,)`` l-major indices of the rows wanted, in the order wanted.
    Returns:
        ``(n_edges, n_rows, n_coeffs)`` (``n_rows = n_coeffs`` when ``rows`` is None).
    """
    row_key = None if rows is None else tuple(int(r) for r in rows.tolist())
    points, inverse = _probe_tables(lmax, row_key, rotations.dtype, rotations.device)
    if rows is not None:
        rows = rows.to(rotations.device)
    rotated = torch.einsum("kj,eij->eki", points, rotations)  # (n_edges, n, 3): R p_k
    harmonics = spherical_harmonics_unnormalized(lmax, rotated)  # (n_edges, n, n_coeffs)
    if rows is not None:
        # index_select, not advanced indexing: its backward is an index_add, several times faster than
        # the serial accumulating index_put that advanced indexing's backward runs on CPUs.
        harmonics = harmonics.index_select(2, rows)
    return torch.einsum("ekr,rkc->erc", harmonics, inverse)
