"""Memory estimates of an evaluation, so that too-large structures fail before allocation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import ESCNConfig
from .so3 import coefficient_layout, grid_resolution

__all__ = [
    "keep_freed_memory",
    "MemoryEstimate",
    "estimate_memory",
    "available_memory",
    "choose_edge_chunk_size",
    "default_edge_chunk_size",
]


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one evaluation, by what the memory scales with.

    Attributes:
        fixed: independent of the edges (parameters, per-atom tensors, allocator slack).
        per_edge_pass: per edge, alive for the whole pass (edge frames and rows, the first SO(2)
            layer of the layer being computed).
        per_edge_layer_graph: per edge, what autograd keeps of one layer (0 without a graph).
        per_edge_chunk: per edge of the chunk being processed, without a graph.
        n_edges, n_layers: of the evaluation.
        keeps_graph: autograd records the pass (forces by autograd, training).
    """

    fixed: int
    per_edge_pass: int
    per_edge_layer_graph: int
    per_edge_chunk: int
    n_edges: int
    n_layers: int
    keeps_graph: bool

    def total(self, edge_chunk_size: int | None = None, checkpoint_layers: bool = False) -> int:
        """Peak bytes with edges processed ``edge_chunk_size`` at a time (None: all at once).

        With a graph, chunks do not bound memory (every chunk's tensors are kept for the backward
        pass); ``checkpoint_layers`` keeps one layer's tensors instead of all of them.
        """
        if self.keeps_graph:
            kept = 1 if checkpoint_layers else self.n_layers
            # + half a layer: the gradients of the layer being differentiated.
            return self.fixed + self.n_edges * (self.per_edge_pass + int((kept + 0.5) * self.per_edge_layer_graph))
        chunk = self.n_edges if not edge_chunk_size else min(edge_chunk_size, self.n_edges)
        return self.fixed + self.n_edges * self.per_edge_pass + self.per_edge_chunk * chunk


# Allocator slack over the tensors counted below.  Measured (default model, 2048 Cu atoms, 87,550
# edges, energy + forces + stress): peak RSS above the loaded model 2.21 GB with all layers kept and
# 1.32 GB with checkpointed layers, against 2.41 and 1.67 GB counted here without the margin.
MARGIN = 1.15


def estimate_memory(
    config: ESCNConfig, n_atoms: int, n_edges: int, dtype: torch.dtype, keeps_graph: bool
) -> MemoryEstimate:
    """Estimate of an evaluation's peak memory from the sizes of the tensors it creates.

    ``keeps_graph``: autograd through the whole pass (conservative forces, training).
    """
    item = torch.empty((), dtype=dtype).element_size()
    c = config
    layout = coefficient_layout(c.lmax, c.mmax)
    n_coeffs, n_reduced = layout.n_coeffs, layout.n_reduced
    node_grid = grid_resolution(c.lmax, c.lmax)
    n_node_grid = node_grid[0] * node_grid[1]
    channels, hidden = c.sphere_channels, c.hidden_channels
    padding = 1.3  # edges laid out per atom: slots of the atoms with fewer neighbours than the most
    # Counts are in elements per edge.
    # The first SO(2) layer of both convolutions (m = 0: one row; m > 0: two rows, real and imaginary).
    first_layer = 2 * hidden * (1 + 4 * c.mmax)
    # Gates of both convolutions (m = 0: H; m > 0: 2H).
    gates = 2 * hidden * (1 + 2 * c.mmax)
    # The edge graph: order rows of both ends, rotate-back rows, distance basis, indices.
    order_rows = n_coeffs + 4 * sum(n_coeffs - m * m for m in range(1, c.mmax + 1))
    edge_graph = padding * (2 * order_rows + n_coeffs * n_reduced) + c.n_basis + 16
    if keeps_graph:
        # Wigner rows and the harmonics of the rotated probe points, kept for their gradients.
        n_probe = 2 * (c.lmax + 1) ** 2
        edge_graph += n_reduced * n_coeffs + 3 * n_probe * n_coeffs + 2 * c.n_basis
        # Per layer, what the backward pass needs: first-layer outputs and gates (the gating
        # products), gate inputs (SiLU), the message entering the edge-frame grid (whose grid values
        # are recomputed, not kept) and padded for the rotation back, the edge MLP's inputs.
        layer_graph = (
            first_layer + 2 * gates + (1 + padding) * n_reduced * channels + c.n_basis + 4 * c.edge_channels
        )
        per_edge_pass, per_edge_chunk = edge_graph, 0.0
    else:
        layer_graph = 0.0
        per_edge_pass = edge_graph + first_layer  # first-layer outputs of a layer exist for all edges
        # Per edge of a chunk: gates, gated first layer, the message before and after the grid SiLU,
        # one message-sized spare, and the message padded by atom (the grid values are tiled, a constant).
        per_edge_chunk = gates + first_layer + (3 + padding) * n_reduced * channels
    per_atom_layer = (6 * n_coeffs + 5 * n_node_grid) * channels + 4 * n_coeffs * hidden * (1 + 2 * c.mmax)
    per_atom = per_atom_layer * (c.num_layers if keeps_graph else 1)
    return MemoryEstimate(
        fixed=int(MARGIN * item * n_atoms * per_atom) + 64 * 2**20,
        per_edge_pass=int(MARGIN * item * per_edge_pass),
        per_edge_layer_graph=int(MARGIN * item * layer_graph),
        per_edge_chunk=int(MARGIN * item * per_edge_chunk),
        n_edges=n_edges,
        n_layers=c.num_layers,
        keeps_graph=keeps_graph,
    )


# Per-chunk edge tensors above glibc's mmap threshold (32 MiB at most) are returned to the OS on every
# free and page-faulted back on every allocation; chunks whose largest tensor stays near 16 MiB avoid that.
CHUNK_TENSOR_BYTES = 16 * 2**20
# The second SO(2) layer (60% of the FLOPs) is one matrix product per order with a row per edge of
# the chunk; on the 2-core CPU machine it runs at 288 GFLOP/s with 260 rows and 325-338 with 520-1320.
MIN_CHUNK_EDGES = 1024


# Packed graphs of several structures (relax_batch) on a CPU: past about this many edge chunks the
# per-edge tensors of the first SO(2) layer and of autograd (all edges at once, not chunked) outgrow
# the caches and the page-fault-free allocation sizes, and each structure costs more than in a smaller
# batch.  Measured with benchmarks/bench_batch_relax.py (32 slabs, 17-38 atoms, default model, 2 cores):
# see ``preferred_batch_edges``.
CPU_BATCH_CHUNKS = 2


def preferred_batch_edges(config: ESCNConfig, dtype: torch.dtype, device: torch.device) -> int | None:
    """Most edges worth packing into one graph of several structures: ``CPU_BATCH_CHUNKS`` default
    edge chunks on a CPU, None (no limit besides memory) on a GPU, where larger graphs fill the device.

    On the 2-core machine with the default model (chunks of 7281 edges) batches of at most 14562
    edges (about 440 atoms of slab) relax the 32 systems of ``benchmarks/bench_batch_relax.py``
    faster than unlimited batches of up to 877 atoms, paired in one process.
    """
    if device.type != "cpu":
        return None
    return CPU_BATCH_CHUNKS * default_edge_chunk_size(config, dtype)


def default_edge_chunk_size(config: ESCNConfig, dtype: torch.dtype) -> int:
    """Most edges per chunk on a CPU: at least ``MIN_CHUNK_EDGES``, more while an edge-frame grid of
    the chunk's edges stays near 16 MiB (the model then splits the edges into even chunks).

    Measured on the 2-core machine, 66-atom slab (1320 edges), paired in-process runs: L6-M3 with one
    chunk or two of 660 edges is 4-9% faster than with 267-edge chunks or three of 440; at L4-M2
    chunks of 440, 660 and 1320 edges are within 5% of each other.
    """
    res_beta, res_alpha = grid_resolution(config.lmax, config.mmax)
    item = torch.empty((), dtype=dtype).element_size()
    per_edge = max(res_beta * res_alpha, (config.lmax + 1) ** 2) * config.sphere_channels * item
    return max(MIN_CHUNK_EDGES, CHUNK_TENSOR_BYTES // per_edge)


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
    room = budget - estimate.fixed - estimate.n_edges * estimate.per_edge_pass
    if estimate.keeps_graph or room <= 0:
        return None
    return max(minimum, int(room // max(estimate.per_edge_chunk, 1)))


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Keep freed memory in the process for reuse instead of returning it to the system (glibc).

    glibc maps every allocation above 32 MiB afresh from the kernel and unmaps it when freed, so each
    pass over a large structure page-faults its large tensors again and again: with the default model
    on 4840 Cu atoms a quarter of the time went to the kernel zeroing pages.  After this call all
    allocations come from the heap and freed memory stays there (process-wide, for the rest of the
    process): evaluations of large cells run faster, at the price of the process keeping its peak
    memory.  Same effect as starting Python with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``.

    Returns False, changing nothing, where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
