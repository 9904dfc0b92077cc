"""``escn-ase train CONFIG.yaml``: train (or fine-tune) a conservative eSCN model."""

from __future__ import annotations

import argparse
import dataclasses

from ._options import HelpFormatter

__all__ = ["register", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training config (YAML); see configs/default_model.yaml")
    parser.add_argument("--device", default=None, help="override the config's device: auto, cpu, cuda, cuda:N")
    parser.add_argument("--output-dir", default=None, help="override the config's output_dir")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in batch jobs)")


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    import logging

    from ..training import load_config, train

    config = load_config(args.config)
    overrides = {}
    if args.device is not None:
        overrides["device"] = args.device
    if args.output_dir is not None:
        overrides["output_dir"] = args.output_dir
    if args.no_progress:
        overrides["progress_bar"] = False
    config = dataclasses.replace(config, **overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    metrics = train(config, resume=args.resume)
    print(f"done ({metrics['stopped_by']}): best epoch {metrics['best_epoch']}, results in {config.output_dir}")
    return 0


def register(subparsers) -> None:
    """Add the ``train`` subcommand to ``escn-ase``'s parser."""
    parser = subparsers.add_parser(
        "train", help="train a conservative eSCN model from a YAML config", formatter_class=HelpFormatter
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
