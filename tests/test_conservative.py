"""Conservative eSCN: forces and stress are derivatives of the energy; the energy is smooth at the cutoff."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from escn_ase import ESCN, ESCNCalculator, ESCNConfig, save_checkpoint

CUTOFF = 4.0


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    torch.manual_seed(11)
    config = ESCNConfig(
        num_layers=2,
        lmax=2,
        mmax=1,
        sphere_channels=8,
        hidden_channels=16,
        edge_channels=8,
        cutoff=CUTOFF,
        max_neighbors=None,
        num_sphere_samples=24,
        distance_resolution=0.1,
        forces="conservative",
        smooth_cutoff=True,
    )
    model = ESCN(config)
    with torch.no_grad():  # make the random network's energy vary visibly with geometry
        model.energy_scale.fill_(2e6)
        model.element_references[29] = -3.0
        model.element_references[8] = -1.0
    path = tmp_path_factory.mktemp("model") / "conservative.pt"
    save_checkpoint(path, model, elements=[8, 29, 78])
    return ESCNCalculator(path, device="cpu", dtype="float64")


@pytest.fixture()
def bulk_cuo():
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.symbols[1] = "O"
    atoms.rattle(0.1, seed=2)
    atoms.cell[1, 0] += 0.2
    return atoms


def test_properties_of_a_conservative_model(calc, bulk_cuo):
    assert calc.conservative and "stress" in calc.implemented_properties
    bulk_cuo.calc = calc
    energies = bulk_cuo.get_potential_energies()
    assert np.isclose(energies.sum(), bulk_cuo.get_potential_energy())
    assert bulk_cuo.get_stress().shape == (6,)
    assert abs(bulk_cuo.get_forces().sum(axis=0)).max() < 1e-10  # no net force


def test_forces_match_finite_differences(calc, bulk_cuo):
    bulk_cuo.calc = calc
    forces = bulk_cuo.get_forces()
    numerical = calculate_numerical_forces(bulk_cuo, eps=1e-4)
    assert np.abs(forces).max() > 1e-3
    assert np.abs(forces - numerical).max() < 1e-6


def test_stress_matches_finite_differences(calc, bulk_cuo):
    bulk_cuo.calc = calc
    stress = bulk_cuo.get_stress(voigt=True)
    numerical = calculate_numerical_stress(bulk_cuo, eps=1e-5, voigt=True)
    assert np.abs(stress).max() > 1e-4
    assert np.abs(stress - numerical).max() < 1e-7


def test_energy_and_forces_are_continuous_across_the_cutoff(calc):
    def energy_and_force(distance):
        atoms = Atoms("CuO", positions=[[0, 0, 0], [distance, 0.3, 0.2]])
        atoms.calc = calc
        return atoms.get_potential_energy(), atoms.get_forces()[1]

    radial = np.linalg.norm([1.0, 0.3 / CUTOFF, 0.2 / CUTOFF])  # distance grows ~ linearly with x
    inside_e, inside_f = energy_and_force(CUTOFF / radial * np.sqrt(1 - 0) - 1e-4)
    outside_e, outside_f = energy_and_force(CUTOFF + 0.01)
    far_e, _ = energy_and_force(CUTOFF + 2.0)
    assert outside_e == far_e  # beyond the cutoff the atoms do not interact at all
    assert abs(inside_e - outside_e) < 1e-6
    assert np.abs(inside_f).max() < 1e-3
    mid_e, _ = energy_and_force(CUTOFF / 2)
    assert abs(mid_e - outside_e) > 1e-4  # ... but they do interact inside


def test_supercell_energy_and_stress_are_extensive(calc, bulk_cuo):
    bulk_cuo.calc = calc
    energy, stress = bulk_cuo.get_potential_energy(), bulk_cuo.get_stress()
    supercell = bulk_cuo * (2, 2, 2)
    supercell.calc = calc
    assert abs(supercell.get_potential_energy() - 8 * energy) <= 1e-5 * abs(8 * energy)
    assert np.abs(supercell.get_stress() - stress).max() < 1e-8


def test_slab_has_forces_and_per_atom_energies(calc):
    slab = fcc111("Pt", size=(2, 2, 2), vacuum=5.0)
    slab.pbc = (True, True, False)
    slab.rattle(0.05, seed=3)
    slab.calc = calc
    forces = slab.get_forces()
    assert np.abs(forces - calculate_numerical_forces(slab, eps=1e-4)).max() < 1e-6
    assert "stress" not in calc.results  # not 3D periodic: no stress


def _same_model(calc, **settings) -> ESCNCalculator:
    return ESCNCalculator(calc.checkpoint_path, device="cpu", dtype="float64", **settings)


def test_checkpointed_layers_and_edge_chunks_give_the_same_forces_and_stress(calc, bulk_cuo):
    """Recomputing layers in the backward pass, or chunking edges under autograd, changes memory, not results."""
    atoms = bulk_cuo.repeat((2, 1, 1))
    reference = calc.evaluate([atoms], compute_stress=True)[0]
    for settings in (
        {"checkpoint_layers": True},
        {"edge_chunk_size": 29},
        {"edge_chunk_size": 29, "checkpoint_layers": True},
    ):
        other = _same_model(calc, **settings).evaluate([atoms], compute_stress=True)[0]
        assert abs(other["energy"] - reference["energy"]) < 1e-10, settings
        np.testing.assert_allclose(other["forces"], reference["forces"], atol=1e-10, err_msg=str(settings))
        np.testing.assert_allclose(other["stress"], reference["stress"], atol=1e-12, err_msg=str(settings))


def test_layers_are_checkpointed_only_when_the_graph_would_not_fit(calc, bulk_cuo, monkeypatch, caplog):
    import logging

    import escn_ase.calculator as calculator_module

    caplog.set_level(logging.INFO, logger="escn_ase")

    automatic = _same_model(calc)
    batch = automatic.prepare([bulk_cuo])
    estimate = automatic._memory_estimate(batch.n_atoms, batch.n_edges)
    all_layers, one_layer = estimate.total(), estimate.total(checkpoint_layers=True)
    assert one_layer < all_layers
    plans = []
    for available in (2 * all_layers, (all_layers + one_layer) / 2, one_layer / 2):
        monkeypatch.setattr(calculator_module, "available_memory", lambda device, a=available: int(a / 0.8))
        try:
            plans.append(automatic._plan(batch)[1])
        except calculator_module.StructureTooLargeError as error:
            assert "even recomputing layers in the backward pass" in str(error)
            plans.append("refused")
    assert plans == [False, True, "refused"]
    assert any("recomputing each layer" in record.getMessage() for record in caplog.records)
    monkeypatch.setattr(calculator_module, "available_memory", lambda device: int(2 * all_layers / 0.8))
    assert _same_model(calc, checkpoint_layers=True)._plan(batch)[1] is True
    assert _same_model(calc, checkpoint_layers=False)._plan(batch)[1] is False
