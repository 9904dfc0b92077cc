"""``escn-ase phonons``: phonon band structure, DOS and Gamma frequencies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._options import HelpFormatter, add_calculator_options, make_calculator, read_structure

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ..workflows.phonons import compute_phonons

    if bool(args.structure) == bool(args.bulk):
        raise ValueError("give either a structure file or --bulk SYMBOL")
    if args.bulk:
        from ase.build import bulk

        atoms = bulk(args.bulk, a=args.lattice_constant)
    else:
        atoms = read_structure(args.structure, args.index)
    supercell = args.supercell[0] if len(args.supercell) == 1 else tuple(args.supercell)
    if len(args.supercell) not in (1, 3):
        raise ValueError("--supercell takes 1 or 3 integers")
    result = compute_phonons(
        atoms,
        make_calculator(args),
        supercell=supercell,
        displacement=args.displacement,
        mesh=args.mesh,
        npoints=args.npoints,
        path=args.path,
        plot=args.plot,
    )
    summary = result.to_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    phonons = subparsers.add_parser(
        "phonons",
        help="phonon band structure, DOS and Gamma frequencies (phonopy)",
        formatter_class=HelpFormatter,
        description="Finite-displacement phonons with phonopy. The structure should be relaxed first "
        "(escn-ase relax --relax-cell). Band path: ASE's standard path of the primitive cell's "
        "lattice. Writes the band structure + DOS plot to --plot and prints frequencies in THz.",
    )
    phonons.add_argument("structure", nargs="?", default=None, help="bulk crystal file")
    phonons.add_argument("--index", default="-1", help="frame to read from a multi-frame file")
    phonons.add_argument("--bulk", default=None, help="instead of a file: ase.build.bulk(SYMBOL), e.g. Cu")
    phonons.add_argument("--lattice-constant", "-a", type=float, default=None, help="lattice constant for --bulk")
    phonons.add_argument("--supercell", type=int, nargs="+", default=[3], help="supercell: n or nx ny nz")
    phonons.add_argument("--displacement", type=float, default=0.01, help="finite displacement (A)")
    phonons.add_argument("--mesh", type=int, default=20, help="q-mesh for the DOS (0: no DOS)")
    phonons.add_argument("--npoints", type=int, default=51, help="q-points per band segment")
    phonons.add_argument("--path", default=None, help="band path in ASE labels, e.g. GXWKGLUWLK,UX")
    phonons.add_argument("--plot", default="phonons.png", help="PNG of band structure and DOS")
    phonons.add_argument("--json", default=None, help="also write the summary to this JSON file")
    add_calculator_options(phonons)
    phonons.set_defaults(func=run)
