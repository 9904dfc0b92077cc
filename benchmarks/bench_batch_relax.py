"""Relaxations per minute: ``relax_batch`` (one packed graph per step) against ``relax`` one at a time.

    python benchmarks/bench_batch_relax.py [--quick] [--threads 2] [--systems 32] [--fmax 0.05] [--steps 300]
                                           [--repeats 1] [--max-batch-atoms N] [--device cpu] [--per-system]

32 adsorbate + slab systems, seeded: O, H, N, C, OH or CO of the screening catalogue
(``escn_ase.workflows.adsorbates``: OH binds through O, CO through C) at an ontop or fcc site of Cu,
Pt, Ni or Au(111), 2x2x4 or 3x3x4 slabs (17 to 38 atoms; ``ase.build.fcc111`` + ``add_adsorbate``),
the two bottom layers fixed, rattled 0.02 A. Both routes relax the same starts with the default model,
FIRE, the same ``fmax`` and step limit, in this one process:

* batched: ``relax_batch(systems, calc)``, every FIRE step of every unfinished system in one
  ``calc.evaluate`` call, the queue refilling the batch as systems finish;
* single: ``relax(atoms, calc, optimizer="FIRE")`` (ASE's FIRE through ASE's calculator interface)
  for each system in turn.

Prints the wall time and relaxations per minute of both, the speed-up, and how far apart the final
energies are: the largest |E_batched - E_single|, how many systems end within 2 meV (the same
minimum) and how many get the same AdsorbML anomaly flags (desorbed, dissociated, surface changed;
``escn_ase.workflows.adsorption.anomaly_flags`` with its default thresholds). One short warm-up
relaxation precedes the timed runs. ``--repeats N`` times each route N times in the order
batched, single, single, batched, ... (drift in the machine's load cancels) and reports the
median; all times are printed. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from _common import config_summary, machine_line, markdown_table
from ase import Atoms
from ase.build import add_adsorbate, fcc111

from escn_ase import ESCNCalculator
from escn_ase.workflows import relax, relax_batch
from escn_ase.workflows.adsorbates import get_adsorbate
from escn_ase.workflows.adsorption import anomaly_flags

METALS = ("Cu", "Pt", "Ni", "Au")
ADSORBATES = ("O", "H", "N", "C", "OH", "CO")
SITES = ("ontop", "fcc")
HEIGHTS = {"ontop": 1.9, "fcc": 1.3}


def adsorbate(name: str) -> tuple[Atoms, int]:
    """The screening catalogue's adsorbate (binding atom at the origin, pointing +z) and its binding atom."""
    entry = get_adsorbate(name)
    return entry.atoms(), entry.binding_index


FLAGS = ("desorbed", "dissociated", "surface_changed")


def flags(start: Atoms, final: Atoms) -> tuple[bool, ...]:
    """AdsorbML flags of one relaxation (adsorbate atoms from ``start.info["n_slab"]`` on)."""
    found = anomaly_flags(start, final, n_slab=start.info["n_slab"], binding_index=start.info["binding_index"])
    return tuple(bool(found[name]) for name in FLAGS)


def systems(count: int, seed: int = 0) -> list[tuple[str, Atoms]]:
    """``count`` seeded (label, slab + adsorbate) pairs drawn without repetition from metals x adsorbates x sites."""
    rng = np.random.default_rng(seed)
    combinations = list(itertools.product(METALS, ADSORBATES, SITES))
    chosen = [combinations[i] for i in rng.permutation(len(combinations))]
    chosen = (chosen * (count // len(chosen) + 1))[:count]
    out = []
    for index, (metal, name, site) in enumerate(chosen):
        size = (2, 2, 4) if index % 2 == 0 else (3, 3, 4)
        slab = fcc111(metal, size, vacuum=7.0)
        slab.info["n_slab"] = len(slab)
        atoms, binding = adsorbate(name)
        slab.info["binding_index"] = binding
        add_adsorbate(slab, atoms, HEIGHTS[site], site, mol_index=binding)
        slab.rattle(0.02, seed=int(rng.integers(1 << 30)))
        out.append((f"{name}@{site} {metal}(111) {size[0]}x{size[1]}", slab))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 systems")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", type=int, default=None)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-batch-atoms", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-system", action="store_true", help="also print one row per system")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    count = args.systems or (8 if args.quick else 32)
    labelled = systems(count)
    starts = [atoms for _, atoms in labelled]
    calc = ESCNCalculator(device=args.device)
    settings = dict(fmax=args.fmax, steps=args.steps, fix_bottom_layers=2)

    relax(starts[0], calc, optimizer="FIRE", **{**settings, "steps": 5})  # warm-up of both routes
    relax_batch(starts[:2], calc, **{**settings, "steps": 5})

    routes = {
        "batched": lambda: relax_batch(starts, calc, max_batch_atoms=args.max_batch_atoms, **settings),
        "single": lambda: [relax(atoms, calc, optimizer="FIRE", **settings) for atoms in starts],
    }
    times: dict[str, list[float]] = {"batched": [], "single": []}
    results = {}
    for repeat in range(args.repeats):
        for route in ("batched", "single") if repeat % 2 == 0 else ("single", "batched"):
            began = time.perf_counter()
            results[route] = routes[route]()
            times[route].append(time.perf_counter() - began)
    batched, single = results["batched"], results["single"]
    batch_seconds, single_seconds = (float(np.median(times[route])) for route in ("batched", "single"))

    differences = np.array([abs(b.energy - s.energy) for b, s in zip(batched, single)])
    flags_batched = [flags(start, r.atoms) for start, r in zip(starts, batched)]
    flags_single = [flags(start, r.atoms) for start, r in zip(starts, single)]
    n_atoms = [len(atoms) for atoms in starts]
    print(machine_line(args.threads, args.device))
    print(f"# model: default model {calc.checkpoint_path}; {config_summary(calc.config)}")
    print(f"# {count} systems, {min(n_atoms)}-{max(n_atoms)} atoms ({sum(n_atoms)} in all), FIRE, fmax {args.fmax} "
          f"eV/A, at most {args.steps} steps, 2 bottom layers fixed, max_batch_atoms {args.max_batch_atoms}, "
          f"{args.device}")
    if args.max_batch_atoms is None:
        print(f"# batches of at most {calc.preferred_batch_edges()} edges (calc.preferred_batch_edges(); None: "
              "memory alone decides) and what the memory estimate allows")
    if args.repeats > 1:
        print(f"# median of {args.repeats} runs per route (batched, single, single, batched, ...): "
              + "; ".join(f"{route} " + ", ".join(f"{t:.1f}" for t in times[route]) + " s" for route in times))
    print()
    rows = []
    for route, results, seconds in (
        ("relax_batch (one packed graph per step)", batched, batch_seconds),
        ("relax (ASE FIRE), one at a time", single, single_seconds),
    ):
        rows.append([
            route, count, sum(r.steps for r in results), f"{seconds:.1f}", f"{60 * count / seconds:.1f}",
            sum(r.converged for r in results),
        ])
    print(markdown_table(
        ["route", "systems", "total relaxation steps", "wall time s", "relaxations/min", "converged"], rows
    ))
    print()
    print(f"speed-up of relax_batch: {single_seconds / batch_seconds:.2f}x")
    print(f"max |E_batched - E_single|: {differences.max():.2e} eV; same minimum within 2 meV: "
          f"{int((differences <= 2e-3).sum())} of {count}; same step count: "
          f"{sum(b.steps == s.steps for b, s in zip(batched, single))} of {count}; same AdsorbML flags: "
          f"{sum(fb == fs for fb, fs in zip(flags_batched, flags_single))} of {count} "
          f"(systems flagged: batched {sum(any(f) for f in flags_batched)}, "
          f"single {sum(any(f) for f in flags_single)})")
    if args.per_system:
        print()
        print(markdown_table(
            ["system", "atoms", "steps batched", "steps single", "E batched eV", "E single eV", "|dE| eV"],
            [[label, len(atoms), b.steps, s.steps, f"{b.energy:.6f}", f"{s.energy:.6f}", f"{d:.1e}"]
             for (label, atoms), b, s, d in zip(labelled, batched, single, differences)],
        ))


if __name__ == "__main__":
    main()
