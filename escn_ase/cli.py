"""Command line: ``escn-ase <command>``."""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main", "build_parser", "HelpFormatter", "add_model_options", "calculator_kwargs"]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help only where the help does not already say what the
    default is, and not for flags (default False) or options without a default (None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


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
    group.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        help="floating-point precision of the model: float32 (fast) or float64 (finite-difference "
        "checks, phonons of very stiff modes)",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of the model's evaluations (default: torch's, usually all cores); on a shared "
        "or busy machine 1-2 avoid oversubscribing the cores",
    )
    return group


def calculator_kwargs(args: argparse.Namespace) -> dict:
    """The ``ESCNCalculator`` settings of the model options (all but the checkpoint)."""
    return {"device": args.device, "dtype": args.dtype, "threads": args.threads}


def _cmd_info(args: argparse.Namespace) -> int:
    from .calculator import ESCNCalculator

    calc = ESCNCalculator(args.checkpoint, **calculator_kwargs(args))
    print(json.dumps(calc.describe(), indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write

    from .calculator import ESCNCalculator

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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="escn-ase", description="eSCN potentials for ASE", formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"escn-ase {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also: environment variable ESCN_ASE_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser(
        "info", help="describe a checkpoint (config, elements, force type)", formatter_class=HelpFormatter
    )
    add_model_options(info)
    info.set_defaults(func=_cmd_info)

    evaluate = sub.add_parser(
        "eval", help="energies and forces of the structures in a file (any ase.io format)", formatter_class=HelpFormatter
    )
    evaluate.add_argument("structure", help="structure file (extxyz, CIF, POSCAR, ...)")
    evaluate.add_argument("--index", default=":", help="frames to read (ase.io index syntax), default all")
    evaluate.add_argument(
        "--output", "-o", default=None, help="write the frames with energy, forces and stress to this extxyz file"
    )
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
