"""``escn-ase md``: molecular dynamics (NVE, NVT, NPT) with restart."""

from __future__ import annotations

import argparse
import json

from ._options import HelpFormatter, add_calculator_options, make_calculator, read_structure

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the command with the parsed ``args``; returns the exit status."""
    from ..workflows.md import run_md

    atoms = read_structure(args.structure, args.index)
    temperatures = list(args.temperature)
    n_replicas = args.replicas if args.replicas is not None else len(temperatures)
    if len(temperatures) not in (1, n_replicas):
        raise ValueError(f"--temperature has {len(temperatures)} values for {n_replicas} replicas; give one or "
                         "one per replica")
    if n_replicas > 1 or args.replicas is not None:
        return _run_replicas(args, atoms, n_replicas, temperatures)
    summary = run_md(
        atoms,
        make_calculator(args),
        temperature_K=temperatures[0],
        steps=args.steps,
        trajectory=args.trajectory,
        logfile=args.logfile,
        seed=args.seed,
        progress=not args.no_progress,
        plot=args.plot if args.plot else True,
        **_integration_settings(args),
    )
    print(json.dumps(summary.to_dict(), indent=2))
    return 0


def _integration_settings(args: argparse.Namespace) -> dict:
    """The run_md settings that a single run and every replica take alike."""
    return dict(
        ensemble=args.ensemble,
        timestep_fs=args.timestep,
        interval=args.interval,
        thermostat=args.thermostat,
        friction_per_fs=args.friction,
        taut_fs=args.taut,
        pressure_bar=args.pressure,
        pdamp_fs=args.pdamp,
        restart=not args.no_restart,
    )


def _run_replicas(args: argparse.Namespace, atoms, n_replicas: int, temperatures: list[float]) -> int:
    """--replicas N: N copies stepped together (one packed model call per step), seeds seed..seed+N-1."""
    from pathlib import Path

    from ..workflows.md_batch import run_md_batch

    if n_replicas < 1:
        raise ValueError(f"--replicas must be at least 1, got {n_replicas}")
    if args.logfile or args.plot:
        raise ValueError("--logfile and --plot name one run's files; with --replicas every replica writes its own "
                         "into --replicas-dir")
    directory = args.replicas_dir or str(Path(args.trajectory).with_suffix("")) + "_replicas"
    summaries = run_md_batch(
        atoms,
        make_calculator(args),
        n_replicas=n_replicas,
        steps=args.steps,
        trajectory_dir=directory,
        progress=not args.no_progress,
        temperature_K=temperatures if len(temperatures) > 1 else temperatures[0],
        seed=[args.seed + index for index in range(n_replicas)],
        **_integration_settings(args),
    )
    print(json.dumps([summary.to_dict() for summary in summaries], indent=2))
    return 0


def register(subparsers) -> None:
    """Add this command to the ``escn-ase`` parser's subparsers."""
    md = subparsers.add_parser(
        "md",
        help="molecular dynamics (NVE, NVT, NPT) with restart",
        formatter_class=HelpFormatter,
        description="Run MD for --steps steps in total. Writes the trajectory, a CSV thermo log "
        "(<trajectory>.csv), a PNG of energies and temperature (<trajectory>.png) and a JSON "
        "summary (<trajectory>.summary.json). If the trajectory exists the run continues from its "
        "last frame (same settings required) unless --no-restart. --replicas N runs N copies together "
        "(different seeds, or one per --temperature), each with its own files in --replicas-dir.",
    )
    md.add_argument("structure", help="starting structure file")
    md.add_argument("--index", default="-1", help="frame to read from a multi-frame file")
    md.add_argument("--ensemble", default="nvt", choices=["nve", "nvt", "npt"], help="ensemble")
    md.add_argument(
        "--temperature", type=float, nargs="+", default=[300.0],
        help="temperature (K), also of initial velocities; one per replica with --replicas",
    )
    md.add_argument(
        "--replicas", type=int, default=None,
        help="run N replicas of the structure together, one packed model call per step (seeds seed..seed+N-1; "
        "several --temperature values imply one replica each)",
    )
    md.add_argument(
        "--replicas-dir", default=None,
        help="directory of the replicas' files (replica_000.traj, .csv, .png, ...; default: <trajectory>_replicas)",
    )
    md.add_argument("--timestep", type=float, default=1.0, help="time step (fs)")
    md.add_argument("--steps", type=int, default=1000, help="total number of steps")
    md.add_argument("--interval", type=int, default=10, help="write a frame and a log row every n steps")
    md.add_argument("--trajectory", default="md.traj", help="trajectory file (.traj)")
    md.add_argument("--logfile", default=None, help="thermo CSV (default: <trajectory>.csv)")
    md.add_argument("--thermostat", default="langevin", choices=["langevin", "bussi"], help="NVT thermostat")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    md.add_argument("--taut", type=float, default=100.0, help="Bussi / NPT thermostat time constant (fs)")
    md.add_argument("--pressure", type=float, default=1.01325, help="NPT pressure (bar)")
    md.add_argument("--pdamp", type=float, default=1000.0, help="NPT barostat time constant (fs)")
    md.add_argument("--seed", type=int, default=0, help="random seed (velocities, thermostat noise)")
    md.add_argument("--plot", default=None, help="PNG path (default: <trajectory>.png)")
    md.add_argument("--no-restart", action="store_true", help="start anew even if the trajectory exists")
    md.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_calculator_options(md)
    md.set_defaults(func=run)
