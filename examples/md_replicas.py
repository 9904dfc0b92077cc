"""MD replicas stepped together: bulk Cu at four temperatures (Langevin NVT), one packed model call per
step for all of them, each replica with its own trajectory, thermo log, plot and summary.

Running the script again continues every replica from its last frame (up to --steps in total).

Run:  python examples/md_replicas.py           (add --quick for a smaller, faster version)
"""

from _example_args import parse_example_args
from ase.build import bulk

from escn_ase.workflows import default_calculator, run_md_batch

args = parse_example_args(__doc__, "md_replicas")
calc = default_calculator()

atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
if not args.quick:
    atoms = atoms.repeat((2, 2, 2))  # 32 atoms
temperatures = [300.0, 600.0] if args.quick else [300.0, 600.0, 900.0, 1200.0]
summaries = run_md_batch(
    atoms,
    calc,
    n_replicas=len(temperatures),
    steps=20 if args.quick else 250,
    trajectory_dir=args.out,                # replica_000.traj, replica_000.csv, replica_000.png, ...
    ensemble="nvt",
    temperature_K=temperatures,             # one per replica; seeds default to the replica index
    timestep_fs=2.0,
    friction_per_fs=0.02,
    interval=5,
)
print(f"{'target K':>9} {'mean K':>8} {'<V> A^3':>9} {'<p> GPa':>8}  trajectory")
for temperature, summary in zip(temperatures, summaries):
    print(f"{temperature:>9.0f} {summary.mean_temperature_K:>8.0f} {summary.mean_volume_A3:>9.2f} "
          f"{summary.mean_pressure_GPa:>8.2f}  {summary.trajectory}")
