"""Time and peak memory of one energy+forces(+stress) evaluation against the number of atoms.

    python benchmarks/bench_scaling.py [--quick] [--threads 2] [--sizes 100 500 1000 2000 5000 10000]
                                       [--memory-fraction 0.8] [--timeout 1800] [--device cpu]
                                       [--keep-freed-memory]

Structures: rattled (0.05 A) fcc Cu supercells of the cubic cell (a = 3.61 A) with about 100, 500,
1000, 2000, 5000 and 10000 atoms (``--quick`` stops at about 1000).  Each size runs in a fresh
process so that its peak RSS (``resource.getrusage(...).ru_maxrss``) is its own; the process first
evaluates a 4-atom cell to get one-off initialisation out of the way, then builds the graph (timed
on its own) and times one ``calc.calculate`` (energy, forces, and stress for conservative models).

Columns: atoms, edges, graph seconds, evaluation seconds, microseconds per edge, peak RSS of the
process, RSS before the evaluation (model loaded, warmed up), and escn_ase's own memory estimate
(``escn_ase.memory.estimate_memory``, what the calculator checks before allocating).  A size whose
estimate exceeds ``--memory-fraction`` of the available memory is refused by the calculator with
``StructureTooLargeError``: its message is printed instead of numbers.  A process killed by the
system (out of memory) or slower than ``--timeout`` is reported as such.

Model: the default model (``models/escn-emt-small.pt``) if present, else a random conservative model
of ``configs/default_model.yaml``'s architecture, else a random small conservative model
(``_common.SMALL_CONSERVATIVE``); the choice is printed.  Not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import config_summary, machine_line, markdown_table, speed_model_checkpoint

SIZES = (100, 500, 1000, 2000, 5000, 10000)
LATTICE_CONSTANT = 3.61


def copper_supercell(target_atoms: int, seed: int = 0):
    """Rattled fcc Cu: the cubic 4-atom cell repeated n x n x m times, n*n*m*4 as close to the target as can be."""
    from ase.build import bulk

    best = min(
        ((n, n, m) for n in range(1, 40) for m in (n - 1, n, n + 1) if m >= 1),
        key=lambda reps: abs(4 * reps[0] * reps[1] * reps[2] - target_atoms),
    )
    atoms = bulk("Cu", "fcc", a=LATTICE_CONSTANT, cubic=True).repeat(best)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def worker(checkpoint: str, target_atoms: int, device: str, memory_fraction: float, keep_freed: bool) -> dict:
    """One size, in this (fresh) process. Returns the row as a dict."""
    from ase.calculators.calculator import all_changes

    from escn_ase import ESCNCalculator, StructureTooLargeError
    from escn_ase.memory import estimate_memory, keep_freed_memory

    if keep_freed:
        keep_freed_memory()

    calc = ESCNCalculator(checkpoint, device=device)
    calc.calculate(copper_supercell(4), ["energy", "forces"], all_changes)  # one-off initialisation
    calc.set(memory_fraction=memory_fraction)
    atoms = copper_supercell(target_atoms)
    start = time.perf_counter()
    batch = calc.prepare([atoms])
    graph_seconds = time.perf_counter() - start
    estimate = estimate_memory(calc.config, batch.n_atoms, batch.n_edges, calc.dtype, keeps_graph=calc.conservative)
    row = dict(atoms=len(atoms), edges=batch.n_edges, graph_s=graph_seconds, rss_before_gb=_peak_rss_gb(),
               estimate_gb=estimate.total(None) / 2**30)
    del batch
    try:
        start = time.perf_counter()
        calc.calculate(atoms, ["energy", "forces"] + (["stress"] if calc.conservative else []), all_changes)
        if calc.device.type == "cuda":
            torch.cuda.synchronize()
        row["seconds"] = time.perf_counter() - start
    except StructureTooLargeError as error:
        row["error"] = f"StructureTooLargeError: {error}"
    row["peak_rss_gb"] = _peak_rss_gb()
    if calc.device.type == "cuda":
        row["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def run_size(checkpoint: Path, target: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", str(checkpoint), str(target), "--threads", str(args.threads),
               "--device", args.device, "--memory-fraction", str(args.memory_fraction)]
    command += ["--keep-freed-memory"] if args.keep_freed_memory else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return dict(target=target, error=f"timed out after {args.timeout} s")
    if done.returncode < 0:
        return dict(target=target, error=f"killed by signal {-done.returncode} (out of memory?)")
    if done.returncode != 0:
        return dict(target=target, error="worker failed: " + done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes up to about 1000 atoms")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--memory-fraction", type=float, default=0.8,
                        help="share of the available memory the calculator may plan to use")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="call escn_ase.memory.keep_freed_memory() in each worker (glibc: reuse freed memory)")
    parser.add_argument("--worker", nargs=2, metavar=("CHECKPOINT", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.device, args.memory_fraction,
                                args.keep_freed_memory)))
        return

    sizes = args.sizes or [s for s in SIZES if not args.quick or s <= 1000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, origin = speed_model_checkpoint(Path(tmp))
        from escn_ase import load_checkpoint

        config = load_checkpoint(checkpoint).config
        for target in sizes:
            result = run_size(checkpoint, target, args)
            print(json.dumps(result), file=sys.stderr)
            if "seconds" in result:
                rows.append([result["atoms"], result["edges"], f"{result['graph_s']:.2f}", f"{result['seconds']:.2f}",
                             f"{1e6 * result['seconds'] / max(result['edges'], 1):.0f}",
                             f"{result['peak_rss_gb']:.2f}", f"{result['rss_before_gb']:.2f}",
                             f"{result['estimate_gb']:.2f}"]
                            + ([f"{result['peak_gpu_gb']:.2f}"] if "peak_gpu_gb" in result else []))
            else:
                rows.append([result.get("atoms", f"~{target}"), result.get("edges", "-"), "-", "-", "-", "-", "-",
                             f"{result['estimate_gb']:.2f}" if "estimate_gb" in result else "-"]
                            + (["-"] if args.device != "cpu" else []) + [result["error"]])

    print(machine_line(args.threads, args.device))
    print(f"# model: {origin}; {config_summary(config)}")
    print(f"# one evaluation per size in a fresh process, float32, {args.device}, "
          f"memory fraction {args.memory_fraction}"
          + (", escn_ase.memory.keep_freed_memory() on" if args.keep_freed_memory else ""))
    print()
    header = ["atoms", "edges", "graph s", "evaluation s", "us/edge", "peak RSS GB", "RSS before GB",
              "estimate GB (unchunked)"] + (["peak GPU GB"] if args.device != "cpu" else [])
    if any(len(r) > len(header) for r in rows):
        header.append("refused / failed")
        rows = [r + [""] * (len(header) - len(r)) for r in rows]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
