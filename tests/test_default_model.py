"""The shipped default model: loads offline, reproduces its export-time numbers, is conservative."""

import socket

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from escn_ase import ESCNCalculator, UnsupportedElementError
from escn_ase.registry import default_model_path

pytestmark = pytest.mark.skipif(not default_model_path().exists(), reason="default model not in models/")


@pytest.fixture(scope="module")
def calc():
    return ESCNCalculator()


def test_loads_and_runs_with_networking_disabled(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during a test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = ESCNCalculator()
    assert np.isfinite(atoms.get_potential_energy())


def test_regression_set(calc):
    regression = calc.loaded.metadata["regression"]
    assert len(regression) >= 4
    for entry in regression:
        atoms = Atoms(entry["symbols"], positions=entry["positions"], cell=entry["cell"], pbc=entry["pbc"])
        result = calc.calculate_batch([atoms])[0]
        assert abs(result["energy"] - entry["energy"]) < 2e-4 * max(1.0, len(atoms)), entry["name"]
        assert np.abs(result["forces"] - np.array(entry["forces"])).max() < 2e-3, entry["name"]
        if "stress" in entry:
            assert np.abs(result["stress"] - np.array(entry["stress"])).max() < 2e-5, entry["name"]


def test_is_conservative_with_stress(calc):
    assert calc.conservative and calc.config.smooth_cutoff and calc.config.max_neighbors is None
    atoms = bulk("Pt", "fcc", a=3.97, cubic=True)
    atoms.symbols[0] = "Cu"
    atoms.rattle(0.05, seed=4)
    atoms.calc = ESCNCalculator(dtype="float64")
    assert np.abs(atoms.get_forces() - calculate_numerical_forces(atoms, eps=1e-4)).max() < 1e-5
    stress = atoms.get_stress()
    assert np.abs(stress - calculate_numerical_stress(atoms, eps=1e-5)).max() < 1e-6


def test_covered_elements_and_clear_error(calc):
    symbols = {Atoms(numbers=[z]).get_chemical_symbols()[0] for z in calc.elements}
    assert symbols == {"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"}
    atoms = bulk("Fe", "bcc", a=2.87)
    atoms.calc = calc
    with pytest.raises(UnsupportedElementError, match="Fe not covered.*Cu"):
        atoms.get_potential_energy()


def test_close_to_emt_on_a_fresh_structure(calc):
    from ase.calculators.emt import EMT

    atoms = bulk("Cu", "fcc", a=3.63, cubic=True) * (2, 1, 1)
    atoms.symbols[[0, 5]] = ["Au", "Pd"]
    atoms.rattle(0.08, seed=11)
    reference = atoms.copy()
    reference.calc = EMT()
    atoms.calc = calc
    per_atom_error = abs(atoms.get_potential_energy() - reference.get_potential_energy()) / len(atoms)
    assert per_atom_error < 0.03
    assert np.abs(atoms.get_forces() - reference.get_forces()).mean() < 0.15
