"""Packing structures into the model's graph inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from .graph import Graph, build_graph, open_axis_normals
from .model import ESCNConfig

__all__ = ["GraphBatch", "pack_structures"]


@dataclass
class GraphBatch:
    """Model inputs for ``n_systems`` structures packed into one graph (see ``escn_ase.model``).

    Attributes:
        atomic_numbers: ``(n_atoms,)`` long.
        positions: ``(n_atoms, 3)``.
        edge_index: ``(2, n_edges)`` long, (source j, target i), indices into the packed atoms.
        edge_shifts: ``(n_edges, 3)`` Cartesian periodic shifts.
        system_index: ``(n_atoms,)`` long.
        cells: ``(n_systems, 3, 3)`` complete cells (rows).
        n_systems: number of structures.
        n_tied_centres: centres whose neighbour cut fell inside a tied shell (all structures).
        periodic_3d: ``(n_systems,)`` bool, structures periodic along all three axes.
    """

    atomic_numbers: torch.Tensor
    positions: torch.Tensor
    edge_index: torch.Tensor
    edge_shifts: torch.Tensor
    system_index: torch.Tensor
    cells: torch.Tensor
    n_systems: int
    n_tied_centres: int
    periodic_3d: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def model_inputs(self) -> dict:
        return dict(
            atomic_numbers=self.atomic_numbers,
            positions=self.positions,
            edge_index=self.edge_index,
            edge_shifts=self.edge_shifts,
            system_index=self.system_index,
            n_systems=self.n_systems,
        )


def local_positions(atoms: Atoms) -> np.ndarray:
    """``(n_atoms, 3)`` float64 positions the model sees: wrapped into the cell along periodic axes and
    centred on their mean.

    Energies, forces and stress are invariant to both (a lattice translation of one atom, a translation
    of all), but the edge vectors ``pos_j - pos_i + shift`` are formed in the model's dtype: from raw
    coordinates of 1e5 A (or atoms thousands of cells outside their cell) float32 would keep only
    millimetres of them.  Done in float64 before any cast.
    """
    positions = np.asarray(atoms.positions, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any():
        # Fractional coordinates in a basis of the periodic vectors and unit normals for the open axes
        # (the cell's own rows there are arbitrary and may be nearly parallel to a periodic one).
        basis = np.array(atoms.cell.array, dtype=np.float64)
        if not pbc.all():
            basis[~pbc] = open_axis_normals(basis, pbc)
        fractional = np.linalg.solve(basis.T, positions.T).T
        fractional[:, pbc] -= np.floor(fractional[:, pbc])
        positions = fractional @ basis
    return positions - positions.mean(axis=0)


def structure_graph(atoms: Atoms, config: ESCNConfig, keep_tied_shell: bool = False) -> Graph:
    """The neighbour graph of one structure with the model's cutoff and neighbour limit (built on
    ``local_positions``, with which ``pack_structures`` packs it)."""
    return build_graph(
        local_positions(atoms),
        atoms.cell.complete(),
        atoms.pbc,
        config.cutoff,
        config.max_neighbors,
        keep_tied_shell=keep_tied_shell,
    )


def pack_structures(
    structures: Sequence[Atoms],
    config: ESCNConfig,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    keep_tied_shell: bool = False,
    graphs: Sequence[Graph] | None = None,
) -> GraphBatch:
    """Build each structure's graph (unless given) and pack all into one ``GraphBatch``."""
    if graphs is None:
        graphs = [structure_graph(atoms, config, keep_tied_shell) for atoms in structures]
    numbers, positions, edges, shifts, system, cells = [], [], [], [], [], []
    offset = 0
    for index, (atoms, graph) in enumerate(zip(structures, graphs)):
        cell = np.asarray(atoms.cell.complete(), dtype=np.float64)
        numbers.append(np.asarray(atoms.numbers, dtype=np.int64))
        positions.append(local_positions(atoms))
        edges.append(graph.edge_index + offset)
        shifts.append(graph.shifts.astype(np.float64) @ cell)
        system.append(np.full(len(atoms), index, dtype=np.int64))
        cells.append(cell)
        offset += len(atoms)

    def as_tensor(parts, tensor_dtype):
        return torch.as_tensor(np.concatenate(parts), dtype=tensor_dtype, device=device)

    return GraphBatch(
        atomic_numbers=as_tensor(numbers, torch.long),
        positions=as_tensor(positions, dtype),
        edge_index=torch.as_tensor(np.concatenate(edges, axis=1), dtype=torch.long, device=device),
        edge_shifts=as_tensor(shifts, dtype).reshape(-1, 3),
        system_index=as_tensor(system, torch.long),
        cells=torch.as_tensor(np.stack(cells), dtype=dtype, device=device),
        n_systems=len(structures),
        n_tied_centres=sum(g.n_tied_centres for g in graphs),
        periodic_3d=np.array([bool(np.all(a.pbc)) for a in structures]),
    )
