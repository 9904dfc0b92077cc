"""Locating the reference fixtures (fairchem outputs) for parity tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    """``$ESCN_ASE_FIXTURES`` or ``../shared/fixtures`` next to the repository."""
    return Path(os.environ.get("ESCN_ASE_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


def small_fixture() -> Path:
    """The fairchem-escn-small fixture folder; skips the test when it is absent."""
    path = fixtures_dir() / "fairchem-escn-small"
    if not (path / "checkpoint.pt").exists():
        pytest.skip(
            f"reference fixture not found at {path} (set ESCN_ASE_FIXTURES to the folder holding fairchem-escn-small)"
        )
    return path
