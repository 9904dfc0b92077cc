"""Molecular-dynamics speed: VelocityVerlet steps per second with eSCN and, for scale, with ASE's EMT.

    python benchmarks/bench_md.py [--quick] [--threads 2] [--steps 50] [--device cpu]
    python benchmarks/bench_md.py --baseline OTHER.pt [--checkpoint MODEL.pt] [--rounds 7]

System: a Cu(111) 4x4x6 slab with CO on top, C down (98 atoms, 10 A vacuum, periodic in x and y only),
rattled 0.02 A, velocities drawn from Maxwell-Boltzmann at 300 K (seeded), momentum removed.
NVE with ``ase.md.verlet.VelocityVerlet``, 1 fs steps: 2 warm-up steps, then ``--steps`` timed
steps (default 50, ``--quick`` 10).  The same run with ``ase.calculators.emt.EMT`` shows what a
classical potential costs on the same machine.

Printed per calculator: steps per second, ms per step, and the largest change of the total energy
over the timed steps per atom (a conservative model on 1 fs steps should keep it small; with
random weights the forces are tiny and the atoms nearly fly free, so it says little).

``--baseline OTHER.pt`` compares two models paired in one process instead: ``--rounds`` rounds, each
running ``--steps`` timed steps with the model and then with the baseline (order alternating between
rounds, so a drift of the host's speed hits both alike); prints each round's speed ratio and the median.

Model: ``--checkpoint``, else the default model (``models/escn-emt-small.pt``) if present, else a random
conservative model
of ``configs/default_model.yaml``'s architecture, else a random small conservative model
(``_common.SMALL_CONSERVATIVE``); the choice is printed.  Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import config_summary, machine_line, markdown_table, speed_model_checkpoint
from ase import units
from ase.build import add_adsorbate, fcc111, molecule
from ase.calculators.emt import EMT
from ase.md import velocitydistribution
from ase.md.verlet import VelocityVerlet

from escn_ase import ESCNCalculator

WARMUP_STEPS = 2


def slab_with_co():
    """Cu(111) 4x4x6 + CO on top: 98 atoms, periodic along the surface only."""
    slab = fcc111("Cu", size=(4, 4, 6), vacuum=10.0)
    add_adsorbate(slab, molecule("CO"), 1.9, "ontop", mol_index=1)  # bound through C, O up
    slab.rattle(0.02, seed=0)
    # thermalize_momenta replaces MaxwellBoltzmannDistribution (deprecated) from ASE 3.26 on.
    thermalize = getattr(velocitydistribution, "thermalize_momenta", None)
    thermalize = thermalize or velocitydistribution.MaxwellBoltzmannDistribution
    thermalize(slab, temperature_K=300, rng=np.random.default_rng(0))
    velocitydistribution.Stationary(slab)
    return slab


def run_md(calculator, steps: int) -> dict:
    """Warm-up, then ``steps`` timed VelocityVerlet steps; returns speed and energy drift."""
    atoms = slab_with_co()
    atoms.calc = calculator
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dynamics.run(WARMUP_STEPS)
    energies = [atoms.get_total_energy()]
    dynamics.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    start = time.perf_counter()
    dynamics.run(steps)
    seconds = time.perf_counter() - start
    drift = float(np.max(np.abs(np.array(energies) - energies[0]))) / len(atoms)
    return dict(atoms=len(atoms), seconds=seconds, steps=steps, drift=drift)


def paired_rounds(calc, baseline, steps: int, rounds: int) -> list[tuple[float, float]]:
    """``rounds`` pairs of (model seconds, baseline seconds) for ``steps`` steps each, order alternating."""
    pairs = []
    for round_index in range(rounds):
        order = [("model", calc), ("baseline", baseline)]
        if round_index % 2:
            order.reverse()
        seconds = {name: run_md(calculator, steps)["seconds"] for name, calculator in order}
        pairs.append((seconds["model"], seconds["baseline"]))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 timed steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default=None, help="model to time (default: the default model)")
    parser.add_argument("--baseline", default=None, help="second checkpoint, timed paired with the model")
    parser.add_argument("--rounds", type=int, default=7, help="paired rounds with --baseline")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (10 if args.quick else 50)

    if args.checkpoint:
        calc, origin = ESCNCalculator(args.checkpoint, device=args.device), args.checkpoint
    else:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint, origin = speed_model_checkpoint(Path(tmp))
            calc = ESCNCalculator(checkpoint, device=args.device)
    edges = calc.prepare([slab_with_co()]).n_edges
    if args.baseline:
        baseline = ESCNCalculator(args.baseline, device=args.device)
        run_md(calc, WARMUP_STEPS), run_md(baseline, WARMUP_STEPS)  # first-call costs out of the rounds
        pairs = paired_rounds(calc, baseline, steps, args.rounds)
        print(machine_line(args.threads, args.device))
        print(f"# model: {origin}; {config_summary(calc.config)}")
        print(f"# baseline: {args.baseline}; {config_summary(baseline.config)}")
        print(
            f"# Cu(111) 4x4x6 + CO, 98 atoms, {edges} edges; NVE VelocityVerlet 1 fs, {args.rounds} paired rounds "
            f"of {steps} steps, {args.device}"
        )
        print()
        ratios = [base / model for model, base in pairs]
        print(
            markdown_table(
                ["round", "model ms/step", "baseline ms/step", "speed ratio (model / baseline)"],
                [
                    [str(i + 1), f"{1000 * m / steps:.1f}", f"{1000 * b / steps:.1f}", f"{r:.2f}"]
                    for i, ((m, b), r) in enumerate(zip(pairs, ratios))
                ],
            )
        )
        print()
        print(
            f"median speed ratio {np.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}); "
            f">1: the model is faster"
        )
        return
    results = [("eSCN (escn_ase)", run_md(calc, steps)), ("ASE EMT", run_md(EMT(), steps))]

    print(machine_line(args.threads, args.device))
    print(f"# model: {origin}; {config_summary(calc.config)}")
    print(
        f"# Cu(111) 4x4x6 + CO, {results[0][1]['atoms']} atoms, {edges} edges for eSCN; NVE VelocityVerlet 1 fs, "
        f"{WARMUP_STEPS} warm-up + {steps} timed steps, {args.device}"
    )
    print()
    print(
        markdown_table(
            ["calculator", "steps/s", "ms/step", "max abs dE_total per atom (eV)"],
            [
                [
                    name,
                    f"{r['steps'] / r['seconds']:.2f}",
                    f"{1000 * r['seconds'] / r['steps']:.1f}",
                    f"{r['drift']:.1e}",
                ]
                for name, r in results
            ],
        )
    )
    escn, emt = results[0][1], results[1][1]
    print()
    print(f"eSCN step costs {escn['seconds'] / emt['seconds']:.0f}x an EMT step")


if __name__ == "__main__":
    main()
