"""Output scaling fitted to the training set before training.

The model's energy is ``E = ENERGY_SCALE * energy_scale * sum_i raw_i + energy_mean + sum_i ref[Z_i]``
with ``ENERGY_SCALE = 0.001`` (see ``escn_ase.model``).  Two things are fitted:

* ``ref[Z]``: per-element energies, least squares of the structure energies on the element
  counts.  They carry the large, composition-only part of E, so the network learns the residual.
  (The trainer fits them to ``E`` minus the initial network's energy, which also absorbs the
  network's initial per-element offsets.)
* ``energy_scale``: forces are ``F = -ENERGY_SCALE * energy_scale * d(sum raw)/dx``.  A freshly
  initialised network has raw outputs and gradients of order one, so choosing
  ``energy_scale = rms(F) * 1 A / ENERGY_SCALE`` makes the raw gradients needed to fit the forces
  of order one as well (the choice of MACE and NequIP).  Residual energies per atom of a few
  tenths of an eV then need raw values of order one too.  Without usable forces (all zero), the
  RMS residual energy per atom is used instead.
"""

from __future__ import annotations

import numpy as np

from ..model import ENERGY_SCALE

__all__ = ["fit_element_references", "choose_energy_scale", "references_determined"]


def fit_element_references(counts: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """Per-element energies ``ref`` minimising ``|counts @ ref - energies|^2``.

    Args:
        counts: ``(n_structures, n_elements)`` number of atoms of each atomic number.
        energies: ``(n_structures,)`` eV.

    Returns:
        ``(n_elements,)`` eV per atom; zero for elements absent from ``counts``.  When the
        compositions do not determine every element's energy (e.g. one stoichiometry only), the
        minimum-norm solution is returned.
    """
    counts = np.asarray(counts, dtype=np.float64)
    energies = np.asarray(energies, dtype=np.float64)
    if counts.ndim != 2 or energies.shape != (counts.shape[0],):
        raise ValueError(f"counts {counts.shape} and energies {energies.shape} do not match")
    present = counts.sum(axis=0) > 0
    references = np.zeros(counts.shape[1])
    solution, *_ = np.linalg.lstsq(counts[:, present], energies, rcond=None)
    references[present] = solution
    return references


def references_determined(counts: np.ndarray, max_condition: float = 1e3) -> bool:
    """Whether the compositions ``counts (n_structures, n_elements)`` determine one energy per element
    present: the count of every element varies independently of the others (full column rank) and
    the least-squares problem is well conditioned, with at least two structures per element."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts.sum(axis=0) > 0
    matrix = counts[:, present]
    if matrix.shape[1] == 0 or matrix.shape[0] < 2 * matrix.shape[1]:
        return False
    singular = np.linalg.svd(matrix, compute_uv=False)
    return bool(singular[-1] > 0 and singular[0] / singular[-1] < max_condition)


def choose_energy_scale(forces: list[np.ndarray], residual_energy_per_atom: np.ndarray) -> tuple[float, str]:
    """``energy_scale`` for the model buffer, and which statistic set it (see the module docstring).

    Args:
        forces: per-structure ``(n_atoms, 3)`` force labels, eV/A.
        residual_energy_per_atom: ``(n_structures,)`` (E - sum of element references) / n_atoms, eV.
    """
    components = np.concatenate([np.asarray(f).reshape(-1) for f in forces]) if forces else np.zeros(0)
    force_rms = float(np.sqrt(np.mean(components**2))) if components.size else 0.0
    if force_rms > 1e-8:
        return force_rms / ENERGY_SCALE, f"force RMS {force_rms:.4g} eV/A"
    energy_rms = float(np.sqrt(np.mean(np.asarray(residual_energy_per_atom) ** 2)))
    if energy_rms > 1e-8:
        return energy_rms / ENERGY_SCALE, f"residual energy RMS {energy_rms:.4g} eV/atom (forces are all zero)"
    return 1.0 / ENERGY_SCALE, "default (forces and residual energies are all zero)"
