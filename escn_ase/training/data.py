"""Labelled structures for training: reading them, caching their graphs, packing batches.

Label convention (that of ``escn_ase.data``): ``atoms.info["energy"]`` (eV),
``atoms.arrays["forces"]`` (eV/A), optional ``atoms.info["stress"]`` (Voigt 6, eV/A^3, ASE sign:
``(1/V) dE/d(strain)``).  ``read_labelled_structures`` also takes what ase writes for DFT data:
energies, forces and stresses held by a ``SinglePointCalculator``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

from ..batch import GraphBatch, pack_structures, structure_graph
from ..errors import ESCNError
from ..graph import Graph
from ..model import ESCNConfig
from ..validation import validate_atoms

__all__ = ["LabelError", "read_labelled_structures", "StructureSet", "TrainingBatch"]


class LabelError(ESCNError, ValueError):
    """A training structure lacks a label or has one of the wrong shape."""


def _label(atoms: Atoms, key: str, per_atom: bool):
    """The label ``key`` from info/arrays, else from an attached calculator's results, else None."""
    store = atoms.arrays if per_atom else atoms.info
    if key in store:
        return store[key]
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def read_labelled_structures(
    path: str | os.PathLike,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
) -> list[Atoms]:
    """Every frame of ``path`` (any ase.io format) with its labels in the convention above.

    Returns copies without calculators; ``info`` keys other than the labels (``family``,
    ``group`` ...) are kept.  Raises ``LabelError`` naming the frame when energy or forces are
    missing, mis-shaped or not finite.
    """
    from ase.io import read

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training data file not found: {path}")
    frames = read(path, index=":")
    if not frames:
        raise LabelError(f"{path}: holds no structures")
    structures = []
    for number, atoms in enumerate(frames):
        where = f"{path}, frame {number} ({atoms.get_chemical_formula()})"
        energy = _label(atoms, energy_key, per_atom=False)
        forces = _label(atoms, forces_key, per_atom=True)
        stress = _label(atoms, stress_key, per_atom=False)
        if energy is None:
            raise LabelError(f"{where}: no energy label {energy_key!r} in atoms.info or calculator results")
        if forces is None:
            raise LabelError(f"{where}: no forces label {forces_key!r} in atoms.arrays or calculator results")
        energy = float(np.asarray(energy).reshape(()))
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (len(atoms), 3):
            raise LabelError(f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise LabelError(f"{where}: energy or forces are not finite")
        clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        clean.info.update({k: v for k, v in atoms.info.items() if k not in (energy_key, stress_key)})
        clean.info["energy"] = energy
        clean.arrays["forces"] = forces
        if stress is not None:
            stress = np.asarray(stress, dtype=np.float64)
            if stress.size == 9:
                stress = full_3x3_to_voigt_6_stress(stress.reshape(3, 3))
            elif stress.shape != (6,):
                raise LabelError(f"{where}: stress has shape {stress.shape}, expected Voigt 6 or 3x3")
            if not np.isfinite(stress).all():
                raise LabelError(f"{where}: stress is not finite")
            clean.info["stress"] = stress
        structures.append(clean)
    return structures


@dataclass
class TrainingBatch:
    """A packed graph and its labels.

    Attributes:
        graph: the model inputs (``GraphBatch``).
        energy: ``(n_systems,)`` eV.
        n_atoms: ``(n_systems,)`` atoms per structure (float, for per-atom energies).
        forces: ``(n_atoms, 3)`` eV/A.
        stress: ``(n_systems, 3, 3)`` eV/A^3 (zeros where there is no label).
        stress_mask: ``(n_systems,)`` bool, structures with a stress label and a 3D-periodic cell.
    """

    graph: GraphBatch
    energy: torch.Tensor
    n_atoms: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    stress_mask: torch.Tensor

    @property
    def has_stress(self) -> bool:
        return bool(self.stress_mask.any())


class StructureSet:
    """Labelled structures with their neighbour graphs built once.

    Training never moves atoms, so each structure's graph (which depends only on positions,
    cell and the model's cutoff) is computed here and reused for every batch.
    """

    def __init__(self, structures: Sequence[Atoms], config: ESCNConfig, name: str = "data") -> None:
        if not structures:
            raise LabelError(f"{name}: no structures")
        self.name = name
        self.config = config
        self.structures = list(structures)
        for number, atoms in enumerate(self.structures):
            if "energy" not in atoms.info or "forces" not in atoms.arrays:
                raise LabelError(f"{name}, structure {number}: needs info['energy'] and arrays['forces']")
            validate_atoms(atoms, range(1, config.max_num_elements))
        self.graphs: list[Graph] = [structure_graph(atoms, config) for atoms in self.structures]
        self.energies = np.array([float(a.info["energy"]) for a in self.structures])
        self.atom_counts = np.array([len(a) for a in self.structures])
        self.forces = [np.asarray(a.arrays["forces"], dtype=np.float64) for a in self.structures]
        self.stress_mask = np.array(["stress" in a.info and bool(np.all(a.pbc)) for a in self.structures])
        self.stresses = np.stack(
            [
                voigt_6_to_full_3x3_stress(np.asarray(a.info["stress"])) if has else np.zeros((3, 3))
                for a, has in zip(self.structures, self.stress_mask)
            ]
        )

    def __len__(self) -> int:
        return len(self.structures)

    @property
    def elements(self) -> list[int]:
        """Atomic numbers present, sorted."""
        return sorted({int(z) for atoms in self.structures for z in atoms.numbers})

    def composition_matrix(self, n_elements: int) -> np.ndarray:
        """``(n_structures, n_elements)`` count of each atomic number in each structure."""
        counts = np.zeros((len(self), n_elements))
        for row, atoms in enumerate(self.structures):
            np.add.at(counts[row], atoms.numbers, 1.0)
        return counts

    def batch(self, indices: Sequence[int], device: torch.device | str, dtype: torch.dtype) -> TrainingBatch:
        """Pack the structures ``indices`` into one graph with their labels."""
        index = np.asarray(indices, dtype=np.int64)
        graph = pack_structures(
            [self.structures[i] for i in index], self.config, device, dtype, graphs=[self.graphs[i] for i in index]
        )

        def tensor(values, tensor_dtype=dtype):
            return torch.as_tensor(values, dtype=tensor_dtype, device=device)

        return TrainingBatch(
            graph=graph,
            energy=tensor(self.energies[index]),
            n_atoms=tensor(self.atom_counts[index]),
            forces=tensor(np.concatenate([self.forces[i] for i in index])),
            stress=tensor(self.stresses[index]),
            stress_mask=tensor(self.stress_mask[index], torch.bool),
        )

    def batches(
        self, batch_size: int, device: torch.device | str, dtype: torch.dtype, order: Sequence[int] | None = None
    ):
        """Yield ``TrainingBatch``es of ``batch_size`` structures in ``order`` (default: as stored)."""
        order = np.arange(len(self)) if order is None else np.asarray(order)
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size], device, dtype)
