"""Energy conservation of the default (conservative) model: NVE molecular dynamics of a slab + adsorbate.

    python benchmarks/bench_nve_drift.py [--ps 2.0] [--timestep-fs 1.0] [--temperature 300] [--quick]

Pt(111) 4x4x4 slab (64 atoms) + CO on top = 66 atoms, velocities from a Maxwell-Boltzmann distribution
at the given temperature (seeded), velocity Verlet. Prints the drift of the total energy (slope of a
linear fit, meV/atom/ps), its largest excursion from the start (meV/atom), the temperature, and the
speed (steps/s); --quick runs 0.1 ps.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from ase import units
from ase.build import add_adsorbate, fcc111, molecule
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from _common import REPO  # noqa: F401  (puts the repository on sys.path)
from escn_ase import ESCNCalculator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ps", type=float, default=2.0)
    parser.add_argument("--timestep-fs", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.ps = 0.1
    logging.getLogger("escn_ase").setLevel(logging.ERROR)

    atoms = fcc111("Pt", size=(4, 4, 4), vacuum=8.0)
    add_adsorbate(atoms, molecule("CO"), 1.9, "ontop")
    atoms.pbc = True
    atoms.calc = ESCNCalculator(args.checkpoint)
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=np.random.default_rng(0))
    Stationary(atoms)
    steps = int(round(args.ps * 1000 / args.timestep_fs))
    dynamics = VelocityVerlet(atoms, timestep=args.timestep_fs * units.fs)
    times, energies, temperatures = [], [], []

    def record() -> None:
        times.append(dynamics.nsteps * args.timestep_fs / 1000)
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())
        temperatures.append(atoms.get_temperature())

    dynamics.attach(record, interval=10)
    start = time.perf_counter()
    dynamics.run(steps)
    elapsed = time.perf_counter() - start
    times, energies = np.array(times), np.array(energies) / len(atoms)
    slope = np.polyfit(times, energies, 1)[0]
    print(f"| atoms | steps | timestep fs | simulated ps | drift meV/atom/ps | max excursion meV/atom | mean T (K) | steps/s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(atoms)} | {steps} | {args.timestep_fs} | {times[-1]:.2f} | {1000 * slope:+.3f} | "
          f"{1000 * np.abs(energies - energies[0]).max():.3f} | {np.mean(temperatures):.0f} | {steps / elapsed:.1f} |")


if __name__ == "__main__":
    main()
