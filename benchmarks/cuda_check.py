"""CUDA check and GPU timing of the calculator (run on a machine with a GPU).

    python benchmarks/cuda_check.py [--fixtures DIR] [--repeats 5]

1. Parity with the fairchem fixture on CUDA in float32 and float64 (same tolerances as the CPU tests:
   |dE| <= 1e-4 eV, max |dF| <= 3e-3 eV/A); exits non-zero when one fails.
2. Repeatability of consecutive CUDA calls (index_add on CUDA uses atomics, so float sums may differ
   in the last bits; the spread is printed).
3. ms per energy+forces call and peak GPU memory at the published L4-M2-Lay12 and L6-M3-Lay20 configurations
   (random weights) for the 66-atom and 198-atom Cu(111)+CO slabs, float32.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import REPO, published_config, random_model, structure
from ase.calculators.calculator import all_changes
from ase.io import read

sys.path.insert(0, str(REPO))
from escn_ase import ESCNCalculator, save_checkpoint  # noqa: E402


def parity(fixtures: Path) -> bool:
    ok = True
    frames = read(fixtures / "fairchem-escn-small" / "structures.extxyz", ":")
    print("| checkpoint | dtype | max abs dE (eV) | max abs dF (eV/A) |\n|---|---|---|---|")
    for name in ("checkpoint.pt", "checkpoint_legacy_ocp_layout.pt"):
        for dtype in ("float32", "float64"):
            calc = ESCNCalculator(fixtures / "fairchem-escn-small" / name, device="cuda", dtype=dtype)
            d_e = d_f = 0.0
            for atoms in frames:
                result = calc.evaluate([atoms])[0]
                d_e = max(d_e, abs(result["energy"] - atoms.info["ref_energy"]))
                d_f = max(d_f, float(np.abs(result["forces"] - atoms.arrays["ref_forces"]).max()))
            ok &= d_e <= 1e-4 and d_f <= 3e-3
            print(f"| {name} | {dtype} | {d_e:.1e} | {d_f:.1e} |")
    calc = ESCNCalculator(fixtures / "fairchem-escn-small" / "checkpoint.pt", device="cuda")
    runs = [calc.evaluate([frames[1]])[0] for _ in range(5)]
    spread_e = max(abs(r["energy"] - runs[0]["energy"]) for r in runs)
    spread_f = max(float(np.abs(r["forces"] - runs[0]["forces"]).max()) for r in runs)
    print(f"\nrepeat spread on CUDA over 5 calls: energy {spread_e:.1e} eV, forces {spread_f:.1e} eV/A")
    return ok


def timing(repeats: int, tmp: Path) -> None:
    print(
        "\n| config | structure | atoms | edges | ms/call (CUDA, float32) | peak GPU memory MB |"
        "\n|---|---|---|---|---|---|"
    )
    for config_name in ("L4-M2-Lay12", "L6-M3-Lay20"):
        path = tmp / f"{config_name}.pt"
        save_checkpoint(path, random_model(published_config(config_name)), elements=list(range(1, 90)))
        calc = ESCNCalculator(path, device="cuda")
        for structure_name in ("cu111_co_66", "cu111_co_198"):
            atoms = structure(structure_name)
            edges = calc.prepare([atoms]).n_edges
            calc.calculate(atoms, ["energy", "forces"], all_changes)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                calc.calculate(atoms, ["energy", "forces"], all_changes)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            peak = torch.cuda.max_memory_allocated() / 2**20
            print(
                f"| {config_name} | {structure_name} | {len(atoms)} | {edges} | "
                f"{1000 * np.median(times):.1f} | {peak:.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=REPO / "tests" / "fixtures")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    logging.getLogger("escn_ase").setLevel(logging.ERROR)
    if not torch.cuda.is_available():
        sys.exit("CUDA is not available here")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}\n")
    ok = parity(args.fixtures)
    timing(args.repeats, args.tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
