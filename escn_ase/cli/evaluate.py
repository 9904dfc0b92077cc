"""``escn-ase eval``: energies, forces (and stress) of the structures in a file."""

from __future__ import annotations

import argparse

from ._options import HelpFormatter, add_model_options, calculator_kwargs

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write

    from ..calculator import ESCNCalculator

    calc = ESCNCalculator(args.checkpoint, **calculator_kwargs(args))
    frames = read(args.structure, index=args.index)
    frames = frames if isinstance(frames, list) else [frames]
    print(f"{'#':>4} {'formula':>14} {'atoms':>6} {'energy (eV)':>14} {'max |F| (eV/A)':>15}")
    labelled = []
    for number, atoms in enumerate(frames):
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        fmax = float((forces**2).sum(axis=1).max() ** 0.5)
        print(f"{number:>4} {atoms.get_chemical_formula():>14} {len(atoms):>6} {energy:>14.6f} {fmax:>15.4f}")
        if args.output:
            results = {"energy": energy, "free_energy": energy, "forces": forces}
            if "stress" in calc.implemented_properties and atoms.pbc.all():
                results["stress"] = atoms.get_stress()
            copy = atoms.copy()
            copy.calc = SinglePointCalculator(copy, **results)
            labelled.append(copy)
    if args.output:
        write(args.output, labelled, format="extxyz")
        print(f"wrote {len(labelled)} frame(s) with energy, forces (and stress of periodic cells) to {args.output}")
    return 0


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    evaluate = subparsers.add_parser(
        "eval",
        help="energies and forces of the structures in a file (any ase.io format)",
        formatter_class=HelpFormatter,
    )
    evaluate.add_argument("structure", help="structure file (extxyz, CIF, POSCAR, ...)")
    evaluate.add_argument("--index", default=":", help="frames to read (ase.io index syntax), default all")
    evaluate.add_argument(
        "--output", "-o", default=None, help="write the frames with energy, forces and stress to this extxyz file"
    )
    add_model_options(evaluate)
    evaluate.set_defaults(func=run)
