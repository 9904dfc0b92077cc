"""ms per energy+forces call, peak memory and edges: escn_ase vs the reference fairchem-core 1.10.

    python benchmarks/bench_calculator.py [--configs L4-M2-Lay12 L6-M3-Lay20] [--structures cu111_co_66]
                                          [--repeats 3] [--rounds 1] [--no-reference]

Random weights built from the published configurations, float32, CPU, 2 threads. Each case runs in
its own process so peak RSS is its own. The reference runs in the venv made by
benchmarks/make_reference_env.sh (skipped with a message when absent); its rows and the
max |dE|, |dF| between the two implementations come from the same run of this script.
``--rounds N`` alternates the two processes N times and reports median times and the median
(min-max) of the per-round speed-ups: on a shared machine whose speed drifts by tens of percent
within minutes, a paired ratio is steadier than two separately measured times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    PUBLISHED,
    REPO,
    fixture_checkpoint,
    published_config,
    random_model,
    reference_python,
    save_fairchem_layout,
    structure,
)
from ase.io import write

from escn_ase import save_checkpoint


def run_case(python: Path, impl: str, checkpoint: Path, xyz: Path, repeats: int) -> dict:
    command = [str(python), str(REPO / "benchmarks" / "_worker.py"), impl, str(checkpoint), str(xyz), str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["L4-M2-Lay12", "L6-M3-Lay20"], choices=sorted(PUBLISHED))
    parser.add_argument("--structures", nargs="+", default=["cu111_co_66"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate escn_ase and reference processes this many times; report medians "
        "and the median of the per-round speed-ups (robust to a machine whose speed drifts)",
    )
    args = parser.parse_args()

    ref_python = None if args.no_reference else reference_python()
    template = fixture_checkpoint()
    if not args.no_reference and (ref_python is None or template is None):
        print("# reference skipped: run benchmarks/make_reference_env.sh (and have shared/fixtures) to compare")
        ref_python = None

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for config_name in args.configs:
            model = random_model(published_config(config_name))
            ours = tmp / f"{config_name}.pt"
            save_checkpoint(ours, model, elements=list(range(1, 90)))
            theirs = tmp / f"{config_name}-fairchem.pt"
            if ref_python is not None:
                save_fairchem_layout(model, theirs, template)
            for structure_name in args.structures:
                atoms = structure(structure_name)
                xyz = tmp / f"{structure_name}.extxyz"
                write(xyz, atoms)
                mine_runs, ref_runs = [], []
                for _ in range(args.rounds):
                    mine_runs.append(run_case(Path(sys.executable), "escn", ours, xyz, args.repeats))
                    if ref_python is not None:
                        ref_runs.append(run_case(ref_python, "fairchem", theirs, xyz, args.repeats))
                mine = mine_runs[-1]
                row = dict(
                    config=config_name,
                    structure=structure_name,
                    atoms=len(atoms),
                    edges=mine["edges"],
                    ms=float(np.median([r["ms_per_call"] for r in mine_runs])),
                    rss=max(r["peak_rss_mb"] for r in mine_runs),
                )
                if ref_python is not None:
                    ref = ref_runs[-1]
                    ratios = [r["ms_per_call"] / m["ms_per_call"] for m, r in zip(mine_runs, ref_runs)]
                    row.update(
                        ref_ms=float(np.median([r["ms_per_call"] for r in ref_runs])),
                        ref_rss=max(r["peak_rss_mb"] for r in ref_runs),
                        speedup=float(np.median(ratios)),
                        speedup_min=min(ratios),
                        speedup_max=max(ratios),
                        dE=abs(mine["energy"] - ref["energy"]),
                        dF=float(np.abs(np.array(mine["forces"]) - np.array(ref["forces"])).max()),
                    )
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)

    header = "| config | structure | atoms | edges | escn_ase ms/call | escn_ase peak RSS MB |"
    if ref_python is not None:
        header += (
            " fairchem ms/call | fairchem peak RSS MB | speed-up | memory ratio | max abs dE eV | max abs dF eV/A |"
        )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        line = f"| {r['config']} | {r['structure']} | {r['atoms']} | {r['edges']} | {r['ms']:.0f} | {r['rss']:.0f} |"
        if "ref_ms" in r:
            spread = f" ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})" if args.rounds > 1 else ""
            line += (
                f" {r['ref_ms']:.0f} | {r['ref_rss']:.0f} | {r['speedup']:.2f}x{spread} |"
                f" {r['rss'] / r['ref_rss']:.2f} | {r['dE']:.1e} | {r['dF']:.1e} |"
            )
        print(line)


if __name__ == "__main__":
    main()
