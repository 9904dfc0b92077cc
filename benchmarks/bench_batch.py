"""Throughput of ``ESCNCalculator.calculate_batch`` against one ``calculate`` call per structure.

    python benchmarks/bench_batch.py [--quick] [--threads 2] [--structures 32] [--repeats 3] [--device cpu]

32 small structures (about 16 to 20 atoms, seeded): rattled fcc bulk cells of one metal or a
random alloy of Al Cu Ag Au Ni Pd Pt, and small fcc(111) / fcc(100) slabs with H, C, N, O or CO
adsorbed.  Both routes get the same structures and compute energy, forces and stress (slabs
are periodic in all three directions here, so stress applies to every structure):

* batched: ``calc.calculate_batch(structures)`` packs them into one graph (as few as fit);
* single: ``calc.calculate(atoms, ["energy", "forces", "stress"], all_changes)`` for each in turn,
  so every call computes fresh results (no cache).

Prints structures per second of both, the speed-up, and the largest differences between the two
results (energy, forces, stress): they should agree to float32 round-off.

Model: the default model (``models/escn-emt-small.pt``) if present, else a random conservative model
of ``configs/default_model.yaml``'s architecture, else a random small conservative model
(``_common.SMALL_CONSERVATIVE``); the choice is printed.  Times are medians of ``--repeats`` after
one warm-up of each route.  ``--quick``: 8 structures, one timed repeat.  Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import config_summary, machine_line, markdown_table, median_seconds, speed_model_checkpoint
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc100, fcc111, molecule
from ase.calculators.calculator import all_changes

from escn_ase import ESCNCalculator

METALS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")
ADSORBATES = ("H", "C", "N", "O", "CO")


def small_structures(count: int, seed: int = 0) -> list[Atoms]:
    """``count`` seeded structures of about 16-20 atoms: alternately bulk cells and slabs with an adsorbate."""
    rng = np.random.default_rng(seed)
    structures = []
    for index in range(count):
        metal = str(rng.choice(METALS))
        if index % 2 == 0:
            # 18-atom fcc cell (3x3x2 primitive cells); every third one a random binary alloy.
            atoms = bulk(metal, "fcc", a=_lattice_constant(metal) * rng.uniform(0.98, 1.02)).repeat((3, 3, 2))
            if index % 3 == 0:
                other = str(rng.choice([m for m in METALS if m != metal]))
                atoms.symbols[rng.random(len(atoms)) < 0.4] = other
        else:
            build = fcc111 if index % 4 == 1 else fcc100
            atoms = build(metal, size=(2, 2, 4), vacuum=5.0, a=_lattice_constant(metal))
            adsorbate = str(rng.choice(ADSORBATES))
            add_adsorbate(atoms, molecule(adsorbate) if adsorbate == "CO" else adsorbate, 1.8, "ontop")
            atoms.pbc = True
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        structures.append(atoms)
    return structures


def _lattice_constant(metal: str) -> float:
    from ase.data import atomic_numbers, reference_states

    return float(reference_states[atomic_numbers[metal]]["a"])


def max_differences(batched: list[dict], single: list[dict]) -> dict[str, tuple[float, float]]:
    """Per property: (largest |batched - single|, largest |single|) over all structures."""
    worst = {key: [0.0, 0.0] for key in ("energy", "forces", "stress")}
    for b, s in zip(batched, single):
        for key in worst:
            if key in b and key in s:
                worst[key][0] = max(worst[key][0], float(np.abs(np.asarray(b[key]) - s[key]).max()))
                worst[key][1] = max(worst[key][1], float(np.abs(s[key]).max()))
    return {key: (diff, scale) for key, (diff, scale) in worst.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 structures, one timed repeat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--structures", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    count = args.structures or (8 if args.quick else 32)
    repeats = args.repeats or (1 if args.quick else 3)
    structures = small_structures(count)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, origin = speed_model_checkpoint(Path(tmp))
        calc = ESCNCalculator(checkpoint, device=args.device)
    properties = ["energy", "forces"] + (["stress"] if calc.conservative else [])

    def batched() -> list[dict]:
        return calc.calculate_batch(structures)

    def single() -> list[dict]:
        results = []
        for atoms in structures:
            calc.calculate(atoms, properties, all_changes)
            results.append(dict(calc.results))
        return results

    batch_seconds = median_seconds(batched, repeats)
    single_seconds = median_seconds(single, repeats)
    worst = max_differences(batched(), single())
    n_atoms = [len(a) for a in structures]
    n_edges = calc.prepare(structures).n_edges

    print(machine_line(args.threads, args.device))
    print(f"# model: {origin}; {config_summary(calc.config)}")
    print(f"# {count} structures, {min(n_atoms)}-{max(n_atoms)} atoms ({sum(n_atoms)} atoms, {n_edges} edges in all), "
          f"properties {properties}, {args.device}, median of {repeats}")
    print()
    print(markdown_table(
        ["route", "seconds for all", "structures/s", "ms/structure"],
        [["calculate_batch (one packed graph)", f"{batch_seconds:.3f}", f"{count / batch_seconds:.1f}",
          f"{1000 * batch_seconds / count:.1f}"],
         ["calculate, one structure at a time", f"{single_seconds:.3f}", f"{count / single_seconds:.1f}",
          f"{1000 * single_seconds / count:.1f}"]],
    ))
    print()
    print(f"speed-up of calculate_batch: {single_seconds / batch_seconds:.2f}x")
    print()
    units = {"energy": "eV", "forces": "eV/A", "stress": "eV/A^3"}
    print(markdown_table(
        ["batched vs single", "max abs difference", "max abs value", "relative"],
        [[key, f"{diff:.2e} {units[key]}", f"{scale:.2e} {units[key]}", f"{diff / scale:.1e}" if scale else "-"]
         for key, (diff, scale) in worst.items()],
    ))


if __name__ == "__main__":
    main()
