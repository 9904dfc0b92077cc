"""SO(2) convolution: the eSCN reduction of an SO(3) tensor product in the edge frame.

Once an edge is rotated onto the polar axis, the tensor product with the edge's spherical
harmonics only couples coefficients of the same order ``|m|``.  For each ``m > 0`` the pair of
real coefficients ``(+m, -m)`` behaves like a complex number and the layer is a complex linear
map ``(W_r + i W_i)``; ``m = 0`` is a real linear map.  Cost per edge: O(L) maps of size O(L C),
i.e. O(L^3) for L orders and degrees, instead of O(L^6) for a full Clebsch-Gordan product.

Input and output tensors are in the reduced m-major layout of ``escn_ase.so3.layout``:
``(n_edges, n_reduced, n_channels)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["GatedTerm", "SO2Convolution", "SO2OrderMap", "sum_of_products"]


class GatedTerm(NamedTuple):
    """One second-layer term: ``(first * gate) @ weight.T`` on every row of every edge.

    ``first``: ``(n_edges, rows, H)`` first-layer outputs (rows = 1 for m = 0, 2 for m > 0);
    ``gate``: ``(n_edges, 1, H)``; ``weight``: ``(K, H)``.  The gated activation is formed only
    when asked for, so that a caller can use it while it is still in cache.
    """

    first: torch.Tensor
    gate: torch.Tensor
    weight: torch.Tensor

    def activation(self) -> torch.Tensor:
        """``(n_edges * rows, H)``."""
        return (self.first * self.gate).view(-1, self.first.shape[-1])


class SO2OrderMap(torch.nn.Module):
    """Complex linear map of one order ``m > 0``, gated by edge scalars (a bottleneck of width H).

    Parameter names follow the reference (``fc1_dist, fc1_r, fc2_r, fc1_i, fc2_i``).
    """

    def __init__(self, in_features: int, hidden_channels: int, edge_channels: int) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.fc1_dist = torch.nn.Linear(edge_channels, 2 * hidden_channels)
        self.fc1_r = torch.nn.Linear(in_features, hidden_channels, bias=False)
        self.fc2_r = torch.nn.Linear(hidden_channels, in_features, bias=False)
        self.fc1_i = torch.nn.Linear(in_features, hidden_channels, bias=False)
        self.fc2_i = torch.nn.Linear(hidden_channels, in_features, bias=False)

    def first_weights(self) -> list[torch.Tensor]:
        """``[(H, K), (H, K)]``: the real and imaginary first layers."""
        return [self.fc1_r.weight, self.fc1_i.weight]

    def forward(self, x_m: torch.Tensor, edge_scalars: torch.Tensor) -> torch.Tensor:
        """``x_m (n_edges, 2, K)`` (rows: +m, -m) and ``edge_scalars (n_edges, E)`` -> ``(n_edges, 2, K)``."""
        return self.from_first(self.first_layer(x_m), edge_scalars)

    def first_layer(self, x_m: torch.Tensor) -> list[torch.Tensor]:
        """``[real (n_edges, 2, H), imaginary (n_edges, 2, H)]`` first-layer outputs of ``x_m (n_edges, 2, K)``.

        (a + ib)(W_r + i W_i): the +m output row is A(+m) - B(-m) and the -m row A(-m) + B(+m),
        with A = fc2_r(h_r), B = fc2_i(h_i).  The imaginary part is returned with its rows swapped
        and the new +m row negated, so that both output rows are A + B: two products, no shuffles.
        """
        real = torch.matmul(x_m, self.fc1_r.weight.t())
        imaginary = torch.matmul(x_m, self.fc1_i.weight.t()).flip(1) * self._row_signs(x_m)
        return [real, imaginary]

    def from_first(self, first: list[torch.Tensor], edge_scalars: torch.Tensor) -> torch.Tensor:
        """The rest of the map given ``first_layer``'s outputs -> ``(n_edges, 2, K)``."""
        gate = torch.nn.functional.silu(self.fc1_dist(edge_scalars))
        return sum_of_products(self.gated_terms(first, gate)).view(first[0].shape[0], 2, -1)

    def gated_terms(self, first: list[torch.Tensor], gate: torch.Tensor) -> list[GatedTerm]:
        """The second-layer terms of the real and imaginary parts (rows +m, -m of every edge).

        ``gate``: ``(n_edges, 2H)``, SiLU of ``fc1_dist`` of the edge scalars.  The output rows
        are the sum of the terms' products.
        """
        # unbind, not two indexings: the backward of each index would fill a zero tensor of all gates
        real_gate, imaginary_gate = gate.view(-1, 2, 1, self.hidden_channels).unbind(1)
        real, imaginary = first
        return [GatedTerm(real, real_gate, self.fc2_r.weight), GatedTerm(imaginary, imaginary_gate, self.fc2_i.weight)]

    @staticmethod
    def _row_signs(like: torch.Tensor) -> torch.Tensor:
        return torch.tensor([-1.0, 1.0], dtype=like.dtype, device=like.device).view(1, 2, 1)


def sum_of_products(terms: list[GatedTerm]) -> torch.Tensor:
    """``sum(term.activation() @ term.weight.T)`` ``(n_edges * rows, K)``, accumulated in one buffer."""
    first, *rest = terms
    out = torch.mm(first.activation(), first.weight.t())
    for term in rest:
        out = out.addmm_(term.activation(), term.weight.t())
    return out


class SO2Convolution(torch.nn.Module):
    """All orders ``m = 0..mmax`` of one SO(2) convolution (reference name: ``SO2Block``)."""

    def __init__(
        self, lmax: int, mmax: int, sphere_channels: int, hidden_channels: int, edge_channels: int
    ) -> None:
        super().__init__()
        self.lmax, self.mmax, self.sphere_channels = lmax, mmax, sphere_channels
        m0_features = (lmax + 1) * sphere_channels
        self.fc1_dist0 = torch.nn.Linear(edge_channels, hidden_channels)
        self.fc1_m0 = torch.nn.Linear(m0_features, hidden_channels, bias=False)
        self.fc2_m0 = torch.nn.Linear(hidden_channels, m0_features, bias=False)
        self.so2_conv = torch.nn.ModuleList(
            SO2OrderMap((lmax - m + 1) * sphere_channels, hidden_channels, edge_channels)
            for m in range(1, mmax + 1)
        )

    def first_weights(self, m: int) -> list[torch.Tensor]:
        """First-layer weights of order m: ``[(H, (lmax+1) C)]`` for m = 0, real and imaginary
        ``[(H, (lmax-m+1) C)] * 2`` for m > 0.  Input features are ordered (l, channel), l from m up.
        """
        return [self.fc1_m0.weight] if m == 0 else self.so2_conv[m - 1].first_weights()

    def first_layer(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """First layer on edge-frame coefficients ``x (n_edges, n_reduced, C)``, m-major.

        Returns ``[[(n_edges, 1, H)]] + [[real, imaginary] for m = 1..mmax]`` (see
        ``SO2OrderMap.first_layer``; each ``(n_edges, 2, H)``).
        """
        n_edges = x.shape[0]
        n_m0 = self.lmax + 1
        firsts = [[torch.matmul(x[:, :n_m0].reshape(n_edges, 1, -1), self.fc1_m0.weight.t())]]
        offset = n_m0
        for order_map in self.so2_conv:
            rows = 2 * (self.lmax - len(firsts) + 1)
            # contiguous: a strided slice would make matmul fall back to a per-edge batched product
            x_m = x[:, offset : offset + rows].contiguous().view(n_edges, 2, -1)
            firsts.append(order_map.first_layer(x_m))
            offset += rows
        return firsts

    def from_first(self, firsts: list[list[torch.Tensor]], edge_scalars: torch.Tensor) -> list[torch.Tensor]:
        """The rest of the convolution given ``first_layer``'s outputs.

        Returns the output split by order: ``[(n_edges, lmax+1, C)] + [(n_edges, 2(lmax-m+1), C)]``.
        """
        n_edges, channels = edge_scalars.shape[0], self.sphere_channels
        gates = [torch.nn.functional.silu(layer(edge_scalars)) for layer in self.gate_layers()]
        return [
            sum_of_products(terms).view(n_edges, -1, channels) for terms in self.gated_terms(firsts, gates)
        ]

    def gate_layers(self) -> list[torch.nn.Linear]:
        """The edge-scalar layers whose SiLU gates each order's hidden units (m = 0, 1, ...)."""
        return [self.fc1_dist0] + [order_map.fc1_dist for order_map in self.so2_conv]

    def gated_terms(
        self, firsts: list[list[torch.Tensor]], gates: list[torch.Tensor]
    ) -> list[list[GatedTerm]]:
        """Per order m, the second-layer terms (see ``sum_of_products``).

        ``gates[m]``: SiLU of ``gate_layers()[m]`` of the edge scalars; ``firsts`` and ``gates`` may
        stop before ``mmax`` (orders whose first layer is zero).
        """
        terms = [[GatedTerm(firsts[0][0], gates[0].unsqueeze(1), self.fc2_m0.weight)]]
        for m in range(1, len(firsts)):  # orders 0..len(firsts)-1 (fewer when higher ones are zero)
            terms.append(self.so2_conv[m - 1].gated_terms(firsts[m], gates[m]))
        return terms

    def forward_blocks(self, x: torch.Tensor, edge_scalars: torch.Tensor) -> list[torch.Tensor]:
        """The output split by order: ``[(n_edges, lmax+1, C), (n_edges, 2(lmax-m+1), C) for m = 1..mmax]``."""
        return self.from_first(self.first_layer(x), edge_scalars)

    def forward(self, x: torch.Tensor, edge_scalars: torch.Tensor) -> torch.Tensor:
        """``x (n_edges, n_reduced, C)`` m-major, ``edge_scalars (n_edges, E)`` -> same shape as ``x``."""
        return torch.cat(self.forward_blocks(x, edge_scalars), dim=1)
