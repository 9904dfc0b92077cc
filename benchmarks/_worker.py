"""One timed case in a fresh process (so that peak RSS belongs to it alone). Prints one JSON line.

usage: _worker.py {escn|fairchem} CHECKPOINT STRUCTURE.extxyz REPEATS [THREADS]
Runs under this repository's Python (escn) or the reference venv's Python (fairchem).
"""

import json
import resource
import sys
import time

import numpy as np
import torch
from ase.calculators.calculator import all_changes
from ase.io import read


def main() -> None:
    impl, checkpoint, structure_file, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    atoms = read(structure_file)
    if impl == "escn":
        sys.path.insert(0, sys.argv[0].rsplit("/benchmarks/", 1)[0])
        from escn_ase import ESCNCalculator

        calc = ESCNCalculator(checkpoint, device="cpu")
        edges = calc.prepare([atoms]).n_edges
    else:
        from fairchem.core.common.relaxation.ase_utils import OCPCalculator

        calc = OCPCalculator(checkpoint_path=checkpoint, cpu=True, seed=0)
        edges = None
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats + 1):  # the first call is a warm-up
        start = time.perf_counter()
        calc.calculate(atoms, ["energy", "forces"], all_changes)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "ms_per_call": 1000 * float(np.median(times[1:])),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024,
        "edges": edges,
        "energy": float(calc.results["energy"]),
        "forces": np.asarray(calc.results["forces"], dtype=float).tolist(),
    }))


if __name__ == "__main__":
    main()
