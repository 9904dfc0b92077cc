"""NVT molecular dynamics of bulk Cu at 300 K (Langevin thermostat) with a thermo log and a plot.

Running the script again continues the trajectory from its last frame (up to --steps in total).

Run:  python examples/md_nvt.py                (add --quick for a smaller, faster version)
"""

import json

from _example_args import parse_example_args
from ase.build import bulk

from escn_ase.workflows import default_calculator, run_md

args = parse_example_args(__doc__, "md_nvt")
calc = default_calculator()

atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
if not args.quick:
    atoms = atoms.repeat((2, 2, 2))  # 32 atoms
summary = run_md(
    atoms,
    calc,
    ensemble="nvt",
    temperature_K=300.0,
    timestep_fs=2.0,
    steps=20 if args.quick else 250,
    interval=5,
    friction_per_fs=0.02,
    trajectory=f"{args.out}/cu_nvt.traj",
    seed=1,
)
print(json.dumps(summary.to_dict(), indent=2))
print(f"plot of energies and temperature: {summary.plot}")
