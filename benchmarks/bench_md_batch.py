"""MD replicas per second: ``run_md_batch`` (one packed graph per step) against ``run_md`` one replica at a time.

    python benchmarks/bench_md_batch.py [--replicas 8] [--steps 100] [--threads 2] [--repeats 1] [--device cpu]

Replicas of the 17-atom O on Cu(111) 2x2x4 slab (``ase.build.fcc111`` + ``add_adsorbate``), Langevin
NVT at 300-1000 K (one temperature per replica, seed = replica index), 1 fs, with the default
model, the frame interval 10 steps. Both routes run the same replicas with the same settings in
this one process; ``--repeats N`` times each route N times in the order batched, single, single,
batched, ... and reports the median. Also prints the largest position difference between a
replica run in the batch and the same replica run alone (packed versus single graphs: float
rounding only). Not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import config_summary, machine_line, markdown_table
from ase.build import add_adsorbate, fcc111
from ase.io import read

from escn_ase import ESCNCalculator
from escn_ase.workflows import run_md
from escn_ase.workflows.md_batch import run_md_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    slab = fcc111("Cu", (2, 2, 4), vacuum=7.0)
    add_adsorbate(slab, "O", 1.3, "fcc")
    temperatures = list(np.linspace(300.0, 1000.0, args.replicas))
    calc = ESCNCalculator(device=args.device)
    settings = dict(ensemble="nvt", timestep_fs=1.0, interval=10, plot=False)
    work = Path(tempfile.mkdtemp(prefix="bench_md_batch_"))

    def batched(tag: str) -> Path:
        directory = work / tag
        run_md_batch(slab, calc, n_replicas=args.replicas, steps=args.steps, trajectory_dir=directory,
                     temperature_K=temperatures, restart=False, progress=False, **settings)
        return directory

    def single(tag: str) -> Path:
        directory = work / tag
        directory.mkdir()
        for index, temperature in enumerate(temperatures):
            run_md(slab, calc, steps=args.steps, trajectory=directory / f"replica_{index:03d}.traj", seed=index,
                   temperature_K=temperature, restart=False, progress=False, **settings)
        return directory

    run_md(slab, calc, steps=3, trajectory=work / "warmup.traj", progress=False, plot=False)
    times: dict[str, list[float]] = {"batched": [], "single": []}
    for repeat in range(args.repeats):
        for route in ("batched", "single") if repeat % 2 == 0 else ("single", "batched"):
            began = time.perf_counter()
            (batched if route == "batched" else single)(f"{route}{repeat}")
            times[route].append(time.perf_counter() - began)
    seconds = {route: float(np.median(values)) for route, values in times.items()}
    largest = 0.0
    for index in range(args.replicas):
        a = read(work / "batched0" / f"replica_{index:03d}.traj", -1)
        b = read(work / "single0" / f"replica_{index:03d}.traj", -1)
        largest = max(largest, float(np.abs(a.positions - b.positions).max()))

    print(machine_line(args.threads, args.device))
    print(f"# model: default model {calc.checkpoint_path}; {config_summary(calc.config)}")
    print(f"# {args.replicas} replicas of O/Cu(111) 2x2x4 ({len(slab)} atoms), Langevin NVT "
          f"{temperatures[0]:.0f}-{temperatures[-1]:.0f} K, 1 fs, {args.steps} steps each, {args.device}")
    if args.repeats > 1:
        print(f"# median of {args.repeats} runs per route (batched, single, single, batched, ...): "
              + "; ".join(f"{route} " + ", ".join(f"{t:.1f}" for t in times[route]) + " s" for route in times))
    print()
    total = args.replicas * args.steps
    print(markdown_table(
        ["route", "replicas", "MD steps in all", "wall time s", "replica-steps/s"],
        [["run_md_batch (one packed graph per step)", args.replicas, total, f"{seconds['batched']:.1f}",
          f"{total / seconds['batched']:.1f}"],
         ["run_md, one replica at a time", args.replicas, total, f"{seconds['single']:.1f}",
          f"{total / seconds['single']:.1f}"]],
    ))
    print()
    print(f"speed-up of run_md_batch: {seconds['single'] / seconds['batched']:.2f}x")
    print(f"largest |r_batched - r_single| after {args.steps} steps: {largest:.1e} A")


if __name__ == "__main__":
    main()
