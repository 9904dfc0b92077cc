"""Locating the reference fixtures (fairchem-core 1.10 checkpoints and outputs) for parity tests.

The fixtures live in the repository, ``tests/fixtures/`` (written by ``tests/fixtures/make_fixtures.py``,
see ``tests/fixtures/README.md``); ``$ESCN_ASE_FIXTURES`` points the tests at another folder holding the
same fixture folders. A missing fixture is an error, never a skip: parity is not optional.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_REPO_FIXTURES = REPO_ROOT / "tests" / "fixtures"

# Every fixture folder the parity tests check (tests/test_parity.py runs each of them).
PARITY_FIXTURES = (
    "fairchem-escn-small",  # L3-M2, 3 layers, 32 channels, cutoff 6: the model most tests use
    "fairchem-escn-L4-M2",  # the published L4-M2 setting at small width
    "fairchem-escn-L6-M3",  # the published L6-M3 setting at small width
    "fairchem-escn-L2-M2",  # mmax = lmax
)
FIXTURE_FILES = (
    "checkpoint.pt",
    "checkpoint_legacy_ocp_layout.pt",
    "structures.extxyz",
    "references.json",
    "rotation_check.json",
)


def fixtures_dir() -> Path:
    """``$ESCN_ASE_FIXTURES`` or ``tests/fixtures`` in the repository."""
    override = os.environ.get("ESCN_ASE_FIXTURES")
    return Path(override) if override else IN_REPO_FIXTURES


def fixture(name: str) -> Path:
    """The folder of fixture ``name``; raises ``FileNotFoundError`` (naming what is missing) if incomplete."""
    path = fixtures_dir() / name
    missing = [file for file in FIXTURE_FILES if not (path / file).is_file()]
    if missing:
        where = "$ESCN_ASE_FIXTURES" if os.environ.get("ESCN_ASE_FIXTURES") else "the repository"
        raise FileNotFoundError(
            f"reference fixture {name!r} is incomplete at {path} (from {where}): missing {', '.join(missing)}. "
            "The fixtures are part of the repository (tests/fixtures/); restore them from git, or regenerate them "
            "as tests/fixtures/README.md says (tests/fixtures/make_fixtures.py in the reference venv)"
        )
    return path


def small_fixture() -> Path:
    """The fairchem-escn-small fixture folder (L3-M2, 3 layers, 32 channels, cutoff 6, max_neighbors 20)."""
    return fixture("fairchem-escn-small")
