"""Command line: ``escn-ase <command>``."""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main", "build_parser"]


def add_model_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--checkpoint/-c``, ``--device``, ``--dtype``: the options of every command that loads a model."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--checkpoint",
        "-c",
        default=None,
        help="checkpoint path (fairchem/OCP eSCN file or escn_ase format) or registered model name "
        "(see `escn-ase download --list`); default: the shipped default model",
    )
    group.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    group.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    return group


def _cmd_info(args: argparse.Namespace) -> int:
    from .calculator import ESCNCalculator

    calc = ESCNCalculator(args.checkpoint, device=args.device, dtype=args.dtype)
    print(json.dumps(calc.describe(), indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ase.io import read

    from .calculator import ESCNCalculator

    calc = ESCNCalculator(args.checkpoint, device=args.device, dtype=args.dtype)
    frames = read(args.structure, index=args.index)
    frames = frames if isinstance(frames, list) else [frames]
    print(f"{'#':>4} {'formula':>14} {'atoms':>6} {'energy (eV)':>14} {'max |F| (eV/A)':>15}")
    for number, atoms in enumerate(frames):
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        fmax = float((atoms.get_forces() ** 2).sum(axis=1).max() ** 0.5)
        print(f"{number:>4} {atoms.get_chemical_formula():>14} {len(atoms):>6} {energy:>14.6f} {fmax:>15.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="escn-ase", description="eSCN potentials for ASE")
    parser.add_argument("--version", action="version", version=f"escn-ase {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also: environment variable ESCN_ASE_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a checkpoint (config, elements, force type)")
    add_model_options(info)
    info.set_defaults(func=_cmd_info)

    evaluate = sub.add_parser("eval", help="energies and forces of the structures in a file (any ase.io format)")
    evaluate.add_argument("structure", help="structure file (extxyz, CIF, POSCAR, ...)")
    evaluate.add_argument("--index", default=":", help="frames to read (ase.io index syntax), default all")
    add_model_options(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

    from .train import register as register_train

    register_train(sub)

    from .data.cli import register as register_generate_data

    register_generate_data(sub)

    from .cli_workflows import register as register_workflows

    register_workflows(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a failure prints ``escn-ase: error: ...`` and returns 1 (``--debug``: the traceback)."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("ESCN_ASE_DEBUG", "").strip() not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("escn-ase: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure a user can cause: one line, no traceback
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"escn-ase: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
