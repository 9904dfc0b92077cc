"""Command line: ``escn-ase <command>``, one module per command; shared options in ``_options``."""

from __future__ import annotations

import argparse
import os
import sys

from . import adsorb, download, evaluate, generate_data, info, md, phonons, relax, train
from ._options import HelpFormatter, add_model_options, calculator_kwargs, read_structure

__all__ = ["build_parser", "main", "HelpFormatter", "add_model_options", "calculator_kwargs", "read_structure"]

# In the order ``escn-ase --help`` lists them.
COMMANDS = (info, evaluate, train, generate_data, relax, md, adsorb, phonons, download)


def build_parser() -> argparse.ArgumentParser:
    """The ``escn-ase`` argument parser with every command registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="escn-ase", description="eSCN potentials for ASE", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"escn-ase {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also: environment variable ESCN_ASE_DEBUG=1)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(subparsers)
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
