"""Adsorption screening: O and H on Cu(111) and Pt(111), ontop and hollow sites, relaxed in
parallel (local process pool), with gas references, anomaly flags, tables and a bar chart.

Interrupt it and run it again: finished jobs are read from results.jsonl and not repeated.

Run:  python examples/adsorption_screen.py     (add --quick for a smaller, faster version;
                                                 --dask to run on a local Dask cluster;
                                                 --batched to relax all jobs together in this
                                                 process, many structures per model call: for a GPU)
"""

import sys

from _example_args import parse_example_args

from escn_ase.workflows import CalculatorFactory, screen_adsorption


def main() -> None:
    use_dask, batched = "--dask" in sys.argv, "--batched" in sys.argv
    for flag in ("--dask", "--batched"):
        if flag in sys.argv:
            sys.argv.remove(flag)
    args = parse_example_args(__doc__, "adsorption_screen")
    # Workers build their own calculator from this picklable recipe (None: the default model).
    factory = CalculatorFactory(None)
    settings = dict(
        surfaces=["Cu(111)"] if args.quick else ["Cu(111)", "Pt(111)"],
        adsorbates=["O"] if args.quick else ["O", "H"],
        calculator=factory,
        output_dir=args.out,
        site_types=("ontop", "hollow"),
        max_sites_per_type=1,
        layers=3,
        size=(1, 1) if args.quick else (2, 2),
        fix_bottom_layers=1,
        fmax=0.05,
        steps=200,
    )
    if use_dask:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            result = screen_adsorption(executor=client, **settings)
    elif batched:
        result = screen_adsorption(mode="batched", **settings)  # LBFGS, one packed graph per step
    else:
        result = screen_adsorption(n_workers=0 if args.quick else 2, **settings)
    for name, formula in result.references.items():
        print(f"{name}: E_ads = {formula}")
    for minimum in result.minima:
        note = " (all sites flagged)" if minimum["all_sites_flagged"] else ""
        print(
            f"{minimum['surface']:>8} {minimum['adsorbate']:>3}: lowest E_ads = {minimum['adsorption_energy']:.3f} eV "
            f"at {minimum['site']}{note}"
        )
    print(f"jobs: {result.n_jobs}, done before: {result.n_done_before}, run now: {result.n_run}")
    print("files:", ", ".join(f"{k}={v}" for k, v in result.files.items()))


if __name__ == "__main__":  # the process pool re-imports this file in its workers
    main()
