"""Geometry (and cell) relaxation on ASE's optimisers."""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.constraints import FixAtoms

from ._common import is_direct_force

logger = logging.getLogger("escn_ase")

__all__ = ["OPTIMIZERS", "RelaxResult", "fix_bottom_layers", "layer_indices", "relax"]

OPTIMIZERS = ("FIRE", "BFGS", "LBFGS")


@dataclass
class RelaxResult:
    """Outcome of ``relax``: the relaxed copy of the structure and how the optimisation ended."""

    atoms: Atoms
    energy: float
    converged: bool
    steps: int
    fmax: float
    initial_energy: float
    trajectory: str | None = None

    def to_dict(self) -> dict:
        """JSON-friendly summary (without the structure)."""
        return {
            "energy": self.energy,
            "initial_energy": self.initial_energy,
            "converged": self.converged,
            "steps": self.steps,
            "fmax": self.fmax,
            "trajectory": self.trajectory,
        }


def layer_indices(atoms: Atoms, tolerance: float = 0.3) -> list[list[int]]:
    """Atoms grouped into layers by Cartesian z, lowest layer first.

    Atoms are sorted by z and a new layer starts wherever the gap to the previous atom exceeds
    ``tolerance`` (Angstrom), so slightly rippled layers stay together.
    """
    if len(atoms) == 0:
        return []
    z = atoms.positions[:, 2]
    order = np.argsort(z, kind="stable")
    layers: list[list[int]] = [[int(order[0])]]
    for previous, current in itertools.pairwise(order):
        if z[current] - z[previous] > tolerance:
            layers.append([])
        layers[-1].append(int(current))
    return layers


def fix_bottom_layers(atoms: Atoms, n_layers: int, tolerance: float = 0.3) -> list[int]:
    """Add a ``FixAtoms`` constraint on the ``n_layers`` lowest layers; returns the fixed indices.

    Existing constraints are kept (a previous ``FixAtoms`` is merged with the new one).
    """
    if n_layers < 0:
        raise ValueError(f"fix_bottom_layers must be >= 0, got {n_layers}")
    if n_layers == 0:
        return []
    layers = layer_indices(atoms, tolerance)
    if n_layers >= len(layers):
        raise ValueError(
            f"cannot fix {n_layers} bottom layer(s): the structure has only {len(layers)} layer(s) "
            f"along z (layer tolerance {tolerance} A); nothing would be left to relax"
        )
    fixed = sorted(i for layer in layers[:n_layers] for i in layer)
    others = []
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed = sorted(set(fixed) | {int(i) for i in constraint.get_indices()})
        else:
            others.append(constraint)
    atoms.set_constraint([FixAtoms(indices=fixed), *others])
    return fixed


def _optimizer_class(name: str):
    from ase.optimize import BFGS, FIRE, LBFGS

    classes = {"FIRE": FIRE, "BFGS": BFGS, "LBFGS": LBFGS}
    key = name.upper()
    if key not in classes:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    return classes[key]


def _check_cell_relaxation(atoms: Atoms, calc: Calculator) -> None:
    if is_direct_force(calc):
        raise ValueError(
            "relax_cell=True needs the stress, i.e. the strain derivative of the energy, but this calculator "
            "predicts forces directly (a force head, as in the published OC20 eSCN checkpoints): it has no "
            "consistent stress. Use a conservative model (e.g. the default ESCNCalculator()) or relax_cell=False"
        )
    if not np.all(atoms.pbc):
        raise ValueError(f"relax_cell=True needs a structure periodic in all three directions, got pbc={atoms.pbc}")
    if "stress" not in getattr(calc, "implemented_properties", ["stress"]):
        raise ValueError(f"relax_cell=True needs stress, which {type(calc).__name__} does not implement")


def relax(
    atoms: Atoms,
    calc: Calculator,
    fmax: float = 0.05,
    steps: int = 500,
    optimizer: str = "FIRE",
    relax_cell: bool = False,
    fix_bottom_layers: int = 0,
    trajectory: str | os.PathLike | None = None,
    logfile: str | os.PathLike | None = None,
    layer_tolerance: float = 0.3,
    keep_symmetry: bool = False,
    symprec: float = 0.01,
) -> RelaxResult:
    """Relax a copy of ``atoms`` with ``calc`` until the largest force is below ``fmax`` (eV/A).

    Args:
        optimizer: ``"FIRE"``, ``"BFGS"`` or ``"LBFGS"`` (ASE's implementations).
        relax_cell: also relax the cell (``FrechetCellFilter``; ``fmax`` then also bounds the
            stress times volume). Needs a conservative calculator with stress.
        fix_bottom_layers: fix the lowest n layers along z (slabs); see ``layer_indices``.
        trajectory: ASE ``.traj`` file to write every step to.
        logfile: optimiser log ("-" for stdout, None for no log).
        keep_symmetry: keep the structure's space group (found by spglib within ``symprec`` A):
            the start is symmetrised (ASE's ``refine_symmetry``), then ``FixSymmetry`` symmetrises
            forces, stress and steps, so a cubic cell stays cubic and atoms on special positions
            stay there.

    The input structure is not modified; the relaxed structure is ``result.atoms``.
    """
    if not (math.isfinite(fmax) and fmax > 0):
        raise ValueError(f"fmax must be a positive finite force in eV/A, got {fmax}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    optimizer_class = _optimizer_class(optimizer)
    work = atoms.copy()
    work.calc = calc
    if fix_bottom_layers:
        _fix_layers(work, fix_bottom_layers, layer_tolerance)
    if keep_symmetry:
        _keep_symmetry(work, symprec)
    if relax_cell:
        _check_cell_relaxation(work, calc)
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(work)
    else:
        target = work
    initial_energy = float(work.get_potential_energy())
    dynamics = optimizer_class(
        target,
        trajectory=None if trajectory is None else str(trajectory),
        logfile=None if logfile is None else str(logfile),
    )
    with dynamics:
        converged = bool(dynamics.run(fmax=fmax, steps=steps))
    reached = float(np.sqrt((target.get_forces() ** 2).sum(axis=1).max())) if len(work) else 0.0
    return RelaxResult(
        atoms=work,
        energy=float(work.get_potential_energy()),
        converged=converged,
        steps=int(dynamics.nsteps),
        fmax=reached,
        initial_energy=initial_energy,
        trajectory=None if trajectory is None else str(trajectory),
    )


def _keep_symmetry(atoms: Atoms, symprec: float) -> None:
    """Add ASE's ``FixSymmetry`` to the constraints of ``atoms`` (logs the space group it keeps)."""
    if not (math.isfinite(symprec) and symprec > 0):
        raise ValueError(f"symprec must be a positive finite length in A, got {symprec}")
    from ase.constraints import FixSymmetry
    from ase.spacegroup.symmetrize import check_symmetry, refine_symmetry

    # Symmetrise the start (cell and positions, within symprec) so that the kept group is exact.
    dataset = refine_symmetry(atoms, symprec, verbose=False) or check_symmetry(atoms, symprec)
    logger.info("keeping space group %s (%d) during the relaxation", dataset.international, dataset.number)
    constraints = atoms.constraints if isinstance(atoms.constraints, list) else [atoms.constraints]
    atoms.set_constraint([*constraints, FixSymmetry(atoms, symprec=symprec)])


# ``relax`` has a parameter called fix_bottom_layers; keep the function reachable under another name.
_fix_layers = fix_bottom_layers
