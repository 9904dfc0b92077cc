"""Direct-force calculators (published OC20 eSCN style): refused for stress-based work, warned for phonons."""

from __future__ import annotations

import pytest
from _reference import small_fixture
from ase.build import bulk

from escn_ase import ESCNCalculator
from escn_ase.workflows import is_direct_force
from escn_ase.workflows.md import run_md
from escn_ase.workflows.phonons import compute_phonons
from escn_ase.workflows.relax import relax


@pytest.fixture(scope="module")
def direct_calc():
    # keep_shell: ideal lattices have tied neighbour shells, which the default mode warns about
    return ESCNCalculator(str(small_fixture() / "checkpoint.pt"), neighbor_ties="keep_shell")


def test_direct_force_calculator_is_recognised(direct_calc):
    from ase.calculators.emt import EMT

    assert is_direct_force(direct_calc) and not is_direct_force(EMT())


def test_cell_relaxation_and_npt_are_refused(direct_calc, tmp_path):
    with pytest.raises(ValueError, match="predicts forces directly"):
        relax(bulk("Cu", "fcc", a=3.6), direct_calc, relax_cell=True)
    with pytest.raises(ValueError, match="predicts forces directly"):
        run_md(bulk("Cu", "fcc", a=3.6), direct_calc, ensemble="npt", trajectory=tmp_path / "npt.traj")


def test_phonons_warn_for_direct_forces(direct_calc):
    with pytest.warns(UserWarning, match="direct-force model"):
        result = compute_phonons(bulk("Cu", "fcc", a=3.6), direct_calc, supercell=1, mesh=0, npoints=3, plot=None)
    assert result.gamma_frequencies.shape == (3,)
