"""Determinism and the invariances the model must have (and the rotation error it is allowed)."""

import json
import logging

import numpy as np
import pytest
from _reference import small_fixture
from ase.build import bulk, fcc111
from ase.io import read
from scipy.spatial.transform import Rotation

from escn_ase import ESCNCalculator

# eSCN is only approximately rotation-equivariant (global S2 grids, fixed sphere points, truncated
# orders). How much depends on the weights: the fixture's rotation_check.json holds fairchem's own error
# for the same structures and rotations (seed-averaged); escn_ase may show at most this factor times it.
ROTATION_BOUND_FACTOR = 2.0


@pytest.fixture(scope="module")
def calc():
    logging.getLogger("escn_ase").setLevel(logging.ERROR)
    return ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu", dtype="float64")


@pytest.fixture(scope="module")
def frames():
    return {a.info["name"]: a for a in read(small_fixture() / "structures.extxyz", ":")}


def _evaluate(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


def test_repeated_calls_are_bitwise_identical(frames):
    first = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu")
    second = ESCNCalculator(small_fixture() / "checkpoint.pt", device="cpu")
    for atoms in frames.values():
        e1, f1 = _evaluate(atoms, first)
        first.reset()
        e2, f2 = _evaluate(atoms, first)
        e3, f3 = _evaluate(atoms, second)
        assert e1 == e2 == e3
        assert np.array_equal(f1, f2) and np.array_equal(f1, f3)


@pytest.mark.parametrize("name", ["cu111_CO", "molecule_nopbc", "dense_maxneigh"])
def test_translation_invariance(calc, frames, name):
    atoms = frames[name]
    e0, f0 = _evaluate(atoms, calc)
    moved = atoms.copy()
    moved.translate([0.37, -1.21, 0.53])  # not wrapped: periodic images must not matter
    e1, f1 = _evaluate(moved, calc)
    assert abs(e1 - e0) < 1e-8
    assert np.abs(f1 - f0).max() < 1e-8


@pytest.mark.parametrize("name", ["pt111_O", "cluster_OH_nopbc"])
def test_permutation_invariance(calc, frames, name):
    atoms = frames[name]
    e0, f0 = _evaluate(atoms, calc)
    order = np.random.default_rng(5).permutation(len(atoms))
    e1, f1 = _evaluate(atoms[order], calc)
    assert abs(e1 - e0) < 1e-8
    assert np.abs(f1 - f0[order]).max() < 1e-8


def test_supercell_energy_is_extensive(calc):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (1, 1, 1)
    atoms.symbols[[1, 3]] = ["Pd", "Au"]
    atoms.rattle(0.05, seed=3)
    atoms.cell[0, 1] += 0.3  # sheared: no symmetric ties
    e_cell, f_cell = _evaluate(atoms, calc)
    assert calc.prepare([atoms]).n_tied_centres == 0
    supercell = atoms * (2, 2, 2)
    e_super, f_super = _evaluate(supercell, calc)
    # fairchem's de-normalisation adds the energy mean once per system, not per atom, so only
    # the part above it is extensive (the checkpoint's mean is -0.7 eV).
    mean = calc.loaded.metadata["normalizers"]["energy"][0]
    assert mean != 0.0
    assert abs((e_super - mean) - 8 * (e_cell - mean)) <= 1e-5 * abs(8 * (e_cell - mean))
    assert np.abs(f_super[: len(atoms)] - f_cell).max() < 1e-8


def test_slab_pbc_ttf_equals_ttt_with_enough_vacuum(calc):
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=7.0)  # 14 A of vacuum > cutoff 6 A
    slab.rattle(0.1, seed=2)
    slab.pbc = (True, True, True)
    assert calc.prepare([slab]).n_tied_centres == 0
    e_ttt, f_ttt = _evaluate(slab, calc)
    slab.pbc = (True, True, False)
    e_ttf, f_ttf = _evaluate(slab, calc)
    assert abs(e_ttt - e_ttf) < 1e-10
    assert np.abs(f_ttt - f_ttf).max() < 1e-10


@pytest.mark.parametrize("name", ["cu111_CO", "molecule_nopbc"])
def test_rotation_error_is_bounded(calc, frames, name):
    atoms = frames[name]
    e0, f0 = _evaluate(atoms, calc)
    worst_energy = worst_force = 0.0
    for seed in range(3):
        rotation = Rotation.random(random_state=1000 + seed).as_matrix()
        rotated = atoms.copy()
        rotated.positions = atoms.positions @ rotation.T
        rotated.cell = atoms.cell.array @ rotation.T
        e1, f1 = _evaluate(rotated, calc)
        worst_energy = max(worst_energy, abs(e1 - e0))
        worst_force = max(worst_force, np.abs(f0 @ rotation.T - f1).max())
    reference = json.loads((small_fixture() / "rotation_check.json").read_text())[name]["rotations"]
    assert [r["rotation_seed"] for r in reference] == [1000, 1001, 1002]
    assert worst_energy < ROTATION_BOUND_FACTOR * max(r["dE_seedavg"] for r in reference)
    assert worst_force < ROTATION_BOUND_FACTOR * max(r["max_abs_dF_seedavg"] for r in reference)
    # ... and the model is far from invariant garbage: forces do rotate with the structure.
    assert worst_force < 0.05 * np.abs(f0).max()
