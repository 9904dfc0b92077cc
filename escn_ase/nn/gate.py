"""Gated nonlinearities: exactly equivariant replacements of eSCN's sampled S2-grid SiLU.

eSCN's SiLU acts on the values of a function on a sampled sphere.  On a finite grid that is only
approximately equivariant, and in the edge frame (3 azimuths for mmax = 1) it is not invariant
to a roll of the frame about the edge: the energy then depends on how each edge frame was
completed, and jumps wherever a frame rule switches.  The gates here act on coefficients:

* ``NodeGate`` (global frame, full SO(3)): degree-0 channels through SiLU; every channel of
  degree l > 0 scaled by ``sigmoid`` of a learned linear map of the degree-0 channels.  Degree-0
  values are rotation invariant and a scalar times a degree-l block commutes with ``D^l(R)``.
* ``EdgeFrameGate`` (edge frame, after the SO(2) convolution): the stabiliser of the edge axis is
  the roll ``phi``, which turns each pair of coefficients ``(l, +m), (l, -m)`` by the angle
  ``m phi`` and leaves every order-0 coefficient ``(l, 0)`` unchanged.  So all order-0
  coefficients are roll invariant and may feed the gates; the ``(l, 0), l = 0`` channel goes
  through SiLU, and each ``(l, 0), l > 0`` and each pair ``(l, +-m)`` is scaled by its own gate
  (the same scalar on +m and -m, which commutes with the 2x2 rotation).  The output therefore
  commutes with every roll, and rotating back with ``D_e^T`` gives a message that does not
  depend on the frame's completion: exactly SO(3)-equivariant up to floating point.

Both are smooth (SiLU, sigmoid, products), so forces and stress by autograd are continuous.
"""

from __future__ import annotations

import torch
from torch.nn.functional import silu

from ..so3 import coefficient_layout

__all__ = ["EdgeFrameGate", "NodeGate"]


class NodeGate(torch.nn.Module):
    """Gate of l-major node coefficients ``(n_atoms, (lmax + 1)^2, C)``."""

    def __init__(self, lmax: int, channels: int) -> None:
        super().__init__()
        self.lmax = lmax
        self.gate = torch.nn.Linear(channels, max(lmax, 1) * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_atoms, _, channels = x.shape
        if self.lmax == 0:
            return silu(x)
        # One multiplier per coefficient: sigmoid(x_0) on degree 0 (x_0 sigmoid(x_0) = SiLU), the
        # degree's gate, repeated over its 2l + 1 orders, on degree l > 0.
        gates = torch.sigmoid(self.gate(x[:, 0])).view(n_atoms, self.lmax, channels)
        pieces = [torch.sigmoid(x[:, :1])]
        pieces += [gates[:, l - 1 : l].expand(n_atoms, 2 * l + 1, channels) for l in range(1, self.lmax + 1)]
        return x * torch.cat(pieces, dim=1)


class EdgeFrameGate(torch.nn.Module):
    """Roll-equivariant gate of edge-frame coefficients ``(n_edges, n_reduced, C)``, m-major.

    Rows (``escn_ase.so3.layout``): order 0 for l = 0..lmax, then for each m = 1..mmax the +m rows
    (l = m..lmax) and the -m rows (l = m..lmax).  Gate inputs: the order-0 rows (roll invariant),
    ``(lmax + 1) C`` features; one gate per channel for every (l, 0) with l > 0 and every (l, |m|).
    """

    def __init__(self, lmax: int, mmax: int, channels: int) -> None:
        super().__init__()
        layout = coefficient_layout(lmax, mmax)
        self.n_order0 = lmax + 1
        # gate index ranges: (l, 0) for l = 1..lmax, then (l, |m|) for l = m..lmax, per m
        self.order_sizes = [lmax] + [layout.m_sizes[m] for m in range(1, mmax + 1)]
        self.n_gates = sum(self.order_sizes)
        # message rows of each order: (l, 0) for l = 0..lmax, then +m and -m rows for l = m..lmax
        self.order_rows = [self.n_order0] + [2 * size for size in self.order_sizes[1:]]
        self.gate = torch.nn.Linear(self.n_order0 * channels, max(self.n_gates, 1) * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (n_edges, n_reduced, C)`` -> gated, same shape (``gate_orders`` of its order blocks)."""
        return self.gate_orders(list(x.split(self.order_rows, dim=1)), x.shape[1])

    def gate_orders(self, blocks: list[torch.Tensor], n_reduced: int) -> torch.Tensor:
        """The gate of a message given as its order blocks (``forward`` splits a joined message into them).

        ``blocks[m]``: ``(n_edges, rows_m, C)``, the order-0 rows (l = 0..lmax) for m = 0 and the +m
        then -m rows (l = m..lmax) for m > 0; orders after the last one given are zero.  Returns
        ``(n_edges, n_reduced, C)``, equal to ``forward`` of the joined blocks.
        """
        if self.n_gates == 0:  # lmax = 0: the message is the single (0, 0) row
            return silu(blocks[0])
        order0 = blocks[0]
        n_edges, _, channels = order0.shape
        # One multiplier per row: sigmoid(x_00) on (0, 0) (x sigmoid(x) = SiLU), then the gates; the
        # rows +m and -m of a degree share theirs.
        gates = torch.sigmoid(self.gate(order0.reshape(n_edges, -1))).view(n_edges, self.n_gates, channels)
        order_gates = gates.split(self.order_sizes, dim=1)
        scalar, degrees = order0.split([1, self.n_order0 - 1], dim=1)
        pieces = [scalar * torch.sigmoid(scalar), degrees * order_gates[0]]
        for block, pair in zip(blocks[1:], order_gates[1:]):
            n_degrees = pair.shape[1]
            pieces.append((block.view(n_edges, 2, n_degrees, channels) * pair.unsqueeze(1)).view(n_edges, -1, channels))
        covered = sum(piece.shape[1] for piece in pieces)
        if covered < n_reduced:
            pieces.append(order0.new_zeros(n_edges, n_reduced - covered, channels))
        return torch.cat(pieces, dim=1)
