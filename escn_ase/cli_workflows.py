"""CLI subcommands of the workflows: ``escn-ase relax | md | adsorb | phonons | download``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["read_structure", "register"]


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


def _add_calculator_options(parser: argparse.ArgumentParser) -> None:
    from .cli import add_model_options  # imported here: cli imports this module to register commands

    add_model_options(parser).add_argument(
        "--emt", action="store_true", help="use ASE's EMT potential instead of an eSCN model (comparisons, smoke tests)"
    )


def _calculator_spec(args: argparse.Namespace):
    """(spec, kwargs) for ``CalculatorFactory``: 'emt', or a checkpoint file checked here, before any work starts."""
    if args.emt:
        if args.checkpoint:
            raise ValueError("--emt and --checkpoint exclude each other")
        return "emt", {}
    from .cli import calculator_kwargs
    from .registry import resolve_checkpoint

    return resolve_checkpoint(args.checkpoint), calculator_kwargs(args)


def _calculator(args: argparse.Namespace):
    from .workflows._common import CalculatorFactory

    spec, kwargs = _calculator_spec(args)
    return CalculatorFactory(spec, kwargs)()


# ------------------------------------------------------------------------------------ commands
def _cmd_relax(args: argparse.Namespace) -> int:
    from ase.io import write

    from .workflows.relax import relax

    atoms = read_structure(args.structure, args.index)
    result = relax(
        atoms,
        _calculator(args),
        fmax=args.fmax,
        steps=args.steps,
        optimizer=args.optimizer,
        relax_cell=args.relax_cell,
        fix_bottom_layers=args.fix_bottom_layers,
        keep_symmetry=args.keep_symmetry,
        symprec=args.symprec,
        trajectory=args.trajectory,
        logfile=args.logfile,
    )
    output = args.output or str(Path(args.structure).with_suffix("")) + "_relaxed.extxyz"
    write(output, result.atoms)
    summary = result.to_dict() | {"output": output}
    print(json.dumps(summary, indent=2))
    return 0 if result.converged else 2


def _cmd_md(args: argparse.Namespace) -> int:
    from .workflows.md import run_md

    atoms = read_structure(args.structure, args.index)
    summary = run_md(
        atoms,
        _calculator(args),
        ensemble=args.ensemble,
        temperature_K=args.temperature,
        timestep_fs=args.timestep,
        steps=args.steps,
        trajectory=args.trajectory,
        logfile=args.logfile,
        interval=args.interval,
        thermostat=args.thermostat,
        friction_per_fs=args.friction,
        taut_fs=args.taut,
        pressure_bar=args.pressure,
        pdamp_fs=args.pdamp,
        seed=args.seed,
        restart=not args.no_restart,
        progress=not args.no_progress,
        plot=args.plot if args.plot else True,
    )
    print(json.dumps(summary.to_dict(), indent=2))
    return 0


def _cmd_adsorb(args: argparse.Namespace) -> int:
    from .workflows._common import CalculatorFactory
    from .workflows.adsorption import screen_adsorption

    surfaces: list = list(args.surfaces or [])
    for path in args.slab or []:
        slab = read_structure(path)
        slab.info.setdefault("label", Path(path).stem)
        surfaces.append(slab)
    if not surfaces:
        raise ValueError("give at least one surface (--surfaces 'Cu(111)' ...) or slab file (--slab FILE)")
    spec, kwargs = _calculator_spec(args)
    executor = client = None
    if args.scheduler:
        from .workflows._common import optional_import

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
            f"{minimum['surface']:>12} {minimum['adsorbate']:>9} {site:>10} {minimum['adsorption_energy']:>11.3f}  {flag}"
        )
    print(
        f"jobs: {result.n_jobs} total, {result.n_done_before} done before, {result.n_run} run now, "
        f"{result.n_failed} failed; files: {json.dumps(result.files)}"
    )
    if not result.complete:
        print(f"{len(result.missing)} job(s) missing: run the same command again to resume")
    return 0 if result.complete and not result.n_failed else 2


def _cmd_phonons(args: argparse.Namespace) -> int:
    from .workflows.phonons import compute_phonons

    if bool(args.structure) == bool(args.bulk):
        raise ValueError("give either a structure file or --bulk SYMBOL")
    if args.bulk:
        from ase.build import bulk

        atoms = bulk(args.bulk, a=args.lattice_constant)
    else:
        atoms = read_structure(args.structure, args.index)
    supercell = args.supercell[0] if len(args.supercell) == 1 else tuple(args.supercell)
    if len(args.supercell) not in (1, 3):
        raise ValueError("--supercell takes 1 or 3 integers")
    result = compute_phonons(
        atoms,
        _calculator(args),
        supercell=supercell,
        displacement=args.displacement,
        mesh=args.mesh,
        npoints=args.npoints,
        path=args.path,
        plot=args.plot,
    )
    summary = result.to_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from . import registry

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


# -------------------------------------------------------------------------------- registration
def register(subparsers) -> None:
    """Add the workflow subcommands to the ``escn-ase`` parser's subparsers."""
    from .cli import HelpFormatter

    formatter = HelpFormatter

    relax = subparsers.add_parser(
        "relax",
        help="relax a structure (positions, optionally the cell)",
        formatter_class=formatter,
        description="Relax the positions (and with --relax-cell the cell) of a structure until the largest "
        "force is below --fmax. Writes the relaxed structure as extxyz and prints a JSON summary; "
        "exit status 2 when --steps ran out before convergence.",
    )
    relax.add_argument("structure", help="structure file (any ase.io format; CIF/POSCAR also via pymatgen)")
    relax.add_argument("--index", default="-1", help="frame to read from a multi-frame file")
    relax.add_argument(
        "--output", "-o", default=None, help="relaxed structure file (default: <structure>_relaxed.extxyz)"
    )
    relax.add_argument("--fmax", type=float, default=0.05, help="force convergence threshold (eV/A)")
    relax.add_argument("--steps", type=int, default=500, help="maximum optimiser steps")
    relax.add_argument("--optimizer", default="FIRE", choices=["FIRE", "BFGS", "LBFGS"], help="ASE optimiser")
    relax.add_argument(
        "--relax-cell", action="store_true", help="also relax the cell (FrechetCellFilter; needs a conservative model)"
    )
    relax.add_argument("--fix-bottom-layers", type=int, default=0, help="fix the n lowest atomic layers along z")
    relax.add_argument(
        "--keep-symmetry",
        action="store_true",
        help="keep the crystal's space group during the relaxation (ASE's FixSymmetry, spglib)",
    )
    relax.add_argument(
        "--symprec", type=float, default=0.01, help="symmetry tolerance (A) of --keep-symmetry"
    )
    relax.add_argument("--trajectory", default=None, help="write every step to this .traj file")
    relax.add_argument("--logfile", default="-", help="optimiser log file ('-' for the terminal)")
    _add_calculator_options(relax)
    relax.set_defaults(func=_cmd_relax)

    md = subparsers.add_parser(
        "md",
        help="molecular dynamics (NVE, NVT, NPT) with restart",
        formatter_class=formatter,
        description="Run MD for --steps steps in total. Writes the trajectory, a CSV thermo log "
        "(<trajectory>.csv), a PNG of energies and temperature (<trajectory>.png) and a JSON "
        "summary (<trajectory>.summary.json). If the trajectory exists the run continues from its "
        "last frame (same settings required) unless --no-restart.",
    )
    md.add_argument("structure", help="starting structure file")
    md.add_argument("--index", default="-1", help="frame to read from a multi-frame file")
    md.add_argument("--ensemble", default="nvt", choices=["nve", "nvt", "npt"], help="ensemble")
    md.add_argument("--temperature", type=float, default=300.0, help="temperature (K), also of initial velocities")
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
    _add_calculator_options(md)
    md.set_defaults(func=_cmd_md)

    adsorb = subparsers.add_parser(
        "adsorb",
        help="adsorption-energy screening over surfaces, adsorbates and sites",
        formatter_class=formatter,
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
    adsorb.add_argument("--optimizer", default="BFGS", choices=["FIRE", "BFGS", "LBFGS"], help="ASE optimiser")
    adsorb.add_argument("--out", default="adsorption", help="output directory")
    adsorb.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: CPU count; 0: run in this process)"
    )
    adsorb.add_argument(
        "--scheduler", default=None, help="address of a Dask scheduler (tcp://host:port) to run the jobs on instead"
    )
    adsorb.add_argument("--max-jobs", type=int, default=None, help="run at most n pending jobs, then stop")
    adsorb.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_calculator_options(adsorb)
    adsorb.set_defaults(func=_cmd_adsorb)

    phonons = subparsers.add_parser(
        "phonons",
        help="phonon band structure, DOS and Gamma frequencies (phonopy)",
        formatter_class=formatter,
        description="Finite-displacement phonons with phonopy. The structure should be relaxed first "
        "(escn-ase relax --relax-cell). Band path: ASE's standard path of the primitive cell's "
        "lattice. Writes the band structure + DOS plot to --plot and prints frequencies in THz.",
    )
    phonons.add_argument("structure", nargs="?", default=None, help="bulk crystal file")
    phonons.add_argument("--index", default="-1", help="frame to read from a multi-frame file")
    phonons.add_argument("--bulk", default=None, help="instead of a file: ase.build.bulk(SYMBOL), e.g. Cu")
    phonons.add_argument("--lattice-constant", "-a", type=float, default=None, help="lattice constant for --bulk")
    phonons.add_argument("--supercell", type=int, nargs="+", default=[3], help="supercell: n or nx ny nz")
    phonons.add_argument("--displacement", type=float, default=0.01, help="finite displacement (A)")
    phonons.add_argument("--mesh", type=int, default=20, help="q-mesh for the DOS (0: no DOS)")
    phonons.add_argument("--npoints", type=int, default=51, help="q-points per band segment")
    phonons.add_argument("--path", default=None, help="band path in ASE labels, e.g. GXWKGLUWLK,UX")
    phonons.add_argument("--plot", default="phonons.png", help="PNG of band structure and DOS")
    phonons.add_argument("--json", default=None, help="also write the summary to this JSON file")
    _add_calculator_options(phonons)
    phonons.set_defaults(func=_cmd_phonons)

    download = subparsers.add_parser(
        "download",
        help="download registered checkpoints into the cache",
        formatter_class=formatter,
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
    download.set_defaults(func=_cmd_download)
