"""Relaxed adsorption energies: the default model against EMT, the potential it was trained on.

    python benchmarks/bench_adsorption.py [--metals Cu Pt Ni Au] [--adsorbates O H N C] [--quick]

Protocol (identical for both calculators): fcc(111) 3x3 slab, 3 layers, 8 A vacuum, lattice constant
relaxed with each calculator, bottom 2 layers fixed; adsorbate placed on the top / bridge / fcc / hcp
site with ase.build.add_adsorbate, FIRE to fmax 0.05 eV/A (at most 300 steps). Gas references (each
relaxed with the same calculator): E_ads = E(slab+A) - E(slab) - sum_k c_k E(gas_k) with O: 1/2 O2,
H: 1/2 H2, N: 1/2 N2, C: CH4 - 2 H2 (escn_ase.workflows.adsorbates).

Prints every case, the MAE of the ML adsorption energies against EMT's, and the AdsorbML-style success
rate: the share of cases whose ML-relaxed structure, evaluated with EMT, lies within 0.1 eV of the
EMT-relaxed energy (lower is also a success).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from _common import REPO  # noqa: F401  (puts the repository on sys.path)
from ase.build import add_adsorbate, bulk, fcc111
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.optimize import FIRE

from escn_ase import ESCNCalculator
from escn_ase.workflows.adsorbates import gas_molecule, get_adsorbate

SITES = ("ontop", "bridge", "fcc", "hcp")


def relaxed(atoms, calc, fmax=0.05, steps=300):
    atoms = atoms.copy()
    atoms.calc = calc
    FIRE(atoms, logfile=None).run(fmax=fmax, steps=steps)
    return atoms, atoms.get_potential_energy()


def lattice_constant(symbol: str, calc) -> float:
    guesses = np.linspace(0.96, 1.04, 9) * bulk(symbol).cell.cellpar()[0] * np.sqrt(2)
    energies = []
    for a in guesses:
        atoms = bulk(symbol, "fcc", a=a, cubic=True)
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    fit = np.polyfit(guesses, energies, 3)
    roots = [r.real for r in np.roots(np.polyder(fit)) if abs(r.imag) < 1e-9 and guesses[0] < r.real < guesses[-1]]
    return float(min(roots, key=lambda r: np.polyval(fit, r)))


def slab(symbol: str, a: float):
    atoms = fcc111(symbol, size=(3, 3, 3), a=a, vacuum=8.0)
    atoms.set_constraint(FixAtoms(indices=[atom.index for atom in atoms if atom.tag >= 2]))  # tags 3, 2 = bottom
    atoms.pbc = True
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metals", nargs="+", default=["Cu", "Pt", "Ni", "Au"])
    parser.add_argument("--adsorbates", nargs="+", default=["O", "H", "N", "C"])
    parser.add_argument("--sites", nargs="+", default=list(SITES), choices=SITES)
    parser.add_argument("--checkpoint", default=None, help="ML model (default: the shipped default model)")
    parser.add_argument("--quick", action="store_true", help="2 metals x 2 adsorbates x 2 sites")
    args = parser.parse_args()
    if args.quick:
        args.metals, args.adsorbates, args.sites = args.metals[:2], args.adsorbates[:2], ["ontop", "fcc"]
    logging.getLogger("escn_ase").setLevel(logging.ERROR)
    calcs = {"ml": ESCNCalculator(args.checkpoint), "emt": EMT()}
    start = time.perf_counter()

    gas = {}
    for adsorbate in args.adsorbates:
        for molecule, _ in get_adsorbate(adsorbate).reference:
            if molecule not in gas:
                gas[molecule] = {k: relaxed(gas_molecule(molecule), c)[1] for k, c in calcs.items()}

    rows = []
    for metal in args.metals:
        a = {k: lattice_constant(metal, c) for k, c in calcs.items()}
        clean = {k: relaxed(slab(metal, a[k]), c) for k, c in calcs.items()}
        for adsorbate_name in args.adsorbates:
            adsorbate = get_adsorbate(adsorbate_name)
            reference = {k: sum(coef * gas[mol][k] for mol, coef in adsorbate.reference) for k in calcs}
            for site in args.sites:
                result = {}
                for key, calc in calcs.items():
                    start_atoms = slab(metal, a[key])
                    add_adsorbate(start_atoms, adsorbate.atoms(), 1.8 if adsorbate_name != "H" else 1.2, site)
                    final, energy = relaxed(start_atoms, calc)
                    result[key] = (final, energy - clean[key][1] - reference[key])
                # The ML-relaxed structure, re-evaluated with EMT (AdsorbML's success criterion).
                ml_final = result["ml"][0].copy()
                ml_final.calc = calcs["emt"]
                ml_in_emt = ml_final.get_potential_energy() - clean["emt"][1] - reference["emt"]
                rows.append(
                    dict(
                        metal=metal,
                        adsorbate=adsorbate_name,
                        site=site,
                        ml=result["ml"][1],
                        emt=result["emt"][1],
                        ml_structure_in_emt=ml_in_emt,
                    )
                )
                r = rows[-1]
                print(
                    f"# {metal}(111) {adsorbate_name}@{site}: ML {r['ml']:.3f} EMT {r['emt']:.3f} "
                    f"(ML structure in EMT {r['ml_structure_in_emt']:.3f}) eV",
                    flush=True,
                )

    print(
        "\n| surface | adsorbate | site | E_ads ML (eV) | E_ads EMT (eV) | error (eV) "
        "| ML structure in EMT (eV) | success |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        success = r["ml_structure_in_emt"] - r["emt"] <= 0.1
        print(
            f"| {r['metal']}(111) | {r['adsorbate']} | {r['site']} | {r['ml']:.3f} | {r['emt']:.3f} | "
            f"{r['ml'] - r['emt']:+.3f} | {r['ml_structure_in_emt']:.3f} | {'yes' if success else 'no'} |"
        )
    errors = np.array([r["ml"] - r["emt"] for r in rows])
    success = np.mean([r["ml_structure_in_emt"] - r["emt"] <= 0.1 for r in rows])
    print(
        f"\ncases: {len(rows)} ({len(args.metals)} metals x {len(args.adsorbates)} adsorbates "
        f"x {len(args.sites)} sites)"
    )
    print(
        f"adsorption-energy MAE (ML vs EMT): {np.abs(errors).mean():.3f} eV; max |error| {np.abs(errors).max():.3f} eV"
    )
    # Part of the error is one constant per adsorbate: the model's error on the isolated gas molecules of
    # the reference. Site-to-site and surface-to-surface differences do not see it.
    offsets = {name: np.mean([r["ml"] - r["emt"] for r in rows if r["adsorbate"] == name]) for name in args.adsorbates}
    relative = np.array([r["ml"] - r["emt"] - offsets[r["adsorbate"]] for r in rows])
    print(
        "mean error per adsorbate (gas-reference offset): "
        + ", ".join(f"{name} {value:+.3f} eV" for name, value in offsets.items())
    )
    print(f"MAE with that offset removed (relative adsorption energies): {np.abs(relative).mean():.3f} eV")
    print(
        f"success (EMT energy of the ML-relaxed structure within 0.1 eV of EMT's relaxed energy): {100 * success:.0f}%"
    )
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
