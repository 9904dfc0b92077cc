"""``escn-ase info``: describe a checkpoint."""

from __future__ import annotations

import argparse
import json

from ._options import HelpFormatter, add_model_options, calculator_kwargs

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ..calculator import ESCNCalculator

    calc = ESCNCalculator(args.checkpoint, **calculator_kwargs(args))
    print(json.dumps(calc.describe(), indent=2))
    return 0


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    info = subparsers.add_parser(
        "info", help="describe a checkpoint (config, elements, force type)", formatter_class=HelpFormatter
    )
    add_model_options(info)
    info.set_defaults(func=run)
