"""``escn-ase generate-data``: a reproducible EMT training data set."""

from __future__ import annotations

import argparse

from ._options import HelpFormatter

__all__ = ["register", "run"]


def _size(text: str) -> str | int:
    return int(text) if text.strip().isdigit() else text


def _group_override(text: str) -> tuple[str, int]:
    family, separator, count = text.partition("=")
    if not separator or not count.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected FAMILY=COUNT (e.g. md_bulk=5), got {text!r}")
    return family.strip(), int(count)


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated fractions, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated fractions (train,val,test), got {text!r}")
    return values  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="output directory (train/val/test.extxyz and manifest.json)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--size",
        type=_size,
        default="small",
        help="tiny (~110 structures), small (~6000, default), medium (~18000), or a number of structures",
    )
    parser.add_argument(
        "--groups",
        type=_group_override,
        action="append",
        default=[],
        metavar="FAMILY=N",
        help="override the number of groups of one family (repeatable), e.g. --groups md_bulk=0",
    )
    parser.add_argument(
        "--split", type=_fractions, default=(0.8, 0.1, 0.1), help="train,val,test (default 0.8,0.1,0.1)"
    )
    parser.add_argument("--max-force", type=float, default=20.0, help="drop structures with a force above this (eV/A)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing data set in out_dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ..data.emt_dataset import FAMILIES, SPLITS, generate_dataset

    # Errors (an existing data set without --overwrite, a bad --split) reach main's one-line handler.
    manifest = generate_dataset(
        args.out_dir,
        seed=args.seed,
        size=args.size,
        groups=dict(args.groups),
        split=args.split,
        max_force=args.max_force,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    counts = manifest["counts"]["structures"]
    print(f"{'family':>16} " + " ".join(f"{name:>7}" for name in SPLITS))
    for family in FAMILIES:
        print(f"{family:>16} " + " ".join(f"{counts[name][family]:>7}" for name in SPLITS))
    print(f"{'total':>16} " + " ".join(f"{manifest['counts']['structures_per_split'][name]:>7}" for name in SPLITS))
    print(
        f"{manifest['counts']['total_structures']} structures, {manifest['dropped_total']} dropped, "
        f"{manifest['timing']['total_seconds']:.1f} s -> {args.out_dir}"
    )
    return 0


def register(subparsers) -> None:
    """Add ``generate-data`` to the ``escn-ase`` command's subparsers."""
    parser = subparsers.add_parser(
        "generate-data",
        help="generate a reproducible EMT training data set (train/val/test extxyz)",
        formatter_class=HelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
