"""Every example runs as written (reduced size via --quick) and writes what it announces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# example -> files it must write under its output folder
EXPECTED_OUTPUTS = {
    "quickstart": ["o_cu111.traj"],
    "relax_slab": ["o_pt111.traj", "o_pt111_relaxed.extxyz"],
    "md_nvt": ["cu_nvt.traj", "cu_nvt.csv", "cu_nvt.png"],
    "md_replicas": ["replica_000.traj", "replica_001.csv", "replica_001.png", "replica_000.summary.json"],
    "adsorption_screen": ["results.jsonl", "adsorption.csv", "adsorption.json", "adsorption.png"],
    "phonons": ["cu_phonons.png"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUTS))
def test_example_runs(name, tmp_path):
    env = dict(os.environ, ESCN_ASE_QUICK="1", MPLBACKEND="Agg")
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(tmp_path / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    for filename in EXPECTED_OUTPUTS[name]:
        assert (tmp_path / name / filename).exists(), filename
