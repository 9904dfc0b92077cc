"""``escn-ase adsorb``: adsorption-energy screening."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._options import HelpFormatter, add_calculator_options, calculator_spec, read_structure

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ..workflows._common import CalculatorFactory
    from ..workflows.adsorption import screen_adsorption

    surfaces: list = list(args.surfaces or [])
    for path in args.slab or []:
        slab = read_structure(path)
        slab.info.setdefault("label", Path(path).stem)
        surfaces.append(slab)
    if not surfaces:
        raise ValueError("give at least one surface (--surfaces 'Cu(111)' ...) or slab file (--slab FILE)")
    spec, kwargs = calculator_spec(args)
    executor = client = None
    if args.scheduler:
        from ..workflows._common import optional_import

        client = optional_import("distributed").Client(args.scheduler)
        executor = client
    try:
        result = screen_adsorption(
            surfaces,
            args.adsorbates,
            calculator=CalculatorFactory(spec, kwargs),
            output_dir=args.out,
            executor=executor,
            n_workers=args.workers,
            site_types=tuple(args.sites),
            max_sites_per_type=args.max_sites_per_type,
            layers=args.layers,
            size=tuple(args.size),
            vacuum=args.vacuum,
            fix_bottom_layers=args.fix_bottom_layers,
            fmax=args.fmax,
            steps=args.steps,
            optimizer=args.optimizer,
            max_jobs=args.max_jobs,
            progress=not args.no_progress,
            mode="batched" if args.batched else "executor",
            max_batch_atoms=args.max_batch_atoms,
        )
    finally:
        if client is not None:
            client.close()
    print("adsorption energies (eV):")
    for name, formula in result.references.items():
        print(f"  {name}: {formula}")
    print(f"{'surface':>12} {'adsorbate':>9} {'site':>10} {'E_ads (eV)':>11}  flags")
    for minimum in result.minima:
        flag = "all sites flagged" if minimum["all_sites_flagged"] else ""
        site = f"{minimum['site']}{minimum['site_index']}"
        print(
            f"{minimum['surface']:>12} {minimum['adsorbate']:>9} {site:>10} "
            f"{minimum['adsorption_energy']:>11.3f}  {flag}"
        )
    print(
        f"jobs: {result.n_jobs} total, {result.n_done_before} done before, {result.n_run} run now, "
        f"{result.n_failed} failed; files: {json.dumps(result.files)}"
    )
    if not result.complete:
        print(f"{len(result.missing)} job(s) missing: run the same command again to resume")
    return 0 if result.complete and not result.n_failed else 2


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    adsorb = subparsers.add_parser(
        "adsorb",
        help="adsorption-energy screening over surfaces, adsorbates and sites",
        formatter_class=HelpFormatter,
        description="Relax every adsorbate on every symmetry-distinct site of every surface (plus clean slabs "
        "and gas references) in parallel. Results go to OUT/results.jsonl as each job finishes; "
        "running the same command again resumes. Tables: OUT/adsorption.csv, OUT/adsorption.json; "
        "bar chart: OUT/adsorption.png; relaxed structures: OUT/structures.extxyz. "
        "E_ads = E(slab+adsorbate) - E(slab) - gas references (printed). Exit status 2 while jobs are "
        "missing (--max-jobs) or failed.",
    )
    adsorb.add_argument("--surfaces", nargs="*", default=[], help="surfaces like 'Cu(111)' 'Pt(100)'")
    adsorb.add_argument("--slab", action="append", help="a prepared slab file (repeatable; surface faces +z)")
    adsorb.add_argument(
        "--adsorbates", nargs="+", default=["O", "H"], help="built-in adsorbates: O H N C OH CO CH3 NH2 H2O"
    )
    adsorb.add_argument("--sites", nargs="+", default=["ontop", "bridge", "hollow"], help="site kinds")
    adsorb.add_argument("--max-sites-per-type", type=int, default=None, help="at most n sites of each kind")
    adsorb.add_argument("--layers", type=int, default=4, help="atomic layers of built slabs")
    adsorb.add_argument("--size", type=int, nargs=2, default=[2, 2], help="in-plane repetitions of built slabs")
    adsorb.add_argument("--vacuum", type=float, default=7.5, help="vacuum on each side of built slabs (A)")
    adsorb.add_argument("--fix-bottom-layers", type=int, default=2, help="fixed bottom layers")
    adsorb.add_argument("--fmax", type=float, default=0.05, help="force convergence threshold (eV/A)")
    adsorb.add_argument("--steps", type=int, default=300, help="maximum optimiser steps per relaxation")
    adsorb.add_argument(
        "--optimizer", default=None, choices=["FIRE", "BFGS", "LBFGS"],
        help="optimiser (default: BFGS; LBFGS with --batched, which takes FIRE or LBFGS)",
    )
    adsorb.add_argument("--out", default="adsorption", help="output directory")
    adsorb.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: CPU count; 0: run in this process)"
    )
    adsorb.add_argument(
        "--scheduler", default=None, help="address of a Dask scheduler (tcp://host:port) to run the jobs on instead"
    )
    adsorb.add_argument(
        "--batched", action="store_true",
        help="relax all jobs in this process, many structures per model call (the mode for one GPU); "
        "not with --workers or --scheduler",
    )
    adsorb.add_argument(
        "--max-batch-atoms", type=int, default=None,
        help="with --batched: most atoms per model call (default: the memory estimate decides)",
    )
    adsorb.add_argument("--max-jobs", type=int, default=None, help="run at most n pending jobs, then stop")
    adsorb.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_calculator_options(adsorb)
    adsorb.set_defaults(func=run)
