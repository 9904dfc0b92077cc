"""Checks of a structure before it reaches the model, each with a specific error."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from .errors import InvalidStructureError, StructureTooLargeError, UnsupportedElementError

__all__ = ["validate_atoms", "check_periodic_cell", "MIN_CELL_HEIGHT", "MAX_PERIODIC_IMAGES"]

# Lattice planes of a real crystal are several tenths of an Angstrom apart at the least; a periodic cell
# thinner than this along a periodic direction is a mistake, and its neighbour search would enumerate
# cutoff / height images of every atom.
MIN_CELL_HEIGHT = 0.1
# Periodic images of the cell that a neighbour search may visit (product over periodic axes).
MAX_PERIODIC_IMAGES = 1_000_000


def validate_atoms(atoms: Atoms, elements: Iterable[int], cutoff: float | None = None) -> None:
    """Raise ``InvalidStructureError`` / ``UnsupportedElementError`` for input the model cannot take.

    Checks: at least one atom; finite positions; finite cell; a non-zero cell vector along every
    periodic axis, periodic vectors that are not parallel or coplanar, and (with ``cutoff``) a cell
    that is not so thin that the neighbour search would have to visit an unbounded number of
    images (see ``check_periodic_cell``); elements covered.
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
    check_periodic_cell(cell, pbc, cutoff)
    covered = set(int(z) for z in elements)
    unknown = sorted(set(int(z) for z in atoms.numbers) - covered)
    if unknown:
        names = [chemical_symbols[z] if 0 <= z < len(chemical_symbols) else f"Z={z}" for z in unknown]
        covered_names = [chemical_symbols[z] for z in sorted(covered)]
        shown = ", ".join(covered_names) if len(covered_names) <= 20 else f"Z = {min(covered)}..{max(covered)}"
        raise UnsupportedElementError(
            f"element(s) {', '.join(names)} not covered by this model; it covers {shown}"
        )


def check_periodic_cell(cell: np.ndarray, pbc: np.ndarray, cutoff: float | None = None) -> None:
    """Refuse periodic cells that no neighbour search can handle, before the search starts.

    * Periodic vectors that are parallel (or, for three, coplanar) span no lattice:
      ``InvalidStructureError`` naming them.
    * The height of the cell along each periodic direction (the distance between the lattice planes
      spanned by the other periodic vectors) must be at least ``MIN_CELL_HEIGHT``:
      ``InvalidStructureError`` naming the axis.
    * With ``cutoff``, the images of each atom that a search visits, ``prod(2 ceil(cutoff / height) + 1)``
      over periodic axes, must stay below ``MAX_PERIODIC_IMAGES``: ``StructureTooLargeError``.

    Args:
        cell: ``(3, 3)`` lattice vectors (rows).
        pbc: ``(3,)`` periodicity per axis.
    """
    periodic_axes = [int(axis) for axis in np.where(np.asarray(pbc, dtype=bool))[0]]
    if not periodic_axes:
        return
    vectors = np.asarray(cell, dtype=np.float64)[periodic_axes]
    lengths = np.linalg.norm(vectors, axis=1)
    for a in range(len(periodic_axes)):
        for b in range(a + 1, len(periodic_axes)):
            sine = np.linalg.norm(np.cross(vectors[a], vectors[b])) / (lengths[a] * lengths[b])
            if sine < 1e-6:
                i, j = periodic_axes[a], periodic_axes[b]
                raise InvalidStructureError(
                    f"periodic cell vectors {i} and {j} are parallel ({cell[i].tolist()} and {cell[j].tolist()}): "
                    "they span no lattice; fix the cell or make one of those axes non-periodic"
                )
    heights = []
    for a, axis in enumerate(periodic_axes):
        others = np.delete(vectors, a, axis=0)
        if len(others):
            # the component of this vector orthogonal to the plane (or line) of the other periodic vectors
            coefficients = np.linalg.lstsq(others.T, vectors[a], rcond=None)[0]
            height = float(np.linalg.norm(vectors[a] - others.T @ coefficients))
        else:
            height = float(lengths[a])
        heights.append(height)
        if height < MIN_CELL_HEIGHT:
            raise InvalidStructureError(
                f"the periodic cell is nearly degenerate: along periodic axis {axis} its lattice planes are "
                f"{height:.3g} A apart (at least {MIN_CELL_HEIGHT} A needed; real crystals have several tenths "
                "of an Angstrom or more); check the cell vectors"
            )
    if cutoff is not None:
        images = float(np.prod([2 * np.ceil(cutoff / height) + 1 for height in heights]))
        if images > MAX_PERIODIC_IMAGES:
            raise StructureTooLargeError(
                f"the cell is so thin for the {cutoff} A cutoff (heights {', '.join(f'{h:.3g}' for h in heights)} A "
                f"along the periodic axes) that the neighbour search would visit {images:.3g} periodic images "
                f"of every atom (limit {MAX_PERIODIC_IMAGES:.0e}); use a larger cell (a supercell)"
            )
