"""Memory estimates of an evaluation, so that too-large structures fail before allocation."""

from __future__ import annotations

import torch

from .model import ESCNConfig
from .so3 import coefficient_layout, grid_resolution

__all__ = [
    "MemoryEstimate",
    "estimate_memory",
    "available_memory",
    "choose_edge_chunk_size",
    "default_edge_chunk_size",
]


class MemoryEstimate:
    """Bytes of an evaluation: ``fixed`` (nodes, graph, cached edge frames) + ``per_edge`` working set."""

    def __init__(self, fixed: int, per_edge_working: int, n_edges: int, keeps_graph: bool) -> None:
        self.fixed = fixed
        self.per_edge_working = per_edge_working
        self.n_edges = n_edges
        self.keeps_graph = keeps_graph

    def total(self, edge_chunk_size: int | None) -> int:
        """Peak bytes with edges processed ``edge_chunk_size`` at a time (None: all at once)."""
        if self.keeps_graph:  # autograd keeps every chunk's tensors until the backward pass
            return self.fixed + self.per_edge_working * self.n_edges
        chunk = self.n_edges if not edge_chunk_size else min(edge_chunk_size, self.n_edges)
        return self.fixed + self.per_edge_working * chunk


def estimate_memory(
    config: ESCNConfig, n_atoms: int, n_edges: int, dtype: torch.dtype, keeps_graph: bool
) -> MemoryEstimate:
    """Rough estimate of an evaluation's peak memory, with a 1.5x margin for allocator overhead.

    ``keeps_graph``: autograd through the whole pass (conservative forces, training).
    """
    item = torch.empty((), dtype=dtype).element_size()
    c = config
    layout = coefficient_layout(c.lmax, c.mmax)
    n_coeffs, n_reduced = layout.n_coeffs, layout.n_reduced
    edge_grid = grid_resolution(c.lmax, c.mmax)
    node_grid = grid_resolution(c.lmax, c.lmax)
    n_edge_grid, n_node_grid = edge_grid[0] * edge_grid[1], node_grid[0] * node_grid[1]
    channels, hidden = c.sphere_channels, c.hidden_channels
    # First SO(2) layer of both convolutions for all edges at once (per layer): padded products,
    # their copies back into edge order, and the gated activations of each order's rows.
    first_layer = 2 * 3 * hidden * (1 + 4 * c.mmax)
    # Per edge of a chunk and layer: edge scalars and gates, second-layer outputs, the message in
    # two layouts, grid values (tiled without autograd), the padded copy rotated back.
    per_edge_layer = (4 * n_reduced + 2 * n_edge_grid) * channels + 2 * hidden * (1 + 2 * c.mmax) + c.n_basis
    # Once per pass: frame rows by order for both ends (real and imaginary), rotate-back rows, basis.
    per_edge_static = 4 * n_reduced * n_coeffs + 2 * n_reduced * n_coeffs + c.n_basis + 16
    per_atom_layer = (6 * n_coeffs + 5 * n_node_grid) * channels + 4 * n_coeffs * hidden * (1 + 2 * c.mmax)
    graph_factor = c.num_layers if keeps_graph else 1
    # Measured peaks ran up to ~1.2x the tensor count on CPU (allocator overhead): keep a 1.5x margin.
    margin = 1.5
    fixed = int(
        margin * item * (n_atoms * per_atom_layer * graph_factor + n_edges * (per_edge_static + first_layer * graph_factor))
    ) + 64 * 2**20
    per_edge = int(margin * item * per_edge_layer * graph_factor)
    return MemoryEstimate(fixed=fixed, per_edge_working=per_edge, n_edges=n_edges, keeps_graph=keeps_graph)


# Per-chunk edge tensors above glibc's mmap threshold (32 MiB at most) are returned to the OS on every
# free and page-faulted back on every allocation; chunks whose largest tensor stays near 16 MiB avoid that.
CHUNK_TENSOR_BYTES = 16 * 2**20


def default_edge_chunk_size(config: ESCNConfig, dtype: torch.dtype) -> int:
    """Edges per chunk that keep the largest per-edge tensor (the edge-frame grid) near 16 MiB."""
    res_beta, res_alpha = grid_resolution(config.lmax, config.mmax)
    item = torch.empty((), dtype=dtype).element_size()
    per_edge = max(res_beta * res_alpha, (config.lmax + 1) ** 2) * config.sphere_channels * item
    return max(64, CHUNK_TENSOR_BYTES // per_edge)


def available_memory(device: torch.device) -> int:
    """Bytes the device can still allocate (CPU: MemAvailable of /proc/meminfo)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def choose_edge_chunk_size(estimate: MemoryEstimate, budget: int, minimum: int = 256) -> int | None:
    """Largest edge chunk whose peak fits ``budget`` (None: all edges at once fit)."""
    if estimate.total(None) <= budget:
        return None
    room = budget - estimate.fixed
    if estimate.keeps_graph or room <= 0:
        return None
    return max(minimum, int(room // max(estimate.per_edge_working, 1)))
