"""Parity with the reference implementation (fairchem-core 1.10) on the fixture's seven structures."""

import numpy as np
import pytest
from _reference import small_fixture
from ase.io import read

from escn_ase import ESCNCalculator

ENERGY_TOLERANCE = 1e-4  # eV
FORCE_TOLERANCE = 3e-3  # eV/A


@pytest.fixture(scope="module")
def structures():
    return read(small_fixture() / "structures.extxyz", ":")


@pytest.mark.parametrize("checkpoint", ["checkpoint.pt", "checkpoint_legacy_ocp_layout.pt"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_reference(structures, checkpoint, dtype):
    calc = ESCNCalculator(small_fixture() / checkpoint, device="cpu", dtype=dtype)
    assert len(structures) == 7
    for atoms in structures:
        reference_energy = atoms.info["ref_energy"]
        reference_forces = atoms.arrays["ref_forces"]
        atoms = atoms.copy()
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        name = atoms.info["name"]
        assert abs(energy - reference_energy) <= ENERGY_TOLERANCE, name
        assert np.abs(forces - reference_forces).max() <= FORCE_TOLERANCE, name


def test_graph_has_the_reference_edge_counts(structures):
    calc = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu")
    for atoms in structures:
        batch = calc.prepare([atoms])
        assert batch.n_edges == atoms.info["n_edges_fairchem"], atoms.info["name"]
        assert batch.n_tied_centres == 0
