"""compute_phonons(): phonopy path against ASE's own finite-difference phonons, workflow calc vs EMT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from escn_ase.workflows.phonons import compute_phonons, supercell_matrix

THZ_PER_EV = 1.0 / 4.135667696e-3  # frequency (THz) of a phonon of energy 1 eV: 1 / h


@pytest.fixture(scope="module")
def copper():
    return bulk("Cu", "fcc", a=3.59)  # close to EMT's equilibrium lattice constant


@pytest.fixture(scope="module")
def emt_phonons(copper, tmp_path_factory):
    plot = tmp_path_factory.mktemp("phonons") / "emt.png"
    return compute_phonons(copper, EMT(), supercell=3, mesh=8, npoints=11, plot=plot)


def test_phonopy_path_agrees_with_ase_phonons(copper, emt_phonons, tmp_path):
    """Units, q-point convention and force handling: compare with ase.phonons.Phonons on the same model."""
    from ase.phonons import Phonons

    reference = Phonons(copper, EMT(), supercell=(3, 3, 3), delta=0.01, name=str(tmp_path / "ase-phonons"))
    reference.run()
    reference.read(acoustic=True)
    for label in ("X", "L"):
        q = emt_phonons.special_points[label]
        expected = np.sort(reference.band_structure([q])[0]) * THZ_PER_EV
        np.testing.assert_allclose(np.sort(emt_phonons.special_point_frequencies[label]), expected, rtol=0.02)
    assert emt_phonons.path == "GXWKGLUWLK,UX"
    assert emt_phonons.tick_labels[:2] == ["\u0393", "X"] and "K|U" in emt_phonons.tick_labels
    assert emt_phonons.plot and Path(emt_phonons.plot).read_bytes()[:4] == b"\x89PNG"
    assert emt_phonons.dos is not None and emt_phonons.dos.min() >= 0


def test_workflow_calculator_reproduces_emt_phonons(copper, emt_phonons, workflow_calc):
    """The default model is trained on EMT labels: its phonons should match EMT's within ~15 %.
    (While the default model is absent, workflow_calc is EMT and this is exact.)"""
    result = compute_phonons(copper, workflow_calc, supercell=3, mesh=0, npoints=5, plot=None)
    assert np.abs(result.gamma_frequencies).max() < 0.1  # acoustic modes at Gamma
    for label in ("X", "L"):
        np.testing.assert_allclose(
            np.sort(result.special_point_frequencies[label]),
            np.sort(emt_phonons.special_point_frequencies[label]),
            rtol=0.15,
        )
    assert result.min_frequency > -0.1  # no imaginary modes in a stable crystal


def test_supercell_matrix_forms():
    np.testing.assert_array_equal(supercell_matrix(2), 2 * np.eye(3, dtype=int))
    np.testing.assert_array_equal(supercell_matrix((1, 2, 3)), np.diag([1, 2, 3]))
    with pytest.raises(ValueError, match="singular"):
        supercell_matrix([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="integer 3x3"):
        supercell_matrix((1, 2))


def test_bad_path_and_slab_are_refused(copper):
    with pytest.raises(ValueError, match="does not have"):
        compute_phonons(copper, EMT(), supercell=1, path="GZ", mesh=0, plot=None)
    slab = copper.copy()
    slab.pbc = (True, True, False)
    with pytest.raises(ValueError, match="periodic in all three"):
        compute_phonons(slab, EMT(), plot=None)
