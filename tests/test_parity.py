"""Parity with the reference implementation (fairchem-core 1.10) on every fixture in tests/fixtures/."""

import functools
import json

import numpy as np
import pytest
from _reference import IN_REPO_FIXTURES, PARITY_FIXTURES, fixture, fixtures_dir
from ase.io import read

from escn_ase import ESCNCalculator

ENERGY_TOLERANCE = 1e-4  # eV
FORCE_TOLERANCE = 3e-3  # eV/A
FIXTURES_MAX_BYTES = 10 * 1024 * 1024  # tests/fixtures is part of every clone


@functools.cache
def _references(name):
    return json.loads((fixture(name) / "references.json").read_text())


@functools.cache
def _structures(name):
    return tuple(read(fixture(name) / "structures.extxyz", ":"))


@pytest.mark.parametrize("name", PARITY_FIXTURES)
@pytest.mark.parametrize("checkpoint", ["checkpoint.pt", "checkpoint_legacy_ocp_layout.pt"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_reference(name, checkpoint, dtype):
    calc = ESCNCalculator(fixture(name) / checkpoint, device="cpu", dtype=dtype)
    structures = _structures(name)
    assert len(structures) == len(_references(name)["structures"]) >= 4
    for atoms in structures:
        reference_energy = atoms.info["ref_energy"]
        reference_forces = atoms.arrays["ref_forces"]
        atoms = atoms.copy()
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        label = f"{name}/{atoms.info['name']}"
        assert abs(energy - reference_energy) <= ENERGY_TOLERANCE, label
        assert np.abs(forces - reference_forces).max() <= FORCE_TOLERANCE, label


@pytest.mark.parametrize("name", PARITY_FIXTURES)
def test_graph_has_the_reference_edge_counts(name):
    calc = ESCNCalculator(fixture(name) / "checkpoint.pt", device="cpu")
    for atoms in _structures(name):
        batch = calc.prepare([atoms])
        assert batch.n_edges == atoms.info["n_edges_fairchem"], f"{name}/{atoms.info['name']}"
        assert batch.n_tied_centres == 0


@pytest.mark.parametrize("name", PARITY_FIXTURES)
def test_structure_file_and_references_json_agree(name):
    """The test reads structures.extxyz; references.json (full precision) must say the same."""
    records = _references(name)["structures"]
    assert [a.info["name"] for a in _structures(name)] == [r["name"] for r in records]
    for atoms, record in zip(_structures(name), records):
        assert atoms.info["ref_energy"] == pytest.approx(record["energy"], abs=1e-9)
        np.testing.assert_allclose(atoms.arrays["ref_forces"], record["forces"], atol=1e-7)
        np.testing.assert_allclose(atoms.positions, record["positions"], atol=1e-7)
        assert atoms.numbers.tolist() == record["numbers"] and atoms.pbc.tolist() == record["pbc"]
        assert atoms.info["n_edges_fairchem"] == record["n_edges_fairchem"]
        # The reference's graph was unambiguous (no neighbour within 2e-3 A of the max_neighbors cut or cutoff),
        # the reference reproduced itself and gave the same numbers for both checkpoint layouts.
        for key in ("min_gap_at_truncation_A", "min_abs_dist_minus_cutoff_untruncated_A"):
            assert record[key] is None or record[key] >= 2e-3
        assert record["seed0_repeat_max_abs_diff"] == {"energy": 0.0, "forces": 0.0}
        assert record["legacy_layout_max_abs_diff"] == {"energy": 0.0, "forces": 0.0}


def test_fixtures_cover_the_published_settings_and_periodicities():
    configs = {name: _references(name)["model_config"] for name in PARITY_FIXTURES}
    lmax_mmax = {(c["lmax_list"][0], c["mmax_list"][0]) for c in configs.values()}
    assert {(4, 2), (6, 3)} <= lmax_mmax and any(lmax == mmax for lmax, mmax in lmax_mmax)
    for name in PARITY_FIXTURES:
        patterns = {tuple(atoms.pbc) for atoms in _structures(name)}
        assert {(True,) * 3, (True, True, False), (False,) * 3} <= patterns, name
    ema = {_references(name)["ema_in_checkpoint"] for name in PARITY_FIXTURES}
    assert ema == {True, False}  # trainer checkpoints with and without EMA weights


def test_every_fixture_folder_is_checked():
    present = {path.parent.name for path in fixtures_dir().glob("*/references.json")}
    assert present == set(PARITY_FIXTURES)


def test_fixtures_stay_small():
    total = sum(path.stat().st_size for path in IN_REPO_FIXTURES.rglob("*") if path.is_file())
    assert total <= FIXTURES_MAX_BYTES, f"tests/fixtures holds {total / 2**20:.1f} MiB"
