"""The first SO(2) layer of a message, computed per node instead of per edge.

In the reference, each edge gathers its two nodes' coefficients, rotates them into the edge
frame (rows |m| <= mmax of the Wigner matrix D_e) and applies the first linear map of order m::

    first_m[e, s, h] = sum_{l >= m, c} W_m[h, l, c] * sum_{m'} D_e^l[s*m, m'] x[n(e), (l, m'), c]

for the signed orders s*m (s = +-1).  Both maps are linear, so they can be applied in the other
order: project every node once with the weights of each degree,

    Z_m[n, (l, m'), h] = sum_c W_m[h, l, c] x[n, (l, m'), c]           (per node: large GEMMs)

and let each edge contract its frame rows with its node's projection,

    first_m[e, s, h] = sum_{(l, m')} A_m[e, s, (l, m')] Z_m[n(e), (l, m'), h]

where ``A_m[e, s]`` concatenates the rows ``D_e^l[s*m, :]`` of all degrees l >= m ("order
rows").  With ~20 or more edges per node this does 3-5x fewer operations than rotating on every
edge and applying W_m there; the results agree to float rounding.

The per-edge contraction is done node by node as one batched product over nodes with the edges
laid out by ``EdgeGroups`` (edges of a node in one row block).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..so3 import CoefficientLayout
from .edge_groups import EdgeGroups
from .so2 import SO2Convolution

__all__ = ["PaddedOrderRows", "order_rows", "pad_order_rows", "first_layer_on_edges"]


def order_rows(wigner: torch.Tensor, layout: CoefficientLayout) -> list[list[torch.Tensor]]:
    """Order rows of the edge frames, matching ``SO2Convolution.first_weights(m)``.

    Args:
        wigner: ``(n_edges, n_reduced, n_coeffs)`` rows |m| <= mmax of D_e, m-major (block
            diagonal in l, exact zeros elsewhere).
    Returns:
        ``[[(n_edges, 1, n_coeffs)]] + [[rows, swapped] for m = 1..mmax]`` with ``rows`` of shape
        ``(n_edges, 2, n_coeffs - m*m)``: row ``s`` holds ``D_e^l[s*m, :]`` in the columns of
        degree l, for every l >= m (rows +m then -m).  Summing the rows of one order over l
        concatenates them, because different degrees occupy different columns.  ``swapped`` is
        ``(-rows[-m], rows[+m])``, the rows that feed the imaginary first layer (see
        ``SO2OrderMap.first_layer``).
    """
    lmax = layout.lmax
    rows = [[wigner[:, : lmax + 1].sum(dim=1, keepdim=True)]]
    offset = lmax + 1
    for m in range(1, layout.mmax + 1):
        size = layout.m_sizes[m]
        plus = wigner[:, offset : offset + size, m * m :].sum(dim=1)
        minus = wigner[:, offset + size : offset + 2 * size, m * m :].sum(dim=1)
        rows.append([torch.stack([plus, minus], dim=1), torch.stack([-minus, plus], dim=1)])
        offset += 2 * size
    return rows


@dataclass
class PaddedOrderRows:
    """Order rows of all edges laid out node by node for one end of the edges (source or target).

    ``rows[m][k]``: ``(n_nodes, width * n_rows_m, n_cols_m)`` for the k-th first-layer weight of
    order m, ready for ``torch.bmm`` with a node projection ``(n_nodes, n_cols_m, H)``.
    """

    groups: EdgeGroups
    rows: list[list[torch.Tensor]]


def pad_order_rows(rows: Sequence[Sequence[torch.Tensor]], groups: EdgeGroups) -> PaddedOrderRows:
    """Each order's per-edge frame rows ``(n_edges, n_rows, n_coeffs)`` laid out per group of edges:
    ``(n_groups, width * n_rows, n_coeffs)``, with zero rows where a group has fewer than ``width`` edges."""
    padded = []
    for per_order in rows:
        padded.append(
            [
                groups.pad(per_edge).reshape(groups.n_groups, groups.width * per_edge.shape[1], per_edge.shape[2])
                for per_edge in per_order
            ]
        )
    return PaddedOrderRows(groups=groups, rows=padded)


def first_layer_on_edges(
    x: torch.Tensor,
    blocks: Sequence[SO2Convolution],
    padded_rows: Sequence[PaddedOrderRows],
    layout: CoefficientLayout,
) -> list[list[torch.Tensor]]:
    """First-layer outputs of several SO(2) convolutions, each fed by one end of the edges.

    Args:
        x: ``(n_nodes, n_coeffs, C)`` node coefficients, l-major.
        blocks: SO(2) convolutions (here: source and target).
        padded_rows: for each block, the order rows laid out by the nodes feeding it.
    Returns:
        ``out[b][m]``: what ``SO2Convolution.first_layer`` gives on the rotated edge coefficients,
        ``[(n_edges, 1, H)]`` for m = 0 and ``[real, imaginary]`` ``(n_edges, 2, H)`` for m > 0.
    """
    n_nodes, _, channels = x.shape
    # Each degree's slice as plain (n_nodes * (2l+1), C) rows (a small copy): every projection is one GEMM.
    degree_rows = [x[:, l * l : (l + 1) ** 2].reshape(-1, channels) for l in range(layout.lmax + 1)]

    def node_projection(weight: torch.Tensor, m: int) -> torch.Tensor:
        """Z_m for one first-layer weight ``(H, (lmax - m + 1) C)``: ``(n_nodes, n_coeffs - m*m, H)``."""
        pieces = [
            torch.mm(degree_rows[l], weight[:, (l - m) * channels : (l - m + 1) * channels].t())
            for l in range(m, layout.lmax + 1)
        ]
        # (contiguous pieces: concatenating them is a plain copy, unlike slices of a wider product)
        return torch.cat([piece.view(n_nodes, -1, weight.shape[0]) for piece in pieces], dim=1)

    out = []
    for block, padded in zip(blocks, padded_rows):
        groups = padded.groups
        per_order = []
        for m in range(layout.mmax + 1):
            n_rows = 1 if m == 0 else 2
            firsts = []
            for weight, rows in zip(block.first_weights(m), padded.rows[m]):
                contracted = torch.bmm(rows, node_projection(weight, m))  # (n_nodes, width * n_rows, H)
                firsts.append(groups.unpad(contracted.view(groups.n_groups, groups.width, n_rows, weight.shape[0])))
            per_order.append(firsts)
        out.append(per_order)
    return out
