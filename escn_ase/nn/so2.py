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

import torch

__all__ = ["SO2Convolution", "SO2OrderMap"]


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

    def first_weight(self) -> torch.Tensor:
        """``(2H, K)``: the real and imaginary first layers stacked (one product does both)."""
        return torch.cat([self.fc1_r.weight, self.fc1_i.weight], dim=0)

    def forward(self, x_m: torch.Tensor, edge_scalars: torch.Tensor) -> torch.Tensor:
        """``x_m (n_edges, 2, K)`` (rows: +m, -m) and ``edge_scalars (n_edges, E)`` -> ``(n_edges, 2, K)``."""
        return self.from_first(torch.matmul(x_m, self.first_weight().t()), edge_scalars)

    def from_first(self, first: torch.Tensor, edge_scalars: torch.Tensor) -> torch.Tensor:
        """The rest of the map given the first layer's output ``first (n_edges, 2, 2H)`` -> ``(n_edges, 2, K)``."""
        hidden = self.hidden_channels
        gate = torch.nn.functional.silu(self.fc1_dist(edge_scalars)).view(-1, 2, hidden)
        # (a + ib)(W_r + i W_i): the +m row is A(+m) - B(-m) and the -m row A(-m) + B(+m), with
        # A = fc2_r(h_r), B = fc2_i(h_i).  Swapping the rows of h_i and negating the new +m row lets
        # one product with [fc2_r | fc2_i] produce both rows at once.
        real = first[..., :hidden] * gate[:, 0:1, :]
        imag = first[..., hidden:].flip(1) * (gate[:, 1:2, :] * self._row_signs(first))
        second_weight = torch.cat([self.fc2_r.weight, self.fc2_i.weight], dim=1)  # (K, 2H)
        return torch.matmul(torch.cat([real, imag], dim=2), second_weight.t())

    @staticmethod
    def _row_signs(like: torch.Tensor) -> torch.Tensor:
        return torch.tensor([-1.0, 1.0], dtype=like.dtype, device=like.device).view(1, 2, 1)


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

    def first_weight(self, m: int) -> torch.Tensor:
        """First-layer weight of order m: ``(H, (lmax+1) C)`` for m = 0, ``(2H, (lmax-m+1) C)`` for m > 0.

        Input features are ordered (l, channel), l from m up.
        """
        return self.fc1_m0.weight if m == 0 else self.so2_conv[m - 1].first_weight()

    def first_layer(self, x: torch.Tensor) -> list[torch.Tensor]:
        """First layer on edge-frame coefficients ``x (n_edges, n_reduced, C)``, m-major.

        Returns ``[(n_edges, 1, H)] + [(n_edges, 2, 2H) for m = 1..mmax]``.
        """
        n_edges = x.shape[0]
        n_m0 = self.lmax + 1
        firsts = [torch.matmul(x[:, :n_m0].reshape(n_edges, 1, -1), self.first_weight(0).t())]
        offset = n_m0
        for m in range(1, self.mmax + 1):
            rows = 2 * (self.lmax - m + 1)
            # contiguous: a strided slice would make matmul fall back to a per-edge batched product
            x_m = x[:, offset : offset + rows].contiguous().view(n_edges, 2, -1)
            firsts.append(torch.matmul(x_m, self.first_weight(m).t()))
            offset += rows
        return firsts

    def from_first(self, firsts: list[torch.Tensor], edge_scalars: torch.Tensor) -> list[torch.Tensor]:
        """The rest of the convolution given ``first_layer``'s outputs.

        Returns the output split by order: ``[(n_edges, lmax+1, C)] + [(n_edges, 2(lmax-m+1), C)]``.
        """
        n_edges, channels = edge_scalars.shape[0], self.sphere_channels
        gate0 = torch.nn.functional.silu(self.fc1_dist0(edge_scalars))
        out_m0 = self.fc2_m0(firsts[0].view(n_edges, -1) * gate0)
        outputs = [out_m0.view(n_edges, self.lmax + 1, channels)]
        for m, order_map in enumerate(self.so2_conv, start=1):
            rows = 2 * (self.lmax - m + 1)
            outputs.append(order_map.from_first(firsts[m], edge_scalars).view(n_edges, rows, channels))
        return outputs

    def forward_blocks(self, x: torch.Tensor, edge_scalars: torch.Tensor) -> list[torch.Tensor]:
        """The output split by order: ``[(n_edges, lmax+1, C), (n_edges, 2(lmax-m+1), C) for m = 1..mmax]``."""
        return self.from_first(self.first_layer(x), edge_scalars)

    def forward(self, x: torch.Tensor, edge_scalars: torch.Tensor) -> torch.Tensor:
        """``x (n_edges, n_reduced, C)`` m-major, ``edge_scalars (n_edges, E)`` -> same shape as ``x``."""
        return torch.cat(self.forward_blocks(x, edge_scalars), dim=1)
