"""Wall time of each example (full size) and of the test suite, with the machine they ran on.

    python benchmarks/bench_examples.py [--suite] [--threads N]

Runs ``examples/*.py`` one after another as a user would (``python examples/NAME.py --out TMP``), each
in a fresh process, and prints a table of seconds per example; ``--suite`` also times the README's
test command. ``--threads N`` sets ``OMP_NUM_THREADS`` for the children (default: torch's own choice).
The numbers in README's "Examples" section come from this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

from _common import REPO

EXAMPLES = ("quickstart", "relax_slab", "md_nvt", "md_replicas", "phonons", "adsorption_screen")


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _run(command: list[str], environment: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=environment, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="store_true", help="also time `python -m pytest -q`")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    environment = dict(os.environ, MPLBACKEND="Agg")
    if args.threads:
        environment["OMP_NUM_THREADS"] = str(args.threads)
    print(f"# {_cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"OMP_NUM_THREADS={environment.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.1f}")
    print("| run | seconds |\n|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in EXAMPLES:
            seconds = _run([sys.executable, f"examples/{name}.py", "--out", os.path.join(folder, name)], environment)
            print(f"| examples/{name}.py | {seconds:.0f} |", flush=True)
    if args.suite:
        seconds = _run([sys.executable, "-m", "pytest", "-q", "-x"], environment)
        print(f"| python -m pytest -q | {seconds:.0f} |")


if __name__ == "__main__":
    main()
