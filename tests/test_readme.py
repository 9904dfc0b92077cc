"""README code blocks run as pasted: every python block as a script in a fresh folder, every
``escn-ase`` command line of the bash blocks through the real argument parser.

The published checkpoint a block names is registered to a local stand-in file (a small direct-force
model written here) through ``sitecustomize``, so the block's text is run unchanged and nothing is
downloaded.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from escn_ase import ESCN, ESCNConfig, save_checkpoint
from escn_ase.cli import build_parser
from escn_ase.registry import list_models, sha256_of

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


PYTHON_BLOCKS = _blocks("python")


@pytest.fixture(scope="module")
def stand_in_site(tmp_path_factory) -> Path:
    """A folder with ``sitecustomize.py`` pointing every registered model at a small local checkpoint."""
    folder = tmp_path_factory.mktemp("site")
    torch.manual_seed(0)
    config = ESCNConfig(num_layers=1, lmax=2, mmax=1, sphere_channels=8, hidden_channels=8, edge_channels=8,
                        cutoff=5.0, max_neighbors=20, distance_resolution=0.2)  # direct forces, like OC20's
    checkpoint = folder / "stand_in.pt"
    save_checkpoint(checkpoint, ESCN(config), elements=list(range(1, 84)))
    lines = ["from escn_ase import registry"]
    for entry in list_models():
        lines.append(
            f"registry.register_model({entry.name!r}, {checkpoint.as_uri()!r}, {sha256_of(checkpoint)!r}, "
            f"filename={entry.filename!r})"
        )
    (folder / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    return folder


def test_readme_has_python_blocks():
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs_as_pasted(index, tmp_path, stand_in_site):
    block = PYTHON_BLOCKS[index]
    script = tmp_path / "snippet.py"
    script.write_text(block)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(stand_in_site), os.environ.get("PYTHONPATH", "")]),
        "ESCN_ASE_CACHE": str(tmp_path / "cache"),
        "MPLBACKEND": "Agg",
    }
    run = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=environment, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, f"README python block {index} failed:\n{block}\n--- stderr ---\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr


def _cli_lines() -> list[str]:
    lines = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if command.startswith("escn-ase "):
                lines.append(command)
    return lines


@pytest.mark.parametrize("line", _cli_lines())
def test_documented_command_lines_parse(line):
    """Every option the README shows exists and takes the values shown (the command is parsed, not run)."""
    arguments = shlex.split(line)[1:]
    try:
        build_parser().parse_args(arguments)
    except SystemExit as exit_info:  # argparse exits on a bad option; --help/--version exit 0
        assert exit_info.code == 0, f"`{line}` does not parse"
