"""The neighbour graph against ASE's own neighbour list, and the max_neighbors rules."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.neighborlist import neighbor_list

from escn_ase.errors import InvalidStructureError
from escn_ase.graph import build_graph


def _edge_set(edge_index, shifts):
    return {(int(j), int(i), *map(int, s)) for (j, i), s in zip(edge_index.T, shifts)}


@pytest.mark.parametrize(
    "pbc", [(True, True, True), (True, True, False), (False, False, False), (True, False, True)]
)
def test_matches_ase_neighbor_list(pbc):
    atoms = fcc111("Cu", size=(3, 3, 3), vacuum=6.0)
    atoms.rattle(0.1, seed=4)
    atoms.pbc = pbc
    cutoff = 5.0
    graph = build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, cutoff)
    centre, neighbour, shifts = neighbor_list("ijS", atoms, cutoff)
    assert _edge_set(graph.edge_index, graph.shifts) == _edge_set(np.stack([neighbour, centre]), shifts)
    vectors = (
        atoms.positions[graph.edge_index[0]] - atoms.positions[graph.edge_index[1]] + graph.shifts @ atoms.cell.array
    )
    assert np.allclose(np.linalg.norm(vectors, axis=1), graph.distances)


def test_cutoff_is_inclusive():
    atoms = Atoms("H3", positions=[[0, 0, 0], [2.0, 0, 0], [4.5, 0, 0]])
    graph = build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, cutoff=2.0)
    pairs = {(int(j), int(i)) for j, i in graph.edge_index.T}
    assert (1, 0) in pairs and (0, 1) in pairs  # exactly at the cutoff: kept
    assert (1, 2) not in pairs and (2, 1) not in pairs


def test_coincident_atoms_are_an_error_naming_the_pair():
    """Atoms 0.005 A apart used to be dropped from each other's neighbours silently (E = E(one) + E(other))."""
    atoms = Atoms("H3", positions=[[0, 0, 0], [2.0, 0, 0], [2.0, 0.005, 0]])
    with pytest.raises(InvalidStructureError, match=r"atoms (1 and 2|2 and 1) are 0.005 A apart"):
        build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, cutoff=2.0)
    periodic = Atoms("H", positions=[[0, 0, 0]], cell=[2.0, 2.0, 2.0], pbc=True)  # an atom and its images: fine
    assert build_graph(periodic.positions, periodic.cell.complete(), periodic.pbc, cutoff=2.0).n_edges == 6


def test_max_neighbors_keeps_the_nearest():
    rng = np.random.default_rng(1)
    atoms = Atoms("C12", positions=rng.uniform(0, 6, size=(12, 3)))
    full = build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, cutoff=6.0)
    cut = build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, cutoff=6.0, max_neighbors=4)
    for centre in range(len(atoms)):
        kept = np.sort(cut.distances[cut.edge_index[1] == centre])
        nearest = np.sort(full.distances[full.edge_index[1] == centre])[:4]
        assert np.allclose(kept, nearest)
    assert cut.n_tied_centres == 0


def test_ties_are_detected_and_keep_shell_is_cell_invariant():
    primitive = bulk("Cu", "fcc", a=3.6)
    # fcc shells: 12 + 6 below the 24-atom third shell: max_neighbors = 20 cuts inside it.
    graph = build_graph(primitive.positions, primitive.cell.complete(), primitive.pbc, 6.0, max_neighbors=20)
    assert graph.n_tied_centres == 1 and graph.n_edges == 20
    shell = build_graph(
        primitive.positions, primitive.cell.complete(), primitive.pbc, 6.0, max_neighbors=20, keep_tied_shell=True
    )
    assert shell.n_edges == 12 + 6 + 24
    cubic = bulk("Cu", "fcc", a=3.6, cubic=True)
    shell_cubic = build_graph(cubic.positions, cubic.cell.complete(), cubic.pbc, 6.0, 20, keep_tied_shell=True)
    assert shell_cubic.n_edges == 4 * 42


def test_deterministic_order():
    atoms = bulk("Pt", "fcc", a=3.9, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=0)
    a = build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, 5.0)
    b = build_graph(atoms.positions, atoms.cell.complete(), atoms.pbc, 5.0)
    assert np.array_equal(a.edge_index, b.edge_index) and np.array_equal(a.shifts, b.shifts)
    assert np.all(np.diff(a.edge_index[1]) >= 0)  # sorted by centre


@pytest.mark.parametrize("pbc", [(False, False, True), (True, True, False)])
def test_partially_periodic_structures_with_atoms_far_apart_along_open_axes(pbc):
    """Vesin died with SIGFPE for a 1D-periodic cell with atoms thousands of A apart along the open axes.

    The far atom meets only its own periodic images: the reference is the union of the graphs of the
    far atom alone and of the compact rest (ASE's cell list needs minutes for the spread-out whole)."""
    positions = np.array([[9000.0, 9000.0, 9000.0], [0.0, 0.0, 0.0], [0.0, 0.4, 0.5], [3.0, 0.0, 0.5]])
    cell, pbc = np.eye(3) * 2.5, np.array(pbc)
    graph = build_graph(positions, cell, pbc, cutoff=4.9)
    expected = set()
    for part in ([0], [1, 2, 3]):
        atoms = Atoms(f"Cu{len(part)}", positions=positions[part], cell=cell, pbc=pbc)
        i, j, shifts = neighbor_list("ijS", atoms, 4.9)
        expected |= _edge_set(np.stack([np.array(part)[j], np.array(part)[i]]), shifts)
    assert graph.n_edges > 0 and _edge_set(graph.edge_index, graph.shifts) == expected


@pytest.mark.parametrize("pbc", [(False, True, False), (True, True, False), (True, False, False)])
@pytest.mark.parametrize("seed", [0, 1])
def test_tree_search_for_far_spread_structures_matches_the_cell_list(pbc, seed):
    """Atoms spread far along an open axis go to a k-d tree over periodic images (a cell list bins the whole
    extent: 17 s for one atom 3,000 A away); on compact skewed cells both searches give the same pairs."""
    from escn_ase.graph import _partially_periodic_box, _tree_search

    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 3.7 + rng.uniform(-0.8, 0.8, (3, 3))
    positions = rng.uniform(-2.0, 6.0, (7, 3))
    pbc = np.array(pbc)
    box, shifted = _partially_periodic_box(positions, cell, pbc, 5.0)
    i, j, s, d = _tree_search(shifted, box, pbc, 5.0)
    atoms = Atoms("Cu7", positions=shifted, cell=box, pbc=pbc)
    ci, cj, cs = neighbor_list("ijS", atoms, 5.0)
    tree_pairs = {(int(a), int(b), *map(int, c)) for a, b, c in zip(i, j, s) if not (a == b and not c.any())}
    assert tree_pairs == {(int(a), int(b), *map(int, c)) for a, b, c in zip(ci, cj, cs)}
    far = Atoms("Cu2", positions=[[0.0, 0.0, 0.0], [3.0e4, 1.0, 3.0e4]], cell=cell, pbc=pbc)
    graph = build_graph(far.positions, far.cell.complete(), far.pbc, 5.0)
    assert set(map(int, graph.edge_index[1])) <= {0, 1} and np.all(graph.distances <= 5.0)


def test_molecule_spread_over_thousands_of_angstrom():
    """Vesin died with SIGFPE (killing the process) for two atoms 7,600 A apart without periodicity; a
    spread-out molecule goes to the k-d tree and gets the same pairs as ASE's neighbour list."""
    far = np.array([[2696.9, 2696.9, 0.49], [-2696.9, -2696.9, -0.49]])
    assert build_graph(far, np.zeros((3, 3)), np.zeros(3, bool), 5.0).n_edges == 0
    rng = np.random.default_rng(3)
    positions = rng.uniform(0.0, 6.0, (12, 3))
    positions[:4] += 800.0  # two clusters far apart
    graph = build_graph(positions, np.zeros((3, 3)), np.zeros(3, bool), 5.0)
    i, j, shifts = neighbor_list("ijS", Atoms("Cu12", positions=positions), 5.0)
    assert _edge_set(graph.edge_index, graph.shifts) == _edge_set(np.stack([j, i]), shifts)
