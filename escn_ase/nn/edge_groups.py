"""Edges grouped by one of their end nodes, padded to a rectangle for batched matrix products.

The first SO(2) layer of every message is moved from the edges to the nodes (see
``escn_ase.nn.first_layer``): each node's projection is computed once and every edge only
contracts its own frame rows with it.  Doing that for all edges of a node at once is one small
matrix product per node, i.e. one ``torch.bmm`` over nodes, once the edges are laid out node by
node in rows of equal length.  ``EdgeGroups`` holds that layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["EdgeGroups", "group_edges"]


@dataclass
class EdgeGroups:
    """Edges laid out as ``(n_groups, width)`` slots, group = the node the edge is grouped by.

    Attributes:
        position: ``(n_edges,)`` flat slot (``group * width + rank``) of each edge.
        n_groups: number of groups (nodes), including nodes without edges.
        width: slots per group, the largest number of edges of one node.
        identity: edges are already stored group by group with ``width`` edges each, so the
            padded layout is a plain view (no copies); the case of a ``max_neighbors`` graph
            grouped by its centre atoms.
    """

    position: torch.Tensor
    n_groups: int
    width: int
    identity: bool

    def pad(self, per_edge: torch.Tensor) -> torch.Tensor:
        """``(n_edges, *rest)`` -> ``(n_groups, width, *rest)``, zeros in unused slots."""
        rest = per_edge.shape[1:]
        if self.identity:
            return per_edge.reshape(self.n_groups, self.width, *rest)
        slots = per_edge.new_zeros(self.n_groups * self.width, *rest)
        return slots.index_copy(0, self.position, per_edge).view(self.n_groups, self.width, *rest)

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """``(n_groups, width, *rest)`` -> ``(n_edges, *rest)`` in the original edge order."""
        flat = padded.reshape(self.n_groups * self.width, *padded.shape[2:])
        return flat if self.identity else flat.index_select(0, self.position)


def group_edges(node_of_edge: torch.Tensor, n_nodes: int) -> EdgeGroups:
    """Group edges by ``node_of_edge (n_edges,)`` (values in ``0..n_nodes-1``)."""
    n_edges = node_of_edge.shape[0]
    counts = torch.bincount(node_of_edge, minlength=n_nodes)
    width = int(counts.max()) if n_edges else 0
    order = torch.argsort(node_of_edge, stable=True)
    first_of_group = torch.cumsum(counts, 0) - counts
    sorted_nodes = node_of_edge[order]
    rank = torch.arange(n_edges, device=node_of_edge.device) - first_of_group[sorted_nodes]
    position = torch.empty_like(node_of_edge)
    position[order] = sorted_nodes * width + rank
    identity = bool(n_edges == n_nodes * width and torch.equal(position, torch.arange(n_edges, device=position.device)))
    return EdgeGroups(position=position, n_groups=n_nodes, width=width, identity=identity)
