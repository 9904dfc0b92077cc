"""``escn-ase relax``: relax positions (and optionally the cell) of a structure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._options import HelpFormatter, add_calculator_options, make_calculator, read_structure

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ase.io import write

    from ..workflows.relax import relax

    atoms = read_structure(args.structure, args.index)
    result = relax(
        atoms,
        make_calculator(args),
        fmax=args.fmax,
        steps=args.steps,
        optimizer=args.optimizer,
        relax_cell=args.relax_cell,
        fix_bottom_layers=args.fix_bottom_layers,
        keep_symmetry=args.keep_symmetry,
        symprec=args.symprec,
        trajectory=args.trajectory,
        logfile=args.logfile,
    )
    output = args.output or str(Path(args.structure).with_suffix("")) + "_relaxed.extxyz"
    write(output, result.atoms)
    summary = result.to_dict() | {"output": output}
    print(json.dumps(summary, indent=2))
    return 0 if result.converged else 2


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    relax = subparsers.add_parser(
        "relax",
        help="relax a structure (positions, optionally the cell)",
        formatter_class=HelpFormatter,
        description="Relax the positions (and with --relax-cell the cell) of a structure until the largest "
        "force is below --fmax. Writes the relaxed structure as extxyz and prints a JSON summary; "
        "exit status 2 when --steps ran out before convergence.",
    )
    relax.add_argument("structure", help="structure file (any ase.io format; CIF/POSCAR also via pymatgen)")
    relax.add_argument("--index", default="-1", help="frame to read from a multi-frame file")
    relax.add_argument(
        "--output", "-o", default=None, help="relaxed structure file (default: <structure>_relaxed.extxyz)"
    )
    relax.add_argument("--fmax", type=float, default=0.05, help="force convergence threshold (eV/A)")
    relax.add_argument("--steps", type=int, default=500, help="maximum optimiser steps")
    relax.add_argument("--optimizer", default="FIRE", choices=["FIRE", "BFGS", "LBFGS"], help="ASE optimiser")
    relax.add_argument(
        "--relax-cell", action="store_true", help="also relax the cell (FrechetCellFilter; needs a conservative model)"
    )
    relax.add_argument("--fix-bottom-layers", type=int, default=0, help="fix the n lowest atomic layers along z")
    relax.add_argument(
        "--keep-symmetry",
        action="store_true",
        help="keep the crystal's space group during the relaxation (ASE's FixSymmetry, spglib)",
    )
    relax.add_argument("--symprec", type=float, default=0.01, help="symmetry tolerance (A) of --keep-symmetry")
    relax.add_argument("--trajectory", default=None, help="write every step to this .traj file")
    relax.add_argument("--logfile", default="-", help="optimiser log file ('-' for the terminal)")
    add_calculator_options(relax)
    relax.set_defaults(func=run)
