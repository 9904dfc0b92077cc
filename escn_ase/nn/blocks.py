"""eSCN building blocks: edge embedding, message block, node (grid) block and output heads.

Shapes: ``x`` node tensors are ``(n_atoms, n_coeffs, C)`` in the l-major layout; edge-frame
tensors are ``(n_edges, n_reduced, C)`` in the m-major layout (see ``escn_ase.so3.layout``).
Module and parameter names follow the reference implementation so that its state dicts load.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.functional import silu

from ..so3 import coefficient_layout, from_grid_matrix, to_grid_matrix
from .edge_groups import EdgeGroups
from .first_layer import PaddedOrderRows, first_layer_on_edges
from .gate import EdgeFrameGate, NodeGate
from .grid_silu import grid_silu
from .so2 import GatedTerm, SO2Convolution, sum_of_products

__all__ = ["EdgeChunk", "EdgeGraph", "EdgeBlock", "MessageBlock", "LayerBlock", "EnergyBlock", "ForceBlock"]


def _silu_fresh(x: torch.Tensor) -> torch.Tensor:
    """SiLU of a freshly computed tensor: in place when no graph is recorded (saves a large allocation)."""
    return silu(x, inplace=not torch.is_grad_enabled())


@dataclass
class EdgeChunk:
    """The edges of a contiguous range of target atoms, with what every layer needs of them.

    Edges are sorted by target, so a chunk is both a slice of the edges and a slice of the atoms,
    and the messages of its edges sum into its own atoms only.

    Attributes:
        source: ``(n_chunk,)`` neighbour index j (messages flow j -> i).
        target: ``(n_chunk,)`` centre index i (messages are summed here).
        radial_basis: ``(n_chunk, n_basis)`` Gaussian expansion of the edge lengths.
        groups: the chunk's edges laid out by target atom (``width`` slots per atom).
        rotate_back: ``(n_nodes, n_coeffs, width * n_reduced)``: for each target atom, the
            transposed frame rows D_e^T of its edges side by side (times the smooth-cutoff
            envelope, if any), so that rotating back and summing is one product per atom.
    """

    source: torch.Tensor
    target: torch.Tensor
    radial_basis: torch.Tensor
    groups: EdgeGroups
    rotate_back: torch.Tensor


@dataclass
class EdgeGraph:
    """What every layer needs of the edges: chunks, and the frame rows laid out node by node.

    ``source_rows`` / ``target_rows``: order rows of the edge frames grouped by the source /
    target node, for the first SO(2) layer computed per node (``escn_ase.nn.first_layer``).
    """

    chunks: list[EdgeChunk]
    source_rows: PaddedOrderRows
    target_rows: PaddedOrderRows


class EdgeBlock(torch.nn.Module):
    """Invariant edge scalars from the distance basis and the two elements."""

    def __init__(self, n_basis: int, edge_channels: int, max_num_elements: int) -> None:
        super().__init__()
        self.fc1_dist = torch.nn.Linear(n_basis, edge_channels)
        self.source_embedding = torch.nn.Embedding(max_num_elements, edge_channels)
        self.target_embedding = torch.nn.Embedding(max_num_elements, edge_channels)
        self.fc1_edge_attr = torch.nn.Linear(edge_channels, edge_channels)

    def forward(
        self, radial_basis: torch.Tensor, source_numbers: torch.Tensor, target_numbers: torch.Tensor
    ) -> torch.Tensor:
        """-> ``(n_edges, edge_channels)``."""
        hidden = silu(
            self.source_embedding(source_numbers) + self.target_embedding(target_numbers) + self.fc1_dist(radial_basis)
        )
        return silu(self.fc1_edge_attr(hidden))


class MessageBlock(torch.nn.Module):
    """Messages j -> i: rotate into the edge frame, SO(2) convolutions, gate or grid SiLU, rotate back, sum.

    ``forward`` is the fast path: the same function as ``escn_ase.nn.oracle.message_oracle`` (the
    paper's equations edge by edge, with complex arithmetic per order), computed in another order
    (first SO(2) layer per atom, second layers accumulated in one buffer, one rotate-back product per
    atom).  ``tests/test_so2.py`` ties the two in values and gradients.
    """

    def __init__(
        self,
        lmax: int,
        mmax: int,
        sphere_channels: int,
        hidden_channels: int,
        edge_channels: int,
        n_basis: int,
        max_num_elements: int,
        activation: str = "s2_grid",
    ) -> None:
        super().__init__()
        self.edge_block = EdgeBlock(n_basis, edge_channels, max_num_elements)
        args = (lmax, mmax, sphere_channels, hidden_channels, edge_channels)
        self.so2_block_source = SO2Convolution(*args)
        self.so2_block_target = SO2Convolution(*args)
        self.layout = coefficient_layout(lmax, mmax)
        if activation == "gate":
            # Roll-equivariant gate (escn_ase.nn.gate): the message does not depend on the frame's completion.
            self.edge_gate = EdgeFrameGate(lmax, mmax, sphere_channels)
        else:
            # Edge-frame grid of the reference's pointwise SiLU, restricted to the |m| <= mmax coefficients.
            self.edge_gate = None
            self.register_buffer("to_grid", to_grid_matrix(lmax, mmax, layout="mmajor"), persistent=False)
            self.register_buffer("from_grid", from_grid_matrix(lmax, mmax, layout="mmajor"), persistent=False)

    def forward(
        self, x: torch.Tensor, atomic_numbers: torch.Tensor, graph: EdgeGraph, scalar_input: bool = False
    ) -> torch.Tensor:
        """``x (n_atoms, n_coeffs, C)`` -> summed messages, same shape.

        ``scalar_input``: only the degree-0 coefficients of ``x`` are non-zero (the first layer's
        input, the atom embedding).  Every edge-frame coefficient of order m > 0 then comes from
        degrees l >= m > 0 and is zero, so the first SO(2) layers of those orders are exactly zero:
        they, their gates and their second layers are skipped, and the m = 0 first layer is the
        node's degree-0 projection (D^0 = 1).
        """
        blocks = [self.so2_block_source, self.so2_block_target]
        if not graph.chunks:
            return x.new_zeros(x.shape)
        if scalar_input:
            source_parts = _scalar_first_layer(x, self.so2_block_source, [chunk.source for chunk in graph.chunks])
            target_parts = _scalar_first_layer(x, self.so2_block_target, [chunk.target for chunk in graph.chunks])
        else:
            # First SO(2) layer of both convolutions for all edges, computed per node.
            source_first, target_first = first_layer_on_edges(
                x, blocks, [graph.source_rows, graph.target_rows], self.layout
            )
            # Each chunk's slice of the first-layer outputs. split, not indexing: under autograd the
            # backward of one split is one concatenation, where every slice's backward would fill a
            # zero tensor of all edges (quadratic in the number of chunks).
            sizes = [chunk.source.shape[0] for chunk in graph.chunks]
            source_parts = _split_by_chunk(source_first, sizes)
            target_parts = _split_by_chunk(target_first, sizes)
        # The gate layers of both convolutions (of the orders computed) as one product per chunk.
        n_orders = 1 if scalar_input else self.layout.mmax + 1
        gate_layers = [layer for block in blocks for layer in block.gate_layers()[:n_orders]]
        gate_weight = torch.cat([layer.weight for layer in gate_layers], dim=0)
        gate_bias = torch.cat([layer.bias for layer in gate_layers], dim=0)
        gate_sizes = [layer.out_features for layer in gate_layers]
        # Chunks cover consecutive ranges of target atoms: their sums only need concatenating.
        sums = [
            self._messages(
                x, atomic_numbers, chunk, source_parts[k], target_parts[k], (gate_weight, gate_bias, gate_sizes)
            )
            for k, chunk in enumerate(graph.chunks)
        ]
        return sums[0] if len(sums) == 1 else torch.cat(sums, dim=0)

    def _messages(
        self,
        x: torch.Tensor,
        atomic_numbers: torch.Tensor,
        chunk: EdgeChunk,
        source_first: list[list[torch.Tensor]],
        target_first: list[list[torch.Tensor]],
        gate_layer: tuple[torch.Tensor, torch.Tensor, list[int]],
    ) -> torch.Tensor:
        """Messages of one chunk rotated back and summed per target atom, ``(n_chunk_atoms, n_coeffs, C)``."""
        n_edges, channels = chunk.source.shape[0], x.shape[2]
        edge_scalars = self.edge_block(
            chunk.radial_basis,
            atomic_numbers.index_select(0, chunk.source),
            atomic_numbers.index_select(0, chunk.target),
        )
        gate_weight, gate_bias, gate_sizes = gate_layer
        gates = _silu_fresh(torch.addmm(gate_bias, edge_scalars, gate_weight.t())).split(gate_sizes, dim=1)
        n_orders = len(gate_sizes) // 2
        # Source and target convolutions summed: their second layers accumulate into one buffer,
        # (n_edges, n_reduced, C) with the reduced coefficients m-major.
        order_terms = [
            source_terms + target_terms
            for source_terms, target_terms in zip(
                self.so2_block_source.gated_terms(source_first, list(gates[:n_orders])),
                self.so2_block_target.gated_terms(target_first, list(gates[n_orders:])),
            )
        ]
        if self.edge_gate is not None and torch.is_grad_enabled():
            # Each order gated before the orders are joined: slicing the joined message instead would
            # make autograd fill a zero tensor of the whole message per slice in the backward pass.
            message = self.edge_gate.gate_orders(_order_blocks(order_terms, n_edges, channels), self.layout.n_reduced)
        else:
            message = _second_layers(order_terms, n_edges, self.layout.n_reduced, channels)
            if self.edge_gate is not None:
                message = self.edge_gate(message)
            else:
                message = grid_silu(message, self.to_grid, self.from_grid)  # edge-frame grid SiLU, same layout
        # Rotate back (D^T restricted to the kept columns) and sum over each atom's edges: one
        # product per target atom with its edges side by side.
        groups = chunk.groups
        padded = groups.pad(message).reshape(groups.n_groups, -1, channels)  # (n_atoms, width * n_reduced, C)
        return torch.bmm(chunk.rotate_back, padded)


def _second_layers(order_terms: list[list[GatedTerm]], n_edges: int, n_reduced: int, channels: int) -> torch.Tensor:
    """Sum of the second-layer products of every order, laid out ``(n_edges, n_reduced, C)``.

    ``order_terms[m]``: the terms whose products sum to order m's rows (1 for m = 0, 2 for +m, -m),
    each ``n_degrees * C`` columns wide; the rows of orders after the last one given are zero.
    Without autograd each term's gated activation is formed just before its products (it is still
    in cache, and one is alive at a time), and each row of each order accumulates straight into its
    columns of the output (a strided view: no concatenation copy).  Every output element sums the
    terms in the same order either way.  With autograd, per-order sums are concatenated.
    """
    if torch.is_grad_enabled():
        blocks = _order_blocks(order_terms, n_edges, channels)
        covered = sum(block.shape[1] for block in blocks)
        if covered < n_reduced:  # orders left out are zero
            blocks.append(blocks[0].new_zeros(n_edges, n_reduced - covered, channels))
        return torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]
    message = order_terms[0][0].first.new_empty(n_edges, n_reduced * channels)
    offset = 0
    for terms in order_terms:
        rows = terms[0].first.shape[1]
        width = terms[0].weight.shape[0]  # n_degrees * C columns per row
        outputs = [message[:, offset + s * width : offset + (s + 1) * width] for s in range(rows)]
        for k, term in enumerate(terms):
            activation = term.activation().view(n_edges, rows, -1)
            for s, out in enumerate(outputs):
                out.addmm_(activation[:, s], term.weight.t(), beta=0 if k == 0 else 1)
        offset += rows * width
    message[:, offset:].zero_()  # orders left out are zero
    return message.view(n_edges, n_reduced, channels)


def _order_blocks(order_terms: list[list[GatedTerm]], n_edges: int, channels: int) -> list[torch.Tensor]:
    """The second-layer output of each order given: ``(n_edges, rows_m, C)``, rows m-major as in the message."""
    return [sum_of_products(terms).view(n_edges, -1, channels) for terms in order_terms]


def _scalar_first_layer(
    x: torch.Tensor, block: SO2Convolution, node_of_edge: list[torch.Tensor]
) -> list[list[list[torch.Tensor]]]:
    """The m = 0 first layer of ``block`` when ``x`` has only degree-0 coefficients, per chunk.

    Returns ``parts[chunk] = [[(n_chunk, 1, H)]]`` (order 0 only): the degree-0 columns of the
    first-layer weight applied to each edge's node, ``node_of_edge[chunk]``.
    """
    channels = x.shape[2]
    projection = torch.mm(x[:, 0], block.first_weights(0)[0][:, :channels].t())  # (n_atoms, H)
    return [[[projection.index_select(0, nodes).unsqueeze(1)]] for nodes in node_of_edge]


def _split_by_chunk(firsts: list[list[torch.Tensor]], sizes: list[int]) -> list[list[list[torch.Tensor]]]:
    """``firsts[m][k]`` (all edges) -> ``parts[chunk][m][k]`` (the chunk's edges)."""
    split = [[first.split(sizes) for first in order] for order in firsts]
    return [[[parts[chunk] for parts in order] for order in split] for chunk in range(len(sizes))]


class LayerBlock(torch.nn.Module):
    """One interaction layer: messages, then an MLP of node and message.

    ``activation="s2_grid"`` (the reference): the MLP's SiLUs act on the global S2 grid.
    ``activation="gate"``: they are ``NodeGate``s on the coefficients (exactly equivariant).
    """

    def __init__(
        self,
        lmax: int,
        mmax: int,
        sphere_channels: int,
        hidden_channels: int,
        edge_channels: int,
        n_basis: int,
        max_num_elements: int,
        activation: str = "s2_grid",
    ) -> None:
        super().__init__()
        self.message_block = MessageBlock(
            lmax, mmax, sphere_channels, hidden_channels, edge_channels, n_basis, max_num_elements, activation
        )
        self.fc1_sphere = torch.nn.Linear(2 * sphere_channels, sphere_channels, bias=False)
        self.fc2_sphere = torch.nn.Linear(sphere_channels, sphere_channels, bias=False)
        self.fc3_sphere = torch.nn.Linear(sphere_channels, sphere_channels, bias=False)
        if activation == "gate":
            self.gate1_sphere = NodeGate(lmax, sphere_channels)
            self.gate2_sphere = NodeGate(lmax, sphere_channels)
        else:
            self.gate1_sphere = self.gate2_sphere = None
            self.register_buffer("to_grid", to_grid_matrix(lmax, lmax), persistent=False)
            self.register_buffer("from_grid", from_grid_matrix(lmax, lmax), persistent=False)

    def forward(
        self, x: torch.Tensor, atomic_numbers: torch.Tensor, edges: EdgeGraph, scalar_input: bool = False
    ) -> torch.Tensor:
        """-> the layer's update ``(n_atoms, n_coeffs, C)`` (the caller adds the residual).

        ``scalar_input``: only the degree-0 coefficients of ``x`` are non-zero (see ``MessageBlock``).
        """
        message = self.message_block(x, atomic_numbers, edges, scalar_input)
        if self.gate1_sphere is not None:
            hidden = self.gate1_sphere(self.fc1_sphere(torch.cat([x, message], dim=2)))
            return self.fc3_sphere(self.gate2_sphere(self.fc2_sphere(hidden)))
        n_atoms, n_coeffs, channels = x.shape
        # Coefficient-major rows (n_coeffs * n_atoms, 2C): every transform below is one plain GEMM.
        both = torch.cat([x, message], dim=2).transpose(0, 1).reshape(n_coeffs * n_atoms, 2 * channels)
        # fc1_sphere (over channels, no bias) commutes with the grid transform (over coefficients):
        # applying it to the n_coeffs coefficients instead of the grid points is ~4x cheaper.
        hidden = self.fc1_sphere(both).view(n_coeffs, n_atoms * channels)
        grid = _silu_fresh(torch.mm(self.to_grid, hidden)).view(-1, channels)  # (n_grid * n_atoms, C)
        grid = _silu_fresh(self.fc2_sphere(grid)).view(-1, n_atoms * channels)
        # fc3_sphere (linear, no bias) likewise commutes with the transform back to coefficients.
        update = torch.mm(self.from_grid.t(), grid).view(n_coeffs * n_atoms, channels)
        update = self.fc3_sphere(update).view(n_coeffs, n_atoms, channels)
        return update.transpose(0, 1).contiguous()


class EnergyBlock(torch.nn.Module):
    """Per-atom energy: an MLP at each sphere sample point, averaged over the points."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(channels, channels)
        self.fc2 = torch.nn.Linear(channels, channels)
        self.fc3 = torch.nn.Linear(channels, 1, bias=False)

    def forward(self, x_points: torch.Tensor) -> torch.Tensor:
        """``(n_atoms, n_points, C)`` -> ``(n_atoms,)``."""
        return self.fc3(silu(self.fc2(silu(self.fc1(x_points))))).squeeze(-1).mean(dim=1)


class ForceBlock(EnergyBlock):
    """Direct (non-conservative) force: a scalar per sample point times the point, averaged."""

    def forward(self, x_points: torch.Tensor, sphere_points: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``(n_atoms, n_points, C)``, ``(n_points, 3)`` -> ``(n_atoms, 3)``."""
        magnitude = self.fc3(silu(self.fc2(silu(self.fc1(x_points)))))  # (n_atoms, n_points, 1)
        return (magnitude * sphere_points[None]).mean(dim=1)
