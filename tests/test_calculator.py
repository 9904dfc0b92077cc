"""ESCNCalculator behaviour: results, caching, direct-force limits, bad input, memory guard."""

import logging
import warnings

import numpy as np
import pytest
import torch
from _reference import small_fixture
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.calculator import PropertyNotImplementedError

from escn_ase import (
    ESCNCalculator,
    InvalidStructureError,
    NeighborTieWarning,
    StructureTooLargeError,
    UnsupportedElementError,
)


@pytest.fixture()
def calc():
    return ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu")


@pytest.fixture()
def slab():
    atoms = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
    atoms.rattle(0.08, seed=7)
    return atoms


def test_results_are_numpy_and_complete(calc, slab):
    slab.calc = calc
    energy = slab.get_potential_energy()
    assert isinstance(energy, float)
    assert slab.get_potential_energy(force_consistent=True) == energy
    forces = slab.get_forces()
    assert isinstance(forces, np.ndarray) and forces.shape == (len(slab), 3) and forces.dtype == np.float64
    assert set(calc.results) == {"energy", "free_energy", "forces"}


def test_results_are_cached_until_the_structure_changes(calc, slab, monkeypatch):
    calls = []
    original = calc.evaluate
    monkeypatch.setattr(calc, "evaluate", lambda *a, **k: calls.append(1) or original(*a, **k))
    slab.calc = calc
    e0 = slab.get_potential_energy()
    slab.get_forces()
    slab.get_potential_energy()
    assert len(calls) == 1
    slab.positions[0, 2] += 0.05
    e1 = slab.get_potential_energy()
    assert len(calls) == 2 and e1 != e0
    slab.numbers[0] = 29 if slab.numbers[0] != 29 else 28
    slab.get_forces()
    assert len(calls) == 3


def test_direct_force_checkpoint_has_no_stress_and_says_why(calc, slab, caplog):
    slab.calc = calc
    with pytest.raises(PropertyNotImplementedError, match="predicts forces directly"):
        slab.get_stress()
    assert "stress" not in calc.implemented_properties
    assert calc.conservative is False


def test_direct_force_notice_is_logged_once(tmp_path, caplog):
    path = tmp_path / "copy.pt"
    path.write_bytes((small_fixture() / "checkpoint.pt").read_bytes())
    with caplog.at_level(logging.WARNING, logger="escn_ase"):
        ESCNCalculator(path, device="cpu")
        ESCNCalculator(path, device="cpu")
    notices = [r for r in caplog.records if "predicts forces directly" in r.getMessage()]
    assert len(notices) == 1


def test_config_is_inspectable(calc):
    info = calc.describe()
    assert info["config"]["lmax"] == 3 and info["forces"] == "direct" and info["format"] == "fairchem"
    assert calc.config.max_neighbors == 20 and 78 in calc.elements


def test_float64_agrees_with_float32(slab):
    c32 = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float32")
    c64 = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float64")
    r32, r64 = c32.evaluate([slab])[0], c64.evaluate([slab])[0]
    assert abs(r32["energy"] - r64["energy"]) < 1e-4
    assert np.abs(r32["forces"] - r64["forces"]).max() < 1e-3


def test_bad_settings():
    with pytest.raises(ValueError, match="dtype"):
        ESCNCalculator(small_fixture() / "checkpoint.pt", dtype="float16")
    with pytest.raises(ValueError, match="neighbor_ties"):
        ESCNCalculator(small_fixture() / "checkpoint.pt", neighbor_ties="random")
    with pytest.raises(FileNotFoundError):
        ESCNCalculator("/nonexistent/model.pt")


def test_unknown_element(calc):
    atoms = Atoms("UO2", positions=[[0, 0, 0], [1.8, 0, 0], [-1.8, 0, 0]])  # Z = 92 > 89
    atoms.calc = calc
    with pytest.raises(UnsupportedElementError, match="U not covered"):
        atoms.get_potential_energy()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_positions(calc, slab, bad):
    slab.positions[3, 1] = bad
    slab.calc = calc
    with pytest.raises(InvalidStructureError, match=r"NaN or inf in the positions of 1 atom\(s\), first indices \[3\]"):
        slab.get_forces()


def test_empty_structure(calc):
    with pytest.raises(InvalidStructureError, match="empty structure"):
        calc.evaluate([Atoms()])


def test_periodic_axis_without_cell_vector(calc):
    atoms = molecule("CO")
    atoms.pbc = (True, False, False)
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match="axis 0 is periodic.*cell vector 0 is zero"):
        atoms.get_potential_energy()


def test_too_large_structure_fails_before_allocation(slab):
    calc = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", memory_fraction=1e-6)
    slab.calc = calc
    with pytest.raises(StructureTooLargeError, match=r"GiB are available.*about \d+ atoms at this density would fit"):
        slab.get_potential_energy()


def test_edge_chunking_gives_the_same_result(slab):
    whole = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float64")
    chunked = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float64", edge_chunk_size=37)
    r1, r2 = whole.evaluate([slab])[0], chunked.evaluate([slab])[0]
    assert abs(r1["energy"] - r2["energy"]) < 1e-10
    assert np.abs(r1["forces"] - r2["forces"]).max() < 1e-10


def test_edge_chunks_are_even_ranges_of_whole_atoms(calc, slab):
    """A chunk limit splits the edges into ceil(n_edges / limit) chunks of whole target atoms that
    differ by less than one atom's edges: no small last chunk running at a fraction of the rate."""
    batch = calc.prepare([slab])
    order = torch.argsort(batch.edge_index[1], stable=True)
    edge_index = batch.edge_index[:, order]
    vectors = batch.positions[edge_index[0]] - batch.positions[edge_index[1]] + batch.edge_shifts[order]
    n_edges = edge_index.shape[1]
    per_atom = torch.bincount(edge_index[1], minlength=len(slab))
    limit = n_edges // 2 - 1  # two full chunks would not fit: three
    graph = calc.model._edge_graph(edge_index, vectors, len(slab), limit)
    sizes = [chunk.source.shape[0] for chunk in graph.chunks]
    assert sum(sizes) == n_edges and len(sizes) == -(-n_edges // limit) == 3
    assert max(sizes) <= limit and max(sizes) - min(sizes) < int(per_atom.max()) + 1
    covered = torch.cat([chunk.target for chunk in graph.chunks])
    assert torch.equal(covered, edge_index[1])  # consecutive ranges of target atoms, in order


def test_neighbor_ties_warn_once_and_keep_shell_is_cell_invariant():
    primitive = bulk("Cu", "fcc", a=3.6)
    calc = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float64")
    with pytest.warns(NeighborTieWarning, match="keep_shell"):
        calc.evaluate([primitive])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calc.evaluate([primitive * (2, 1, 1)])  # second tie: no second warning
    shell = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float64", neighbor_ties="keep_shell")
    mean = shell.loaded.metadata["normalizers"]["energy"][0]
    e1 = shell.evaluate([primitive])[0]["energy"] - mean
    e8 = shell.evaluate([bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 2)])[0]["energy"] - mean
    assert abs(e8 - 8 * e1) < 1e-6 * abs(e8)


def test_batch_evaluation_equals_single_calls(calc, slab):
    water = molecule("H2O")
    water.rattle(0.01, seed=1)
    together = calc.evaluate([slab, water])
    alone = [calc.evaluate([slab])[0], calc.evaluate([water])[0]]
    for a, b in zip(together, alone):
        assert abs(a["energy"] - b["energy"]) < 1e-5
        assert np.abs(a["forces"] - b["forces"]).max() < 1e-4


def test_calculate_batch_groups_and_matches_single_calls(calc):
    structures = []
    for seed in range(5):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.symbols[seed % 4] = "Pt"
        atoms.rattle(0.05, seed=seed)
        structures.append(atoms)
    batched = calc.calculate_batch(structures, max_atoms_per_batch=9)  # groups of two structures
    for atoms, result in zip(structures, batched):
        single = calc.evaluate([atoms])[0]
        assert abs(result["energy"] - single["energy"]) < 1e-5
        assert np.abs(result["forces"] - single["forces"]).max() < 1e-4
        assert result["forces"].shape == (len(atoms), 3)


def test_keep_freed_memory_switches_glibc_to_heap_reuse_and_results_are_unchanged(slab, tmp_path):
    """Process-wide, so it runs in a child process; the child compares its energy with this one's."""
    import subprocess
    import sys

    slab.write(tmp_path / "slab.traj")
    reference = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu").evaluate([slab])[0]["energy"]
    script = (
        "import sys, ase.io\n"
        "from escn_ase import ESCNCalculator\n"
        "from escn_ase.memory import keep_freed_memory\n"
        "switched = keep_freed_memory()\n"
        f"calc = ESCNCalculator({str(small_fixture() / 'checkpoint.pt')!r}, device='cpu')\n"
        f"energy = calc.evaluate([ase.io.read({str(tmp_path / 'slab.traj')!r})])[0]['energy']\n"
        "print(switched, repr(energy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    switched, energy = done.stdout.split()
    libc = __import__("platform").libc_ver()[0]
    assert switched == ("True" if libc == "glibc" else "False")
    assert abs(float(energy) - reference) < 1e-6
