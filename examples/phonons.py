"""Phonons of fcc Cu with phonopy: relax the cell, then band structure on the standard fcc path,
DOS and the frequencies at Gamma and X, plotted to a PNG.

Run:  python examples/phonons.py               (add --quick for a smaller, faster version)
"""

from _example_args import parse_example_args
from ase.build import bulk

from escn_ase.workflows import compute_phonons, default_calculator, relax

args = parse_example_args(__doc__, "phonons")
calc = default_calculator()

primitive = relax(bulk("Cu", "fcc", a=3.6), calc, fmax=0.005, relax_cell=True, optimizer="BFGS").atoms
result = compute_phonons(
    primitive,
    calc,
    supercell=2 if args.quick else 4,
    displacement=0.01,
    mesh=8 if args.quick else 24,
    npoints=11 if args.quick else 51,
    plot=f"{args.out}/cu_phonons.png",
)
print(f"lattice constant {primitive.cell.lengths()[0] * 2**0.5:.3f} A, path {result.path}")
print("Gamma (THz):", result.gamma_frequencies.round(3))
print("X (THz):    ", result.special_point_frequencies["X"].round(3))
print("L (THz):    ", result.special_point_frequencies["L"].round(3))
print(f"band structure + DOS: {result.plot}")
