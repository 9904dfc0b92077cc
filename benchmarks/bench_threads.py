"""Calculator calls with ``threads=1`` against torch's default threads, paired, on a busy or a quiet host.

    python benchmarks/bench_threads.py [--rounds 5] [--calls 10] [--load N]

Each round times ``--calls`` energy+forces(+stress) calls of the default model on a 98-atom slab with
``ESCNCalculator(threads=1)`` and with the default (``threads=None``: torch's own setting, all cores),
alternating which goes first, in one process. ``--load N`` starts N busy processes first (each a
single-threaded loop of matrix products), as another job on a shared machine would be; without it the
host's own load is whatever else runs. Prints a table: ms per call for each setting and the ratio
default / threads=1 per round, with the median and range.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np
from _common import REPO  # noqa: F401  (puts the repository on sys.path)
from ase.build import add_adsorbate, fcc111

from escn_ase import ESCNCalculator


def _busy(stop) -> None:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def _slab():
    atoms = fcc111("Cu", (4, 4, 6), vacuum=8.0, periodic=True)
    add_adsorbate(atoms, "O", 1.2, "fcc")
    add_adsorbate(atoms, "O", 1.2, "hcp")
    atoms.rattle(0.03, seed=0)
    return atoms


def _time(calc: ESCNCalculator, atoms, calls: int) -> float:
    times = []
    for k in range(calls + 1):
        work = atoms.copy()
        work.positions[0, 0] += 1e-6 * k  # a new structure every call
        work.calc = calc
        start = time.perf_counter()
        work.get_forces()
        work.get_stress()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times[1:]))  # the first call warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--load", type=int, default=0, help="busy single-threaded processes to start first")
    args = parser.parse_args()
    import torch

    stop = multiprocessing.Event()
    workers = [multiprocessing.Process(target=_busy, args=(stop,), daemon=True) for _ in range(args.load)]
    for worker in workers:
        worker.start()
    try:
        atoms = _slab()
        calcs = {"threads=1": ESCNCalculator(device="cpu", threads=1), "default": ESCNCalculator(device="cpu")}
        print(f"# {len(atoms)} atoms, default model, float32; torch default threads {torch.get_num_threads()}, "
              f"{os.cpu_count()} CPUs, {args.load} busy process(es) started by this script; load average "
              f"{os.getloadavg()[0]:.1f}")
        print("| round | threads=1 (ms/call) | default threads (ms/call) | default / threads=1 |")
        print("|---|---|---|---|")
        ratios = []
        for round_index in range(args.rounds):
            order = ["threads=1", "default"] if round_index % 2 == 0 else ["default", "threads=1"]
            result = {name: _time(calcs[name], atoms, args.calls) for name in order}
            ratios.append(result["default"] / result["threads=1"])
            print(f"| {round_index + 1} | {result['threads=1']:.0f} | {result['default']:.0f} | {ratios[-1]:.2f} |",
                  flush=True)
        print(f"\nmedian default / threads=1: {np.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}); "
              "above 1 means threads=1 is faster")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=5)


if __name__ == "__main__":
    main()
