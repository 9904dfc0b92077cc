"""EMT labels (energy, forces, stress) for a structure, and the sanity filter applied before storing it."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ["label_with_emt", "rejection_reason"]


def label_with_emt(atoms: Atoms) -> Atoms:
    """A copy of ``atoms`` carrying a ``SinglePointCalculator`` with EMT's energy, forces and stress.

    A fresh ``EMT`` calculator is used per structure so no state leaks between structures.
    Shapes: forces (n_atoms, 3) eV/A, stress (6,) Voigt eV/A^3 in ASE's sign convention.
    """
    from ase.calculators.emt import EMT

    labelled = atoms.copy()
    labelled.calc = EMT()
    energy = float(labelled.get_potential_energy())
    forces = np.array(labelled.get_forces(), dtype=float)
    stress = np.array(labelled.get_stress(voigt=True), dtype=float)
    labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces, stress=stress)
    return labelled


def rejection_reason(atoms: Atoms, max_force: float) -> str | None:
    """Why a labelled structure is unusable (``None`` when it is fine).

    Rejected: a non-finite energy, force or stress, or any force component vector longer than
    ``max_force`` eV/A (EMT gives such values for near-overlapping atoms, which no potential should fit).
    """
    results = atoms.calc.results
    if not np.isfinite(results["energy"] / len(atoms)):
        return "non_finite_energy"
    if not (np.all(np.isfinite(results["forces"])) and np.all(np.isfinite(results["stress"]))):
        return "non_finite_forces_or_stress"
    if np.linalg.norm(results["forces"], axis=1).max() > max_force:
        return "max_force_exceeded"
    return None
