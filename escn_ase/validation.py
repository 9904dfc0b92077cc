"""Checks of a structure before it reaches the model, each with a specific error."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from .errors import InvalidStructureError, UnsupportedElementError

__all__ = ["validate_atoms"]


def validate_atoms(atoms: Atoms, elements: Iterable[int]) -> None:
    """Raise ``InvalidStructureError`` / ``UnsupportedElementError`` for input the model cannot take.

    Checks: at least one atom; finite positions; finite cell; a non-zero cell vector along every
    periodic axis (and a non-degenerate cell when all three are periodic); elements covered.
    """
    if len(atoms) == 0:
        raise InvalidStructureError("empty structure: the Atoms object has no atoms")
    positions = atoms.positions
    bad = np.where(~np.isfinite(positions).all(axis=1))[0]
    if len(bad):
        raise InvalidStructureError(
            f"NaN or inf in the positions of {len(bad)} atom(s), first indices {bad[:10].tolist()}"
        )
    cell = np.asarray(atoms.cell.array)
    if not np.isfinite(cell).all():
        raise InvalidStructureError("NaN or inf in the cell")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    for axis in np.where(pbc)[0]:
        if np.linalg.norm(cell[axis]) < 1e-8:
            raise InvalidStructureError(
                f"axis {axis} is periodic (pbc={pbc.tolist()}) but cell vector {axis} is zero; "
                "set the cell or make that axis non-periodic"
            )
    if pbc.all() and abs(np.linalg.det(cell)) < 1e-8:
        raise InvalidStructureError("the periodic cell has zero volume (its vectors are linearly dependent)")
    covered = set(int(z) for z in elements)
    unknown = sorted(set(int(z) for z in atoms.numbers) - covered)
    if unknown:
        names = [chemical_symbols[z] if 0 <= z < len(chemical_symbols) else f"Z={z}" for z in unknown]
        covered_names = [chemical_symbols[z] for z in sorted(covered)]
        shown = ", ".join(covered_names) if len(covered_names) <= 20 else f"Z = {min(covered)}..{max(covered)}"
        raise UnsupportedElementError(
            f"element(s) {', '.join(names)} not covered by this model; it covers {shown}"
        )
