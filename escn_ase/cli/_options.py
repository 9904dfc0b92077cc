"""Options and helpers shared by the commands: model options, help formatting, reading structures."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = [
    "HelpFormatter",
    "add_calculator_options",
    "add_model_options",
    "calculator_kwargs",
    "calculator_spec",
    "make_calculator",
    "read_structure",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help only where the help does not already say what the
    default is, and not for flags (default False) or options without a default (None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def add_model_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--checkpoint/-c``, ``--device``, ``--dtype``, ``--threads``: the options of every command that
    loads a model."""
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


def read_structure(path: str, index: str | int = -1):
    """One structure from a file: any ase.io format, else pymatgen (CIF, POSCAR, ...)."""
    from ase.io import read

    if not Path(path).exists():
        raise FileNotFoundError(f"structure file not found: {path}")
    try:
        return read(path, index=index)
    except Exception as ase_error:  # ase could not parse it: give pymatgen a try before giving up
        try:
            from pymatgen.core import Structure
            from pymatgen.io.ase import AseAtomsAdaptor
        except ImportError:
            raise ase_error from None
        try:
            return AseAtomsAdaptor.get_atoms(Structure.from_file(path))
        except Exception as pymatgen_error:
            raise ValueError(
                f"cannot read {path}: ase.io said {ase_error!r}; pymatgen said {pymatgen_error!r}"
            ) from pymatgen_error


def add_calculator_options(parser: argparse.ArgumentParser) -> None:
    """The model options plus ``--emt`` (the workflow commands)."""
    add_model_options(parser).add_argument(
        "--emt", action="store_true", help="use ASE's EMT potential instead of an eSCN model (comparisons, smoke tests)"
    )


def calculator_spec(args: argparse.Namespace):
    """(spec, kwargs) for ``CalculatorFactory``: 'emt', or a checkpoint file checked here, before any work starts."""
    if args.emt:
        if args.checkpoint:
            raise ValueError("--emt and --checkpoint exclude each other")
        return "emt", {}
    from ..registry import resolve_checkpoint

    return resolve_checkpoint(args.checkpoint), calculator_kwargs(args)


def make_calculator(args: argparse.Namespace):
    """The calculator the options ask for."""
    from ..workflows._common import CalculatorFactory

    spec, kwargs = calculator_spec(args)
    return CalculatorFactory(spec, kwargs)()
