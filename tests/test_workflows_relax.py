"""relax(): convergence to fmax, fixed layers, cell relaxation against an equation of state."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.eos import EquationOfState

from escn_ase.workflows.relax import fix_bottom_layers, layer_indices, relax


def _rattled_slab() -> Atoms:  # noqa: F821
    slab = fcc111("Cu", (1, 1, 4), vacuum=6.0, periodic=True)
    slab.positions[2:] += [[0.15, -0.1, 0.12], [-0.1, 0.08, -0.15]]  # displace the two top atoms
    return slab


@pytest.mark.parametrize("optimizer, use_workflow_calc", [("BFGS", True), ("FIRE", False), ("LBFGS", False)])
def test_relax_reaches_fmax_with_bottom_layers_fixed(workflow_calc, optimizer, use_workflow_calc):
    calc = workflow_calc if use_workflow_calc else EMT()  # optimiser wiring does not depend on the model
    slab = _rattled_slab()
    before = slab.positions.copy()
    start = slab.copy()
    start.calc = calc
    assert np.abs(start.get_forces()[2:]).max() > 0.2  # precondition: there is something to relax
    result = relax(slab, calc, fmax=0.05, steps=200, optimizer=optimizer, fix_bottom_layers=2)

    assert result.converged and result.fmax <= 0.05
    # independent check of the reported fmax: forces of a fresh evaluation on the free atoms
    fresh = result.atoms.copy()
    fresh.calc = calc
    free = [2, 3]  # fcc111 numbers atoms from the bottom layer up
    assert np.sqrt((fresh.get_forces(apply_constraint=False)[free] ** 2).sum(axis=1)).max() <= 0.05 + 1e-9
    np.testing.assert_array_equal(result.atoms.positions[:2], before[:2])  # fixed layers did not move
    assert result.energy < result.initial_energy
    np.testing.assert_array_equal(slab.positions, before)  # the input is not modified


def test_layers_follow_ase_layer_tags():
    slab = fcc111("Pt", (2, 2, 4), vacuum=5.0)
    slab.rattle(0.05, seed=3)  # rippled layers stay together within the tolerance
    layers = layer_indices(slab)
    # ase tags fcc111 layers 1 (top) .. 4 (bottom)
    assert [sorted(set(slab.get_tags()[layer])) for layer in layers] == [[4], [3], [2], [1]]
    fixed = fix_bottom_layers(slab, 2)
    assert sorted(fixed) == sorted(np.flatnonzero(slab.get_tags() >= 3).tolist())
    with pytest.raises(ValueError, match="only 4 layer"):
        fix_bottom_layers(slab, 4)


def test_cell_relaxation_matches_equation_of_state(workflow_calc):
    """Lattice constant from FrechetCellFilter vs a fit of E(V) with the same calculator."""
    result = relax(bulk("Cu", "fcc", a=3.75), workflow_calc, fmax=0.002, relax_cell=True, optimizer="BFGS")
    assert result.converged
    a_relaxed = np.sqrt(2.0) * result.atoms.cell.lengths()[0]

    volumes, energies = [], []
    for a in np.linspace(3.45, 3.75, 7):
        atoms = bulk("Cu", "fcc", a=a)
        atoms.calc = workflow_calc
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    a_eos = (4.0 * v0) ** (1.0 / 3.0)
    assert a_relaxed == pytest.approx(a_eos, abs=0.01)


def test_bad_arguments_are_named():
    atoms = bulk("Cu")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        relax(atoms, EMT(), optimizer="CG")
    with pytest.raises(ValueError, match="fmax must be a positive"):
        relax(atoms, EMT(), fmax=0.0)
    slab = fcc111("Cu", (1, 1, 3), vacuum=5.0)
    with pytest.raises(ValueError, match="periodic in all three"):
        relax(slab, EMT(), relax_cell=True)


@pytest.mark.parametrize("keep_symmetry", [True, False])
def test_keep_symmetry_keeps_the_space_group(workflow_calc, keep_symmetry):
    """A cubic Cu cell, strained and rattled by 1e-3 A (Fm-3m within the 1e-2 A tolerance): with
    keep_symmetry the relaxed cell is Fm-3m even at a 1e-5 A tolerance; without it the rattle survives."""
    from ase.spacegroup.symmetrize import check_symmetry

    atoms = bulk("Cu", "fcc", a=3.70, cubic=True)
    atoms.rattle(1e-3, seed=3)
    result = relax(atoms, workflow_calc, fmax=0.02, steps=300, relax_cell=True, keep_symmetry=keep_symmetry)
    assert result.converged
    tight = check_symmetry(result.atoms, 1e-5).number
    assert (tight == 225) is keep_symmetry
    if keep_symmetry:
        lengths = result.atoms.cell.lengths()
        assert np.ptp(lengths) < 1e-6 and np.allclose(result.atoms.cell.angles(), 90.0, atol=1e-6)
        assert abs(lengths[0] - 3.70) > 0.01  # the cell did relax


def test_keep_symmetry_refuses_a_bad_tolerance(workflow_calc):
    with pytest.raises(ValueError, match="symprec must be a positive"):
        relax(bulk("Cu"), workflow_calc, keep_symmetry=True, symprec=0.0)
