"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def workflow_calc():
    """The default eSCN model (conservative, trained on EMT labels); a missing model file is an error."""
    from escn_ase import ESCNCalculator

    return ESCNCalculator()
