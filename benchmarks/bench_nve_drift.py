"""Energy conservation of a conservative model (the default model unless --checkpoint): NVE molecular dynamics.

    python benchmarks/bench_nve_drift.py [--systems slab molecule] [--ps 10] [--dtype float64] [--quick]

Systems:
- ``slab``: Pt(111) 4x4x4 (64 atoms) + CO on top (C down) = 66 atoms, 3D periodic, 1 fs steps for ``--ps`` ps.
- ``molecule``: CH3CHO in vacuum (no periodicity), 0.25 fs steps, ``--molecule-steps`` steps (400).

Velocities from a Maxwell-Boltzmann distribution at ``--temperature`` (seeded), momentum removed,
velocity Verlet.  Printed per system: the drift of the total energy (slope of a linear fit,
meV/atom/ps), its largest excursion from the start (meV/atom), the step-by-step changes of the total
energy (median and largest, and their ratio), the mean temperature and the speed.  The molecule is
also run at half the time step over the same time: on a smooth energy surface velocity Verlet's
largest per-step change shrinks about 8x (its error is O(dt^3) per step), while a jump of the energy
(a discontinuity of the model) stays the same size whatever the step.  That factor, not the
largest/median ratio, tells smooth from not: a molecule that rearranges during the run has a few
fast steps far above the median even on a smooth surface.
``--quick`` runs 0.1 ps of the slab and 100 molecule steps.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from _common import REPO, markdown_table  # noqa: F401  (puts the repository on sys.path)
from ase import units
from ase.build import add_adsorbate, fcc111, molecule
from ase.md import velocitydistribution
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from escn_ase import ESCNCalculator


def pt111_co():
    atoms = fcc111("Pt", size=(4, 4, 4), vacuum=8.0)
    add_adsorbate(atoms, molecule("CO"), 1.9, "ontop", mol_index=1)  # bound through C, O up
    atoms.pbc = True
    return atoms


def acetaldehyde():
    atoms = molecule("CH3CHO")
    atoms.pbc = False
    return atoms


def run_nve(atoms, calc, timestep_fs: float, steps: int, temperature: float) -> dict:
    atoms.calc = calc
    # thermalize_momenta replaces MaxwellBoltzmannDistribution (deprecated) from ASE 3.26 on
    thermalize = getattr(velocitydistribution, "thermalize_momenta", None)
    thermalize = thermalize or velocitydistribution.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature, rng=np.random.default_rng(0))
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    energies, temperatures = [atoms.get_total_energy()], [atoms.get_temperature()]

    def record() -> None:
        energies.append(atoms.get_total_energy())
        temperatures.append(atoms.get_temperature())

    dynamics.attach(record, interval=1)
    start = time.perf_counter()
    dynamics.run(steps)
    elapsed = time.perf_counter() - start
    energies = np.array(energies[: steps + 1])
    times_ps = np.arange(len(energies)) * timestep_fs / 1000
    per_atom = energies / len(atoms)
    step_changes = np.abs(np.diff(energies))
    median_step = float(np.median(step_changes))
    return dict(
        atoms=len(atoms),
        steps=steps,
        timestep=timestep_fs,
        ps=times_ps[-1],
        drift=1000 * np.polyfit(times_ps, per_atom, 1)[0],
        excursion=1000 * np.abs(per_atom - per_atom[0]).max(),
        median_step=median_step,
        max_step=float(step_changes.max()),
        ratio=float(step_changes.max() / median_step) if median_step > 0 else float("inf"),
        temperature=float(np.mean(temperatures)),
        speed=steps / elapsed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", choices=("slab", "molecule"), default=["slab", "molecule"])
    parser.add_argument("--ps", type=float, default=10.0, help="slab: simulated time at 1 fs steps")
    parser.add_argument("--molecule-steps", type=int, default=400, help="molecule: steps of 0.25 fs")
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.ps, args.molecule_steps = 0.1, 100
    logging.getLogger("escn_ase").setLevel(logging.ERROR)
    calc = ESCNCalculator(args.checkpoint, device="cpu", dtype=args.dtype)

    rows = []
    for system in args.systems:
        if system == "slab":
            result = run_nve(pt111_co(), calc, 1.0, int(round(args.ps * 1000)), args.temperature)
            name = "Pt(111) 4x4x4 + CO"
        else:
            result = run_nve(acetaldehyde(), calc, 0.25, args.molecule_steps, args.temperature)
            finer = run_nve(acetaldehyde(), calc, 0.125, 2 * args.molecule_steps, args.temperature)
            result["refinement"] = result["max_step"] / finer["max_step"]
            name = "CH3CHO (vacuum)"
        rows.append(
            [
                name,
                str(result["atoms"]),
                f"{result['timestep']}",
                str(result["steps"]),
                f"{result['ps']:.2f}",
                f"{result['drift']:+.4f}",
                f"{result['excursion']:.3f}",
                f"{result['median_step']:.1e}",
                f"{result['max_step']:.1e}",
                f"{result['ratio']:.1f}",
                f"{result['refinement']:.1f}" if "refinement" in result else "-",
                f"{result['temperature']:.0f}",
                f"{result['speed']:.1f}",
            ]
        )
    print(
        f"# model: {args.checkpoint or 'default model'}; {args.dtype}; "
        f"NVE velocity Verlet from {args.temperature:.0f} K"
    )
    print(
        markdown_table(
            [
                "system",
                "atoms",
                "timestep fs",
                "steps",
                "ps",
                "drift meV/atom/ps",
                "max excursion meV/atom",
                "median |dE| per step (eV)",
                "largest |dE| per step (eV)",
                "largest / median",
                "largest step / largest at dt/2 (smooth: ~8)",
                "mean T (K)",
                "steps/s",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
