"""Command-line switches shared by the examples (not part of the package)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def parse_example_args(description: str, name: str) -> argparse.Namespace:
    """``--quick`` (or ESCN_ASE_QUICK=1) for a reduced size, ``--out`` for the output folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("ESCN_ASE_QUICK", "") not in ("", "0"),
        help="reduced size for smoke tests (also ESCN_ASE_QUICK=1)",
    )
    parser.add_argument("--out", default=str(Path("example_output") / name), help="output folder")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return args
