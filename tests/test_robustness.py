"""Inputs that used to crash, hang or give silently wrong numbers: each now gives the right result or a
clear error before any work."""

import threading
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from escn_ase import ESCNCalculator
from escn_ase.errors import InvalidStructureError


@pytest.fixture(scope="module")
def calc():
    return ESCNCalculator(device="cpu")


@pytest.fixture(scope="module")
def calc64():
    return ESCNCalculator(device="cpu", dtype="float64")


def test_parallel_periodic_cell_vectors_are_refused(calc):
    """Ase's complete_cell turned these into a NaN row and the neighbour search died with SIGFPE."""
    atoms = Atoms("Cu", cell=[[3, 0, 0], [6, 0, 0], [0, 0, 0]], pbc=(True, True, False))
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match="cell vectors 0 and 1 are parallel"):
        atoms.get_potential_energy()


@pytest.mark.parametrize("height", [1e-3, 1e-5, 1e-7])
def test_nearly_degenerate_periodic_cell_is_refused_at_once(calc, height):
    """These passed the determinant check and the neighbour search then ran for minutes."""
    atoms = Atoms("Cu", cell=[[3, 0, 0], [3, height, 0], [0, 0, 3]], pbc=True)
    atoms.calc = calc
    start = time.perf_counter()
    with pytest.raises(InvalidStructureError, match="nearly degenerate|parallel"):
        atoms.get_potential_energy()
    assert time.perf_counter() - start < 5.0


def test_ordinary_thin_cells_still_work(calc):
    atoms = bulk("Cu", "fcc", a=3.6)  # primitive fcc: lattice planes 2.1 A apart
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())


@pytest.mark.parametrize("shift", [1e5, 1e8])
def test_float32_results_do_not_depend_on_absolute_coordinates(calc, calc64, shift):
    """Edge vectors formed from raw coordinates of 1e8 A gave E = NaN in float32, and meV errors at 1e5 A."""
    water = molecule("H2O")
    water.calc = calc64
    energy, forces = water.get_potential_energy(), water.get_forces()
    far = water.copy()
    far.positions += shift
    far.calc = calc
    assert abs(far.get_potential_energy() - energy) < 1e-5
    assert np.abs(far.get_forces() - forces).max() < 1e-4


def test_atoms_far_outside_their_cell_give_the_wrapped_result(calc, calc64):
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=0)
    crystal.calc = calc64
    energy, forces = crystal.get_potential_energy(), crystal.get_forces()
    outside = crystal.copy()
    outside.positions[0] += 10_000 * outside.cell[0]
    outside.positions[2] -= 3_000 * outside.cell[2]
    outside.calc = calc
    assert abs(outside.get_potential_energy() - energy) < 1e-5
    assert np.abs(outside.get_forces() - forces).max() < 1e-4


@pytest.mark.parametrize("separation", [0.005, 0.015, 0.09])
def test_coincident_atoms_are_an_error(calc, separation):
    """Atoms closer than 0.01 A were treated as non-interacting: E = E(one) + E(other), silently; at
    0.01-0.1 A float32 and float64 disagreed by meV (energies there are 1e4 eV and more)."""
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [separation, 0, 0]])
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match=f"atoms 0 and 1 are {separation:g} A apart, closer than 0.1 A"):
        atoms.get_potential_energy()


def test_periodic_image_closer_than_the_limit_is_an_error(calc):
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=[0.05, 5, 5], pbc=True)
    atoms.calc = calc
    with pytest.raises(InvalidStructureError, match=r"periodic image|lattice|cell"):
        atoms.get_potential_energy()


def test_one_calculator_shared_by_threads_returns_each_structure_its_own_results(calc):
    """Without a lock, thread B's calculation replaced thread A's results between A's calculation and
    A's read: A got B's energy and forces of the wrong length."""
    structures = [molecule("H2O"), bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1), molecule("CH4")]
    expected = []
    for atoms in structures:
        single = atoms.copy()
        single.calc = calc
        expected.append((single.get_potential_energy(), single.get_forces()))
    wrong = []

    def work(index: int) -> None:
        for repeat in range(25):
            atoms = structures[index].copy()
            atoms.positions[0, 0] += 1e-9 * (repeat % 2)  # a new structure every call: no cache hits
            atoms.calc = calc
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            if abs(energy - expected[index][0]) > 1e-4 or forces.shape != expected[index][1].shape:
                wrong.append((index, repeat))

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(structures))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong


def test_calculator_pickles_without_its_lock(calc):
    import pickle

    copy = pickle.loads(pickle.dumps(calc))
    atoms = molecule("H2O")
    atoms.calc = copy
    assert np.isfinite(atoms.get_potential_energy())


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(memory_fraction=-1), "memory_fraction must be a number in"),
        (dict(memory_fraction=float("nan")), "memory_fraction must be a number in"),
        (dict(edge_chunk_size="abc"), "edge_chunk_size must be a positive integer"),
        (dict(edge_chunk_size=0), "edge_chunk_size must be a positive integer"),
        (dict(device="meta"), "runs on 'cpu' or 'cuda'"),
        (dict(device="unknown"), "not a device torch knows"),
        (dict(checkpoint=""), "checkpoint is an empty string"),
        (dict(checkpoint_layers="yes"), "checkpoint_layers must be"),
    ],
)
def test_calculator_settings_are_checked_at_construction(settings, message):
    with pytest.raises(ValueError, match=message):
        ESCNCalculator(**settings)


def test_evaluate_of_nothing_is_an_error(calc):
    with pytest.raises(ValueError, match="at least one structure"):
        calc.evaluate([])


def _default_model_file():
    from escn_ase.registry import default_model_path

    return default_model_path()


def test_a_checkpoint_damaged_inside_a_tensor_is_refused(tmp_path):
    """64 flipped bytes inside a tensor used to load and give E = 3.85 eV instead of -0.0045 eV."""
    import zipfile

    from escn_ase.checkpoint import load_checkpoint
    from escn_ase.errors import CheckpointError

    data = bytearray(_default_model_file().read_bytes())
    with zipfile.ZipFile(_default_model_file()) as archive:
        record = max(archive.infolist(), key=lambda info: info.file_size)  # the largest tensor
    start = record.header_offset + 30 + len(record.filename.encode()) + len(record.extra) + record.file_size // 2
    for offset in range(start, start + 64):
        data[offset] ^= 0xFF
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_checkpoint(damaged)


def _rewritten(tmp_path, change):
    import torch

    data = torch.load(_default_model_file(), weights_only=True)
    change(data)
    path = tmp_path / "changed.pt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["state_dict"]["energy_scale"].fill_(float("inf")), "non-finite values"),
        (lambda d: d["state_dict"]["sphere_embedding.weight"].view(-1)[7].fill_(float("nan")), "non-finite values"),
        (lambda d: d["state_dict"].__setitem__("energy_scale", d["state_dict"]["energy_scale"].long()), "integer"),
    ],
)
def test_non_finite_or_integer_weights_are_refused(tmp_path, change, message):
    from escn_ase.checkpoint import load_checkpoint
    from escn_ase.errors import CheckpointError

    def change_without_checksum(data):
        data.pop("weights_sha256", None)
        change(data)

    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_rewritten(tmp_path, change_without_checksum))


def test_weights_changed_after_export_fail_the_stored_sha256(tmp_path):
    from escn_ase.checkpoint import load_checkpoint, save_checkpoint
    from escn_ase.errors import CheckpointError

    original = load_checkpoint(_default_model_file())
    path = tmp_path / "exported.pt"
    save_checkpoint(path, original.model, elements=original.elements, metadata=original.metadata)
    assert load_checkpoint(path).elements == original.elements  # an intact export loads

    import torch

    data = torch.load(path, weights_only=True)
    data["state_dict"]["energy_block.fc3.weight"].mul_(1.001)
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_impossible_configs_are_refused_with_one_line_per_problem():
    from escn_ase import ESCNConfig

    with pytest.raises(ValueError) as error:
        ESCNConfig(max_neighbors=0, lmax=100, num_sphere_samples=10**7, num_layers="two", max_num_elements=200)
    lines = str(error.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "num_layers", "lmax", "num_sphere_samples", "max_num_elements", "max_neighbors"
    ]


def test_checkpoint_with_element_numbers_above_118_is_refused(tmp_path):
    from escn_ase.checkpoint import load_checkpoint
    from escn_ase.errors import CheckpointError

    path = _rewritten(tmp_path, lambda data: data.__setitem__("elements", [1, 29, 150]))
    with pytest.raises(CheckpointError, match="atomic numbers in 1.."):
        load_checkpoint(path)
