"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def workflow_calc():
    """A conservative calculator for workflow tests: the default eSCN model once ``models/escn-emt-small.pt``
    exists (trained on EMT labels), ASE's EMT until then, so the tests switch over by themselves."""
    from escn_ase.registry import default_model_path

    if default_model_path().exists():
        from escn_ase import ESCNCalculator

        return ESCNCalculator()
    from ase.calculators.emt import EMT

    return EMT()
