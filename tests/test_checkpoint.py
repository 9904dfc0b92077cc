"""Checkpoint reading: both fairchem layouts, our format, and errors that name the problem."""

import copy

import pytest
import torch
from _reference import small_fixture
from ase.build import molecule

from escn_ase import ESCN, CheckpointError, ESCNCalculator, ESCNConfig, load_checkpoint, save_checkpoint
from escn_ase.checkpoint import escn_config_from_fairchem


@pytest.fixture(scope="module")
def fairchem_data():
    return torch.load(small_fixture() / "checkpoint.pt", map_location="cpu", weights_only=True)


def _save(tmp_path, data, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(data, path)
    return path


def test_both_layouts_give_the_same_model():
    new = load_checkpoint(small_fixture() / "checkpoint.pt")
    legacy = load_checkpoint(small_fixture() / "checkpoint_legacy_ocp_layout.pt")
    assert new.source == "fairchem" and legacy.source == "fairchem-legacy"
    assert new.config == legacy.config
    assert new.config.lmax == 3 and new.config.mmax == 2 and new.config.num_layers == 3
    assert new.config.max_neighbors == 20 and new.config.cutoff == 6.0 and new.config.n_basis == 300
    for (k1, v1), (k2, v2) in zip(new.model.state_dict().items(), legacy.model.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert new.model.energy_scale.item() == pytest.approx(2.3)
    assert new.model.forces_scale.item() == pytest.approx(0.9)
    assert new.model.energy_mean.item() == pytest.approx(-0.7)


def test_config_as_name_plus_model_attributes(fairchem_data):
    config = copy.deepcopy(fairchem_data["config"])
    model = dict(config["model"])
    config["model"] = model.pop("name")
    config["model_attributes"] = model
    assert escn_config_from_fairchem(config) == escn_config_from_fairchem(fairchem_data["config"])


def test_other_architecture_is_named(tmp_path, fairchem_data):
    data = copy.deepcopy(fairchem_data)
    data["config"]["model"]["name"] = "gemnet_oc"
    with pytest.raises(CheckpointError, match="gemnet_oc.*not eSCN"):
        load_checkpoint(_save(tmp_path, data))


def test_missing_key_is_named(tmp_path, fairchem_data):
    data = copy.deepcopy(fairchem_data)
    del data["state_dict"]["module.energy_block.fc1.weight"]
    with pytest.raises(CheckpointError, match="missing keys.*energy_block.fc1.weight"):
        load_checkpoint(_save(tmp_path, data))


def test_shape_mismatch_is_named(tmp_path, fairchem_data):
    data = copy.deepcopy(fairchem_data)
    data["config"]["model"]["sphere_channels"] = 48
    with pytest.raises(CheckpointError, match="shape mismatch.*sphere_embedding.weight"):
        load_checkpoint(_save(tmp_path, data))


def test_unknown_hyperparameter_is_named(tmp_path, fairchem_data):
    data = copy.deepcopy(fairchem_data)
    data["config"]["model"]["use_magic"] = True
    with pytest.raises(CheckpointError, match="use_magic"):
        load_checkpoint(_save(tmp_path, data))


def test_multi_resolution_is_refused(tmp_path, fairchem_data):
    data = copy.deepcopy(fairchem_data)
    data["config"]["model"]["lmax_list"] = [3, 4]
    data["config"]["model"]["mmax_list"] = [2, 2]
    with pytest.raises(CheckpointError, match="multi-resolution"):
        load_checkpoint(_save(tmp_path, data))


def test_truncated_file(tmp_path):
    blob = (small_fixture() / "checkpoint.pt").read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not an eSCN checkpoint"):
        load_checkpoint(_save(tmp_path, {"weights": torch.zeros(2)}))
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


class _Arbitrary:
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"state_dict": {}, "config": {"model": {"name": "escn"}}, "obj": _Arbitrary()}, path, pickle_protocol=2)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_native_round_trip(tmp_path):
    torch.manual_seed(0)
    config = ESCNConfig(
        num_layers=1, lmax=2, mmax=1, sphere_channels=8, hidden_channels=8, edge_channels=8, cutoff=4.0,
        max_neighbors=None, num_sphere_samples=16, forces="conservative", smooth_cutoff=True,
    )
    model = ESCN(config)
    model.element_references[1] = -1.5
    path = tmp_path / "native.pt"
    save_checkpoint(path, model, elements=[1, 6, 8], metadata={"note": "test"})
    loaded = load_checkpoint(path)
    assert loaded.source == "escn_ase" and loaded.config == config and loaded.elements == (1, 6, 8)
    assert loaded.metadata == {"note": "test"}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    calc = ESCNCalculator(path, device="cpu")
    water = molecule("H2O")
    water.calc = calc
    assert abs(water.get_potential_energy() - (-1.5 * 2)) < 1.0  # random weights: near the references
    bad = torch.load(path, weights_only=True)
    bad["format_version"] = 99
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(_save(tmp_path, bad, "v99.pt"))
    bad["format_version"] = 1
    bad["config"]["lmax"] = 3
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(_save(tmp_path, bad, "mismatch.pt"))
