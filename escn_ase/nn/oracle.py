"""The eSCN message written as the paper's equations, edge by edge: the oracle of the fast path.

``MessageBlock.forward`` (``escn_ase.nn.blocks``) computes the same function in another order for
speed: the first SO(2) layer is applied once per atom and contracted with each edge's frame rows,
the second layers of both convolutions accumulate into one buffer, and each atom's messages are
rotated back and summed by one product.  The functions here do none of that; they follow Passaro &
Zitnick (2023), Sec. 3-4, literally, and ``tests/test_so2.py`` checks that both give the same values
and gradients.

For one edge with frame rotation ``D`` (its Wigner rows, ``(n_reduced, n_coeffs)``):

    x~_s = D x_source,  x~_t = D x_target                          (rotate into the edge frame)
    y~   = SO2_source(x~_s; e) + SO2_target(x~_t; e)               (e: edge scalars of the edge)
    msg  = D^T act(y~) * envelope(|r|)                             (act: grid SiLU or gate)
    out[target] = sum of msg over the target's edges

and within ``SO2`` each order ``m > 0`` acts on the complex number ``z_m = x_{+m} + i x_{-m}``
(one per degree ``l >= m`` and channel) as ``y_m = W_m(e) z_m``, ``W_m = W_{2,m} diag(g_m(e)) W_{1,m}``
with complex weights ``W_{k,m} = W^r_{k,m} + i W^i_{k,m}`` acting through their real and imaginary
parts separately (the reference's parametrisation: ``y = A z`` with ``A = W_r + i W_i`` where
``W_r, W_i`` are each a gated two-layer map); order 0 is the real map
``y_0 = W_{2,0} diag(g_0(e)) W_{1,0} x_0``.
"""

from __future__ import annotations

import torch
from torch.nn.functional import silu

from .grid_silu import grid_silu
from .so2 import SO2Convolution

__all__ = ["message_oracle", "so2_convolution_oracle"]


def so2_convolution_oracle(conv: SO2Convolution, x: torch.Tensor, edge_scalars: torch.Tensor) -> torch.Tensor:
    """``conv``'s SO(2) convolution computed with complex arithmetic, one order at a time.

    ``x (n_edges, n_reduced, C)`` edge-frame coefficients, m-major (order 0: ``lmax + 1`` rows; order
    m: ``lmax - m + 1`` rows of +m, then as many of -m); ``edge_scalars (n_edges, E)``.  Returns the
    same shape as ``x``.
    """
    n_edges, _, channels = x.shape
    lmax = conv.lmax
    outputs = []
    # Order 0: a real gated two-layer map of the (lmax + 1) * C features.
    x0 = x[:, : lmax + 1].reshape(n_edges, -1)
    g0 = silu(conv.fc1_dist0(edge_scalars))
    outputs.append(((g0 * (x0 @ conv.fc1_m0.weight.T)) @ conv.fc2_m0.weight.T).view(n_edges, lmax + 1, channels))
    offset = lmax + 1
    for m, order_map in enumerate(conv.so2_conv, start=1):
        degrees = lmax - m + 1
        plus = x[:, offset : offset + degrees].reshape(n_edges, -1)
        minus = x[:, offset + degrees : offset + 2 * degrees].reshape(n_edges, -1)
        z = torch.complex(plus, minus)  # (n_edges, degrees * C): one complex number per degree and channel
        gates = silu(order_map.fc1_dist(edge_scalars))
        hidden = order_map.hidden_channels
        g_real, g_imag = gates[:, :hidden], gates[:, hidden:]
        # A(e) = W_r(e) + i W_i(e): each part a gated two-layer real map, (n_edges, K, K).
        w_real = order_map.fc2_r.weight @ (g_real[:, :, None] * order_map.fc1_r.weight)
        w_imag = order_map.fc2_i.weight @ (g_imag[:, :, None] * order_map.fc1_i.weight)
        y = torch.einsum("eij,ej->ei", torch.complex(w_real, w_imag), z)
        outputs.append(torch.cat([y.real.view(n_edges, degrees, channels), y.imag.view(n_edges, degrees, channels)], 1))
        offset += 2 * degrees
    return torch.cat(outputs, dim=1)


def message_oracle(
    block,
    x: torch.Tensor,
    atomic_numbers: torch.Tensor,
    edge_index: torch.Tensor,
    frame_rows: torch.Tensor,
    radial_basis: torch.Tensor,
    envelope: torch.Tensor | None = None,
) -> torch.Tensor:
    """The summed messages of ``block`` (a ``MessageBlock``), edge by edge.

    Args:
        x: ``(n_atoms, n_coeffs, C)`` node coefficients, l-major.
        atomic_numbers: ``(n_atoms,)``.
        edge_index: ``(2, n_edges)`` [source; target].
        frame_rows: ``(n_edges, n_reduced, n_coeffs)`` each edge's Wigner rows (m-major rows kept).
        radial_basis: ``(n_edges, n_basis)`` the edge lengths' Gaussian basis.
        envelope: ``(n_edges,)`` smooth cutoff weights, or None.

    Returns ``(n_atoms, n_coeffs, C)``.
    """
    source, target = edge_index
    edge_scalars = block.edge_block(radial_basis, atomic_numbers[source], atomic_numbers[target])
    x_source = frame_rows @ x[source]  # (n_edges, n_reduced, C) in each edge's frame
    x_target = frame_rows @ x[target]
    y = so2_convolution_oracle(block.so2_block_source, x_source, edge_scalars) + so2_convolution_oracle(
        block.so2_block_target, x_target, edge_scalars
    )
    y = block.edge_gate(y) if block.edge_gate is not None else grid_silu(y, block.to_grid, block.from_grid)
    messages = frame_rows.transpose(1, 2) @ y  # back to the global frame, (n_edges, n_coeffs, C)
    if envelope is not None:
        messages = messages * envelope[:, None, None]
    return x.new_zeros(x.shape).index_add(0, target, messages)
