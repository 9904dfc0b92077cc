"""``escn-ase download``: fetch registered checkpoints into the cache."""

from __future__ import annotations

import argparse

from ._options import HelpFormatter

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from .. import registry

    cache = args.cache_dir or None
    if args.list or not args.names:
        print(f"cache directory: {registry.cache_dir(cache)}")
        for entry in registry.list_models():
            state = "cached" if (registry.cache_dir(cache) / entry.filename).exists() else "not downloaded"
            print(f"{entry.name:32} {state:15} {entry.description}\n{'':32} {entry.url}")
        return 0
    for name in args.names:
        path = registry.download(
            name, force=args.force, offline=True if args.offline else None, progress=not args.no_progress, cache=cache
        )
        print(f"{name}: {path} (sha256 {registry.sha256_of(path)})")
    return 0


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    download = subparsers.add_parser(
        "download",
        help="download registered checkpoints into the cache",
        formatter_class=HelpFormatter,
        description="Fetch registered checkpoints (published OC20 eSCN models) into $ESCN_ASE_CACHE or "
        "~/.cache/escn_ase, checking their sha256 where it is registered (else printing it). "
        "With ESCN_ASE_OFFLINE=1 or --offline nothing is fetched. Afterwards pass the name as "
        "--checkpoint NAME or ESCNCalculator('NAME').",
    )
    download.add_argument("names", nargs="*", help="registered model names")
    download.add_argument("--list", action="store_true", help="list registered models and whether they are cached")
    download.add_argument("--force", action="store_true", help="download again even if cached")
    download.add_argument("--offline", action="store_true", help="never touch the network (only report the cache)")
    download.add_argument("--cache-dir", default=None, help="cache directory (overrides $ESCN_ASE_CACHE)")
    download.add_argument("--no-progress", action="store_true", help="no progress bar")
    download.set_defaults(func=run)
