"""Quickstart: energies, forces and stress of bulk Cu, then a relaxed O/Cu(111) slab.

Run:  python examples/quickstart.py            (add --quick for a smaller, faster version)
"""

from _example_args import parse_example_args
from ase.build import add_adsorbate, bulk, fcc111

from escn_ase.workflows import default_calculator, relax

args = parse_example_args(__doc__, "quickstart")
calc = default_calculator()  # the default eSCN model shipped in models/

# Single point: energy (eV), forces (eV/A) and stress (eV/A^3) of a slightly rattled crystal.
crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
crystal.rattle(0.02, seed=0)
crystal.calc = calc
print(
    f"bulk Cu: E = {crystal.get_potential_energy():.4f} eV, "
    f"max |F| = {abs(crystal.get_forces()).max():.4f} eV/A, stress (eV/A^3) = {crystal.get_stress().round(5)}"
)

# Relaxation: O in the fcc hollow of Cu(111), bottom layer fixed.
size = (1, 1, 3) if args.quick else (2, 2, 3)
slab = fcc111("Cu", size, vacuum=7.0, periodic=True)
add_adsorbate(slab, "O", 1.3, "fcc")
del slab.info["adsorbate_info"]  # not serialisable in extxyz
result = relax(
    slab,
    calc,
    fmax=0.05,
    steps=100 if args.quick else 300,
    optimizer="BFGS",
    fix_bottom_layers=1,
    trajectory=f"{args.out}/o_cu111.traj",
)
print(
    f"O/Cu(111): E {result.initial_energy:.4f} -> {result.energy:.4f} eV in {result.steps} steps, "
    f"converged={result.converged}, fmax={result.fmax:.3f} eV/A"
)
print(f"trajectory: {args.out}/o_cu111.traj")
