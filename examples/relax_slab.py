"""Relax a slab: equilibrium lattice constant of Pt (cell relaxation), then O on Pt(111) with the
two bottom layers fixed.  Writes the relaxation trajectory and the relaxed structure.

Run:  python examples/relax_slab.py            (add --quick for a smaller, faster version)
"""

import numpy as np
from _example_args import parse_example_args
from ase.build import add_adsorbate, bulk, fcc111
from ase.io import write

from escn_ase.workflows import default_calculator, relax

args = parse_example_args(__doc__, "relax_slab")
calc = default_calculator()

# 1) lattice constant: relax the cell of the primitive fcc cell (needs a conservative model: stress)
cell_result = relax(bulk("Pt", "fcc", a=4.0), calc, fmax=0.01, relax_cell=True, optimizer="BFGS")
lattice_constant = float(np.sqrt(2.0) * cell_result.atoms.cell.lengths()[0])
print(f"Pt lattice constant: {lattice_constant:.3f} A (cell relaxation, {cell_result.steps} steps)")

# 2) O in the fcc hollow of Pt(111); the two bottom layers keep their bulk positions
size = (2, 2, 3) if args.quick else (3, 3, 3)
slab = fcc111("Pt", size, a=lattice_constant, vacuum=7.0, periodic=True)
add_adsorbate(slab, "O", 1.2, "fcc")
del slab.info["adsorbate_info"]
result = relax(
    slab,
    calc,
    fmax=0.05,
    steps=300,
    optimizer="BFGS",
    fix_bottom_layers=2,
    trajectory=f"{args.out}/o_pt111.traj",
    logfile="-",
)
oxygen = result.atoms[-1]
top_layer_z = np.sort(result.atoms.positions[:-1, 2])[-size[0] * size[1] :].mean()
print(
    f"converged={result.converged} after {result.steps} steps, fmax={result.fmax:.3f} eV/A, "
    f"E={result.energy:.4f} eV, O height above the top layer {oxygen.position[2] - top_layer_z:.2f} A"
)
write(f"{args.out}/o_pt111_relaxed.extxyz", result.atoms)
print(f"files: {args.out}/o_pt111.traj, {args.out}/o_pt111_relaxed.extxyz")
