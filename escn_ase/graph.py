"""Radius graphs of atomic structures with periodic boundaries, built with vesin.

Conventions (those of the reference eSCN): an edge ``(j -> i)`` joins a neighbour ``j`` (source,
``edge_index[0]``) to a centre ``i`` (target, ``edge_index[1]``); its vector is
``pos[j] - pos[i] + shift @ cell`` with an integer cell ``shift``.  All pairs with
``d <= cutoff`` (inclusive) are kept (two atoms closer than 0.1 A are an error); then, if ``max_neighbors`` is set,
each centre keeps its ``max_neighbors`` nearest neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidStructureError

__all__ = [
    "Graph",
    "build_graph",
    "open_axis_normals",
    "COINCIDENT_DISTANCE_SQUARED",
    "DEFAULT_TIE_TOLERANCE",
    "MIN_SEPARATION",
]

# The reference drops pairs closer than 0.01 A (d^2 <= 1e-4 A^2): self pairs and overlapping images.
COINCIDENT_DISTANCE_SQUARED = 1e-4
# Two distinct atoms (or an atom and a periodic image) closer than this (A) are an error: no structure of
# chemistry has them (the H2 bond is 0.74 A), they come from duplicated atoms, and float32 cannot
# resolve what a potential does there (energies of 1e4-1e6 eV, where its relative precision is meV).
MIN_SEPARATION = 0.1
# Longest search box along a non-periodic axis of a partially periodic structure that goes to vesin (A);
# longer ones go to a k-d tree (``_tree_search``).
MAX_OPEN_EXTENT_FOR_VESIN = 100.0
# Two neighbour distances closer than this (A) count as one shell when truncating.
DEFAULT_TIE_TOLERANCE = 1e-3


@dataclass
class Graph:
    """Edges of one structure.

    Attributes:
        edge_index: ``(2, n_edges)`` int64, rows (source j, target i), sorted by target then distance.
        shifts: ``(n_edges, 3)`` int64 cell shifts; the edge vector is ``pos[j] - pos[i] + shifts @ cell``.
        distances: ``(n_edges,)`` float64 edge lengths.
        n_tied_centres: centres whose ``max_neighbors`` cut fell inside a shell of tied distances.
    """

    edge_index: np.ndarray
    shifts: np.ndarray
    distances: np.ndarray
    n_tied_centres: int = 0

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])


def open_axis_normals(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """``(n_open, 3)`` orthonormal directions perpendicular to the periodic cell vectors, one per open axis.

    A cell's rows along open axes are arbitrary (often zero, sometimes nearly parallel to a periodic
    vector); these directions replace them wherever a well-conditioned basis is needed.
    """
    periodic = np.asarray(cell, dtype=np.float64)[np.asarray(pbc, dtype=bool)]
    _, _, basis = np.linalg.svd(periodic)  # rows after the rank span the null space of the periodic vectors
    return basis[len(periodic):]


def _partially_periodic_box(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """A complete search box for a cell periodic along some axes only, and the positions inside it.

    vesin needs a box along the open axes too, and crashes (SIGFPE) when atoms lie thousands of box
    lengths outside it there.  The open axes get orthonormal directions perpendicular to the periodic
    vectors, long enough to hold every atom with a cutoff of margin, and the atoms are translated
    along them into the box: a translation changes no edge vector, and no shift crosses an open axis.
    """
    box = np.array(cell)
    shifted = positions.copy()
    margin = cutoff + 1.0
    for axis, normal in zip(np.where(~pbc)[0], open_axis_normals(cell, pbc)):
        heights = positions @ normal
        box[axis] = normal * (heights.max() - heights.min() + 2 * margin)
        shifted -= normal * (heights.min() - margin)
    return box, np.ascontiguousarray(shifted)


def _tree_search(
    positions: np.ndarray, box: np.ndarray, pbc: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, S, d)`` of every pair within ``radius`` (vector ``pos[j] - pos[i] + S @ box``), from a k-d tree
    over the periodic images that can reach the atoms.

    For partially periodic structures spread far along an open axis (an atom 1e4 A above a slab): cell-list
    searches bin the whole extent (time and memory grow with it), a k-d tree only sees the points.
    ``box`` rows along open axes must be perpendicular to the periodic ones (``_partially_periodic_box``);
    without periodic axes ``box`` is not used.
    """
    from scipy.spatial import cKDTree

    if not pbc.any():  # a molecule or cluster: the points themselves
        pairs = cKDTree(positions).sparse_distance_matrix(cKDTree(positions), radius, output_type="ndarray")
        return pairs["i"], pairs["j"], np.zeros((len(pairs), 3), dtype=np.int64), pairs["v"]
    volume = abs(np.linalg.det(box))
    # Wrap along the periodic axes (an atom 1e4 cells away would otherwise need 1e4 images per axis);
    # the pair shifts are translated back at the end.
    fractional = positions @ np.linalg.inv(box)
    cells_away = np.zeros((len(positions), 3), dtype=np.int64)
    cells_away[:, pbc] = np.floor(fractional[:, pbc]).astype(np.int64)
    positions = positions - cells_away @ box
    fractional = fractional - cells_away
    ranges = []
    for axis in range(3):
        if not pbc[axis]:
            ranges.append([0])
            continue
        others = np.delete(box, axis, axis=0)
        height = volume / np.linalg.norm(np.cross(others[0], others[1]))
        spread = fractional[:, axis].max() - fractional[:, axis].min()
        reach = int(np.ceil(radius / height + spread))
        ranges.append(range(-reach, reach + 1))
    shift_table = np.array(np.meshgrid(*ranges, indexing="ij"), dtype=np.int64).reshape(3, -1).T  # (n_images, 3)
    images = (positions[None, :, :] + (shift_table @ box)[:, None, :]).reshape(-1, 3)
    pairs = cKDTree(positions).sparse_distance_matrix(cKDTree(images), radius, output_type="ndarray")
    n_atoms = len(positions)
    centre, neighbour = pairs["i"], pairs["j"] % n_atoms
    shifts = shift_table[pairs["j"] // n_atoms] + cells_away[centre] - cells_away[neighbour]
    return centre, neighbour, shifts, pairs["v"]


def _all_pairs(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, S, d)`` of every pair within ``cutoff`` (inclusive), vector ``pos[j] - pos[i] + S @ cell``:
    vesin's cell list, or a k-d tree where vesin would fail (boxes long along an open axis)."""
    from ase.geometry import complete_cell
    from vesin import NeighborList

    positions = np.ascontiguousarray(positions, dtype=np.float64)
    # vesin 0.6 dies with SIGFPE on boxes that are long along an open axis: those go to a k-d tree
    use_tree_search = False
    if pbc.all():
        box = complete_cell(np.asarray(cell, dtype=np.float64))
    elif pbc.any():
        box, positions = _partially_periodic_box(positions, np.asarray(cell, dtype=np.float64), pbc, cutoff)
        use_tree_search = np.linalg.norm(box[~pbc], axis=1).max() > MAX_OPEN_EXTENT_FOR_VESIN
    else:
        box = np.zeros((3, 3))
        # vesin 0.6 also dies (SIGFPE) for a molecule whose atoms are thousands of A apart
        use_tree_search = len(positions) > 1 and np.ptp(positions, axis=0).max() > MAX_OPEN_EXTENT_FOR_VESIN
    search_radius = cutoff * (1.0 + 1e-9) + 1e-9  # vesin's test is strict; ours is inclusive
    if use_tree_search:
        centre, neighbour, shifts, distances = _tree_search(positions, box, pbc, search_radius)
    else:
        calculator = NeighborList(cutoff=search_radius, full_list=True, sorted=False)
        centre, neighbour, shifts, distances = calculator.compute(
            points=positions, box=box, periodic=pbc if pbc.any() else False, quantities="ijSd"
        )
    return centre, neighbour, np.asarray(shifts, dtype=np.int64).reshape(-1, 3), np.asarray(distances, np.float64)


def _refuse_coincident_atoms(centre, neighbour, shifts, distances) -> None:
    """``InvalidStructureError`` naming the first pair of distinct atoms (or images) closer than MIN_SEPARATION."""
    coincident = distances < MIN_SEPARATION
    coincident &= (centre != neighbour) | np.any(shifts != 0, axis=1)  # not an atom with itself
    if coincident.any():
        first = int(np.argmax(coincident))
        raise InvalidStructureError(
            f"atoms {int(centre[first])} and {int(neighbour[first])}"
            + (f" (periodic image {shifts[first].tolist()})" if np.any(shifts[first]) else "")
            + f" are {distances[first]:.3g} A apart, closer than {MIN_SEPARATION:g} A: "
            f"{int(coincident.sum()) // 2 or 1} coincident pair(s); remove duplicated atoms"
        )


def build_graph(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
    cutoff: float,
    max_neighbors: int | None = None,
    *,
    keep_tied_shell: bool = False,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
) -> Graph:
    """Neighbour graph of one structure.

    Args:
        positions: ``(n_atoms, 3)`` Cartesian positions (A).
        cell: ``(3, 3)`` lattice vectors as rows; rows of non-periodic axes may be anything.
        pbc: ``(3,)`` periodicity per axis.
        cutoff: inclusive radius (A).
        max_neighbors: keep at most this many nearest neighbours per centre (None: all).
        keep_tied_shell: when the cut falls inside a shell of neighbours whose distances agree
            within ``tie_tolerance``, keep the whole shell (well defined, invariant to the choice of
            cell and atom order) instead of exactly ``max_neighbors`` (the reference's rule, which
            then depends on floating-point sort order).
        tie_tolerance: distance tolerance (A) that defines a tie.
    """
    pbc = np.asarray(pbc, dtype=bool)
    centre, neighbour, shifts, distances = _all_pairs(positions, cell, pbc, cutoff)
    _refuse_coincident_atoms(centre, neighbour, shifts, distances)
    keep = (distances <= cutoff) & (distances**2 > COINCIDENT_DISTANCE_SQUARED)
    centre, neighbour, shifts, distances = centre[keep], neighbour[keep], shifts[keep], distances[keep]

    # Deterministic order whatever vesin's: by centre, distance, neighbour, shift.
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], neighbour, distances, centre))
    centre, neighbour, shifts, distances = centre[order], neighbour[order], shifts[order], distances[order]

    n_tied = 0
    if max_neighbors is not None and len(centre) > 0:
        starts = np.searchsorted(centre, centre, side="left")
        rank = np.arange(len(centre)) - starts  # rank of each pair within its centre, nearest first
        counts = np.bincount(centre, minlength=positions.shape[0])
        truncated = counts[centre] > max_neighbors
        keep = rank < max_neighbors
        # A tie: the first dropped neighbour is as close (within tolerance) as the last kept one.
        boundary = truncated & (rank == max_neighbors - 1)
        last_kept = np.full(positions.shape[0], np.inf)
        last_kept[centre[boundary]] = distances[boundary]
        first_dropped = truncated & (rank == max_neighbors)
        tied = np.zeros(positions.shape[0], dtype=bool)
        tied[centre[first_dropped]] = distances[first_dropped] - last_kept[centre[first_dropped]] < tie_tolerance
        n_tied = int(tied.sum())
        if keep_tied_shell and n_tied:
            keep |= tied[centre] & (distances - last_kept[centre] < tie_tolerance)
        centre, neighbour, shifts, distances = centre[keep], neighbour[keep], shifts[keep], distances[keep]

    edge_index = np.stack([neighbour, centre]).astype(np.int64, copy=False)
    return Graph(edge_index=edge_index, shifts=shifts, distances=distances, n_tied_centres=n_tied)
