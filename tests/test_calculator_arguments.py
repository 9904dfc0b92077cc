"""ESCNCalculator's keyword arguments: the spellings of fairchem and MACE, refusals, ASE parameters, threads."""

from __future__ import annotations

import pytest
import torch
from ase.build import molecule
from ase.io import Trajectory, read

from escn_ase import ESCN, ESCNCalculator, ESCNConfig, save_checkpoint
from escn_ase.registry import default_model_path


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = ESCNConfig(num_layers=1, lmax=2, mmax=1, sphere_channels=8, hidden_channels=8, edge_channels=8,
                        cutoff=4.0, max_neighbors=None, distance_resolution=0.2, forces="conservative",
                        smooth_cutoff=True, activation="gate")
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    save_checkpoint(path, ESCN(config), elements=[1, 8])
    return path


def _water():
    atoms = molecule("H2O")
    atoms.center(vacuum=4.0)
    return atoms


def _energy(calc) -> float:
    atoms = _water()
    atoms.calc = calc
    return atoms.get_potential_energy()


@pytest.mark.parametrize("spelling", ["checkpoint_path", "model", "model_path"])
def test_fairchem_and_mace_spellings_load_the_given_checkpoint(small_checkpoint, spelling):
    calc = ESCNCalculator(**{spelling: str(small_checkpoint)}, device="cpu")
    assert calc.checkpoint_path == str(small_checkpoint)
    assert calc.config.sphere_channels == 8  # not the default model
    assert _energy(calc) == pytest.approx(_energy(ESCNCalculator(small_checkpoint, device="cpu")), abs=1e-6)


def test_default_dtype_and_cpu_spellings():
    calc = ESCNCalculator(default_dtype="float64", cpu=True)
    assert calc.dtype == torch.float64 and calc.device.type == "cpu"
    assert calc.parameters["dtype"] == "float64" and calc.parameters["device"] == "cpu"


def test_unknown_keywords_are_refused_by_name():
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        ESCNCalculator(foo=1)
    with pytest.raises(TypeError, match="'chekpoint'; did you mean 'checkpoint'"):
        ESCNCalculator(chekpoint="x.pt")


def test_two_spellings_with_different_values_are_refused(small_checkpoint):
    with pytest.raises(ValueError, match="two values for one setting"):
        ESCNCalculator(small_checkpoint, checkpoint_path="other.pt")
    with pytest.raises(ValueError, match="two values for one setting"):
        ESCNCalculator(dtype="float32", default_dtype="float64")
    with pytest.raises(ValueError, match="contradict"):
        ESCNCalculator(cpu=True, device="cuda")
    with pytest.raises(TypeError, match="cpu must be True or False"):
        ESCNCalculator(cpu="yes")


def test_parameters_and_trajectories_record_what_produced_the_numbers(tmp_path):
    calc = ESCNCalculator(device="cpu", neighbor_ties="keep_shell")
    recorded = calc.todict()
    assert recorded["checkpoint"] == str(default_model_path().resolve())
    assert recorded["device"] == "cpu" and recorded["dtype"] == "float32"  # included although a default
    assert recorded["neighbor_ties"] == "keep_shell"
    atoms = _water()
    atoms.calc = calc
    atoms.get_potential_energy()
    with Trajectory(tmp_path / "run.traj", "w") as trajectory:
        trajectory.write(atoms)
    stored = read(tmp_path / "run.traj").calc.parameters
    assert stored["checkpoint"] == recorded["checkpoint"] and stored["dtype"] == "float32"


def test_set_refuses_load_time_settings_and_applies_the_others():
    calc = ESCNCalculator(device="cpu")
    with pytest.raises(ValueError, match="dtype cannot be changed"):
        calc.set(dtype="float64")
    with pytest.raises(TypeError, match="unexpected keyword argument 'fmax'"):
        calc.set(fmax=0.1)
    calc.set(memory_fraction=0.5, threads=1)
    assert calc.memory_fraction == 0.5 and calc.threads == 1
    with pytest.raises(ValueError, match="memory_fraction"):
        calc.set(memory_fraction=2.0)
    assert calc.memory_fraction == 0.5  # a refused value changes nothing
    with pytest.raises(ValueError, match="neighbor_ties"):
        calc.set(neighbor_ties="nearest")


def test_threads_apply_during_evaluation_and_are_restored(monkeypatch):
    seen = []
    calc = ESCNCalculator(device="cpu", threads=1)
    original_predict = calc.model.predict

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original_predict(*args, **kwargs)

    monkeypatch.setattr(calc.model, "predict", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _energy(calc)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        ESCNCalculator(threads=0)


@pytest.mark.parametrize("pbc", [False, (True, True, False)], ids=["molecule", "slab"])
def test_stress_of_a_non_periodic_structure_says_why(pbc):
    from ase.calculators.calculator import PropertyNotImplementedError

    atoms = _water()
    atoms.pbc = pbc
    atoms.calc = ESCNCalculator(device="cpu")
    with pytest.raises(PropertyNotImplementedError, match="3D-periodic cells only: this structure has pbc="):
        atoms.get_stress()
    assert atoms.get_forces().shape == (3, 3)  # everything else works
