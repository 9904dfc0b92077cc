"""Harmonic phonons by finite displacements with phonopy, forces from any ASE calculator.

The band path is the standard one of the primitive cell's Bravais lattice as ASE defines it
(``Cell.bandpath``, Setyawan-Curtarolo conventions), so seekpath is not needed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ._common import is_direct_force, optional_import, quiet_third_party

__all__ = ["PhononResult", "compute_phonons", "supercell_matrix"]

_PRETTY_LABELS = {"G": "\u0393"}


@dataclass
class PhononResult:
    """Phonon frequencies in THz (negative values stand for imaginary modes)."""

    gamma_frequencies: np.ndarray  # (3 * n_primitive_atoms,)
    special_points: dict[str, np.ndarray]  # label -> scaled q in the primitive reciprocal basis
    special_point_frequencies: dict[str, np.ndarray]  # label -> (3 * n_primitive_atoms,)
    path: str
    band_distances: list[np.ndarray] = field(repr=False)  # per segment (n_q,)
    band_frequencies: list[np.ndarray] = field(repr=False)  # per segment (n_q, 3 * n_primitive_atoms)
    tick_positions: list[float] = field(repr=False)
    tick_labels: list[str] = field(repr=False)
    dos_frequencies: np.ndarray | None = field(repr=False)
    dos: np.ndarray | None = field(repr=False)
    n_displacements: int = 0
    supercell_matrix: list[list[int]] = field(default_factory=list)
    plot: str | None = None
    phonopy: object = field(default=None, repr=False)

    @property
    def min_frequency(self) -> float:
        """Lowest frequency on the band path (THz); clearly negative values flag instabilities."""
        return float(min(f.min() for f in self.band_frequencies))

    def to_dict(self) -> dict:
        """JSON-friendly summary."""
        return {
            "gamma_frequencies_THz": self.gamma_frequencies.tolist(),
            "special_point_frequencies_THz": {k: v.tolist() for k, v in self.special_point_frequencies.items()},
            "special_points": {k: v.tolist() for k, v in self.special_points.items()},
            "path": self.path,
            "min_frequency_THz": self.min_frequency,
            "n_displacements": self.n_displacements,
            "supercell_matrix": self.supercell_matrix,
            "plot": self.plot,
        }


def supercell_matrix(supercell: int | tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """A 3x3 integer supercell matrix from an int (n n n), three ints (diagonal) or a 3x3 matrix."""
    array = np.asarray(supercell)
    if array.ndim == 0:
        array = np.full(3, int(array))
    if array.shape == (3,):
        array = np.diag(array)
    if array.shape != (3, 3) or not np.allclose(array, np.round(array)):
        raise ValueError(f"supercell must be an int, 3 ints or an integer 3x3 matrix, got {supercell!r}")
    array = np.round(array).astype(int)
    if round(abs(np.linalg.det(array))) < 1:
        raise ValueError(f"supercell matrix {array.tolist()} is singular")
    return array


def _to_phonopy_atoms(atoms: Atoms):
    structure = optional_import("phonopy.structure.atoms")
    return structure.PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(), cell=np.array(atoms.cell), scaled_positions=atoms.get_scaled_positions()
    )


def _to_ase(phonopy_atoms) -> Atoms:
    return Atoms(
        symbols=phonopy_atoms.symbols,
        cell=phonopy_atoms.cell,
        scaled_positions=phonopy_atoms.scaled_positions,
        pbc=True,
    )


def _forces(calc: Calculator, atoms: Atoms) -> np.ndarray:
    atoms.calc = calc
    return np.array(atoms.get_forces(), dtype=float)


def _pretty(label: str) -> str:
    return _PRETTY_LABELS.get(label, label)


def _band_paths(primitive_cell: np.ndarray, path: str | None):
    from ase.cell import Cell
    from ase.dft.kpoints import parse_path_string

    bandpath = Cell(primitive_cell).bandpath(npoints=0)
    special = dict(bandpath.special_points)
    path = path or bandpath.path
    segments = parse_path_string(path)
    unknown = {label for segment in segments for label in segment} - set(special)
    if unknown:
        raise ValueError(
            f"band path {path!r} uses labels {sorted(unknown)} that this lattice "
            f"({bandpath.cell.get_bravais_lattice().name}) does not have; known: {sorted(special)}"
        )
    if any(len(segment) < 2 for segment in segments):
        raise ValueError(f"every part of the band path needs two or more points, got {path!r}")
    return path, special, segments


def compute_phonons(
    atoms: Atoms,
    calc: Calculator,
    supercell: int | tuple[int, int, int] | np.ndarray = 3,
    displacement: float = 0.01,
    primitive: str | np.ndarray | None = "auto",
    mesh: int | tuple[int, int, int] = 20,
    npoints: int = 51,
    path: str | None = None,
    subtract_residual_forces: bool = True,
    symmetrize: bool = True,
    plot: str | os.PathLike | None = "phonons.png",
    title: str | None = None,
) -> PhononResult:
    """Phonon band structure, DOS and Gamma frequencies of a bulk crystal.

    Args:
        atoms: the (relaxed) unit cell, periodic in 3D.
        supercell: supercell matrix relative to ``atoms`` (int, 3 ints or 3x3).
        displacement: finite displacement in Angstrom.
        primitive: phonopy's primitive matrix ("auto" finds the primitive cell by symmetry).
        mesh: q-point mesh for the DOS (int or 3 ints); 0/None skips the DOS.
        npoints: q-points per band segment.
        path: band path such as ``"GXWKGLUWLK,UX"`` (ASE labels of the primitive cell's lattice);
            default: ASE's standard path for that lattice.
        subtract_residual_forces: subtract the forces of the undisplaced supercell (removes the
            effect of a structure that is not exactly at the calculator's minimum).
        symmetrize: symmetrise the force constants (translational invariance, index permutation).
        plot: PNG path for band structure + DOS, or None.

    Frequencies are in THz; imaginary modes appear as negative numbers.
    """
    band_structure = optional_import("phonopy.phonon.band_structure")
    _check_phonon_inputs(atoms, calc, displacement)
    matrix = supercell_matrix(supercell)
    with quiet_third_party():
        ph = _force_constants(atoms, calc, matrix, displacement, primitive, subtract_residual_forces, symmetrize)
        displaced = ph.supercells_with_displacements
        path, special, segments = _band_paths(np.array(ph.primitive.cell), path)
        band_paths = [[special[label] for label in segment] for segment in segments]
        qpoints, connections = band_structure.get_band_qpoints_and_path_connections(band_paths, npoints=npoints)
        ph.run_band_structure(qpoints, path_connections=connections)
        distances = [np.asarray(d) for d in ph.band_structure.distances]
        frequencies = [np.asarray(f) for f in ph.band_structure.frequencies]

        dos_frequencies = dos = None
        if mesh:
            ph.run_mesh(mesh)
            ph.run_total_dos()
            dos_frequencies, dos = np.asarray(ph.total_dos.frequency_points), np.asarray(ph.total_dos.dos)
        used_labels = sorted({label for segment in segments for label in segment})
        ph.run_qpoints([[0.0, 0.0, 0.0]] + [special[label] for label in used_labels])
        at_q = np.asarray(ph.qpoints.frequencies)
        gamma = at_q[0]
        at_special = {label: at_q[1 + k] for k, label in enumerate(used_labels)}

    tick_positions, tick_labels = _ticks(segments, distances)
    plot_path = None
    if plot:
        from .plots import plot_phonons

        plot_path = plot_phonons(
            distances,
            frequencies,
            tick_positions,
            tick_labels,
            dos_frequencies,
            dos,
            plot,
            title=title if title is not None else f"{atoms.get_chemical_formula()} phonons",
        )
    return PhononResult(
        gamma_frequencies=gamma,
        special_points={label: np.asarray(special[label]) for label in used_labels},
        special_point_frequencies=at_special,
        path=path,
        band_distances=distances,
        band_frequencies=frequencies,
        tick_positions=tick_positions,
        tick_labels=tick_labels,
        dos_frequencies=dos_frequencies,
        dos=dos,
        n_displacements=len(displaced),
        supercell_matrix=matrix.tolist(),
        plot=plot_path,
        phonopy=ph,
    )


def _check_phonon_inputs(atoms: Atoms, calc: Calculator, displacement: float) -> None:
    """Refuse what phonons cannot be computed for; warn for direct-force models."""
    if not np.all(atoms.pbc):
        raise ValueError(f"phonons need a crystal periodic in all three directions, got pbc={atoms.pbc}")
    if not abs(atoms.cell.volume) > 1e-6:
        raise ValueError(f"phonons need a unit cell with a volume; this cell's volume is {atoms.cell.volume:.3g} A^3")
    if displacement <= 0:
        raise ValueError(f"displacement must be positive, got {displacement}")
    if is_direct_force(calc):
        warnings.warn(
            "phonons from a direct-force model: its forces are not derivatives of an energy, so the force "
            "constants are not a true Hessian (not symmetric, acoustic sum rule broken); frequencies are "
            "indicative only. A conservative model is recommended.",
            UserWarning,
            stacklevel=3,
        )


def _force_constants(atoms, calc, matrix, displacement, primitive, subtract_residual_forces, symmetrize):
    """A ``phonopy.Phonopy`` with force constants from ``calc``'s forces on the displaced supercells."""
    phonopy = optional_import("phonopy")
    ph = phonopy.Phonopy(_to_phonopy_atoms(atoms), supercell_matrix=matrix, primitive_matrix=primitive)
    ph.generate_displacements(distance=displacement)
    residual = _forces(calc, _to_ase(ph.supercell)) if subtract_residual_forces else 0.0
    ph.forces = np.array([_forces(calc, _to_ase(cell)) - residual for cell in ph.supercells_with_displacements])
    ph.produce_force_constants()
    if symmetrize:
        ph.symmetrize_force_constants()
    return ph


def _ticks(segments: list[list[str]], distances: list[np.ndarray]) -> tuple[list[float], list[str]]:
    """Tick positions at segment ends; where two paths meet, both labels ("K|U")."""
    positions: list[float] = [float(distances[0][0])]
    labels: list[str] = [_pretty(segments[0][0])]
    index = 0
    for path_number, segment in enumerate(segments):
        for end_label in segment[1:]:
            positions.append(float(distances[index][-1]))
            labels.append(_pretty(end_label))
            index += 1
        if path_number + 1 < len(segments):
            labels[-1] = f"{labels[-1]}|{_pretty(segments[path_number + 1][0])}"
    return positions, labels
