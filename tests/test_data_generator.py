"""The EMT training-data generator: reproducibility, group splits, labels against fresh EMT, filters, errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.io import write

from escn_ase.cli import main as escn_main
from escn_ase.data import FAMILIES, SPLITS, generate_dataset, load_dataset, make_recipe
from escn_ase.data.emt_dataset import assign_splits
from escn_ase.data.structures import ADSORBATES, ORGANIC_MOLECULES

ALLOWED_ELEMENTS = {"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"}
ONLY_BULK = {family: 0 for family in FAMILIES} | {"bulk": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate_dataset(out, seed=3, size="tiny", progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_frames(tiny):
    return load_dataset(tiny)


def _without_timing(manifest_path: Path) -> dict:
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("timing")
    return manifest


def test_same_seed_gives_byte_identical_files(tiny, tmp_path):
    generate_dataset(tmp_path, seed=3, size="tiny", progress=False)
    for name in SPLITS:
        assert (tmp_path / f"{name}.extxyz").read_bytes() == (tiny / f"{name}.extxyz").read_bytes()
    assert _without_timing(tmp_path / "manifest.json") == _without_timing(tiny / "manifest.json")


def test_other_seed_gives_other_structures(tiny, tmp_path):
    generate_dataset(tmp_path, seed=4, size="tiny", groups=ONLY_BULK, progress=False)
    other = load_dataset(tmp_path)
    mine = [a for a in load_dataset(tiny) if a.info["family"] == "bulk"]
    assert len(other) == len(mine)
    assert not all(
        len(a) == len(b) and np.allclose(a.positions, b.positions)
        for a, b in zip(sorted_by_group(other), sorted_by_group(mine))
    )


def sorted_by_group(frames):
    return sorted(frames, key=lambda atoms: atoms.info["group"])


def test_splits_share_no_group_and_every_family_appears(tiny_frames):
    groups_in = {name: {a.info["group"] for a in tiny_frames if a.info["split"] == name} for name in SPLITS}
    for first in SPLITS:
        for second in SPLITS:
            if first < second:
                assert not groups_in[first] & groups_in[second], (first, second)
    # A group's frames all carry that group's family.
    family_of_group = {}
    for atoms in tiny_frames:
        assert family_of_group.setdefault(atoms.info["group"], atoms.info["family"]) == atoms.info["family"]
    # The tiny recipe has >= 3 groups per family, so every family reaches every split.
    for name in SPLITS:
        assert {a.info["family"] for a in tiny_frames if a.info["split"] == name} == set(FAMILIES)


def test_labels_match_a_fresh_emt_evaluation(tiny_frames):
    one_per_family = {}
    for atoms in tiny_frames:
        one_per_family.setdefault(atoms.info["family"], atoms)
    assert set(one_per_family) == set(FAMILIES)
    for family, stored in one_per_family.items():
        fresh = stored.copy()
        fresh.calc = EMT()
        assert fresh.get_potential_energy() == pytest.approx(stored.info["energy"], abs=1e-6), family
        np.testing.assert_allclose(stored.arrays["forces"], fresh.get_forces(), atol=1e-5, err_msg=family)
        np.testing.assert_allclose(stored.info["stress"], fresh.get_stress(voigt=True), atol=1e-7, err_msg=family)


def test_stored_stress_is_the_strain_derivative_of_the_energy(tiny_frames):
    """Voigt order and sign (ASE: stress = (1/V) dE/d strain), checked by finite differences of EMT."""
    atoms = next(a for a in tiny_frames if a.info["family"] == "bulk" and len(a) > 1)
    volume = atoms.get_volume()
    step = 1e-5
    for voigt, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        energies = []
        for sign in (1, -1):
            strain = np.zeros((3, 3))
            strain[i, j] = strain[j, i] = sign * step
            strained = atoms.copy()
            strained.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)
            strained.calc = EMT()
            energies.append(strained.get_potential_energy())
        components = 1 if i == j else 2  # a shear strain moves two tensor components
        derivative = (energies[0] - energies[1]) / (2 * step * components * volume)
        assert atoms.info["stress"][voigt] == pytest.approx(derivative, abs=1e-6)


def test_frames_have_labels_of_the_right_shape_and_sane_structures(tiny_frames):
    for atoms in tiny_frames:
        assert isinstance(atoms.info["energy"], float) and np.isfinite(atoms.info["energy"])
        assert atoms.arrays["forces"].shape == (len(atoms), 3)
        assert atoms.info["stress"].shape == (6,)
        assert atoms.calc is None
        assert atoms.pbc.all() and 1 <= len(atoms) <= 40
        assert set(atoms.get_chemical_symbols()) <= ALLOWED_ELEMENTS
        assert np.linalg.norm(atoms.arrays["forces"], axis=1).max() <= 20.0
        if len(atoms) > 1:
            distances = atoms.get_all_distances(mic=True)
            assert distances[np.triu_indices(len(atoms), 1)].min() > 0.6
        if atoms.info["family"] in ("adsorbate", "md_adsorbate", "relax_adsorbate", "site_relax"):
            expected = Counter(symbol for symbol, _ in ADSORBATES[atoms.info["adsorbate"]])
            found = Counter(s for s in atoms.get_chemical_symbols() if s in {"H", "C", "N", "O"})
            assert found == expected
            # The adsorbate sits above the surface: its lowest atom is above the slab's mean height.
            light = np.isin(atoms.numbers, [1, 6, 7, 8])
            assert atoms.positions[light, 2].min() > atoms.positions[~light, 2].mean()
        elif atoms.info["family"] in ("gas", "molecule"):
            # one isolated molecule of the named formula, far from its periodic images
            assert Atoms(atoms.info["molecule"]).symbols.formula == atoms.symbols.formula
            assert atoms.cell.lengths().min() >= 12.0
            if atoms.info["family"] == "molecule":
                assert atoms.info["molecule"] in ORGANIC_MOLECULES and "C" in atoms.symbols
                assert atoms.info["temperature_K"] in make_recipe("tiny").md_temperatures_k
        else:
            assert set(atoms.get_chemical_symbols()) <= ALLOWED_ELEMENTS - {"H", "C", "N", "O"}
        if atoms.info["family"] == "site_relax":  # one atom relaxed from a named site of a (111) surface
            assert atoms.info["adsorbate"] in ("H", "O", "N", "C") and atoms.info["site"] in (
                "ontop",
                "bridge",
                "fcc",
                "hcp",
            )


def test_organic_molecules_are_g2_molecules_named_by_their_formula():
    from ase.build import molecule

    assert len(set(ORGANIC_MOLECULES)) == len(ORGANIC_MOLECULES)
    for name in ORGANIC_MOLECULES:
        atoms = molecule(name)
        assert atoms.symbols.formula == Atoms(name).symbols.formula
        assert set(atoms.get_chemical_symbols()) <= {"H", "C", "N", "O"} and len(atoms) <= 10


def test_manifest_counts_agree_with_the_files(tiny, tiny_frames):
    import hashlib

    manifest = json.loads((tiny / "manifest.json").read_text())
    counted = Counter((a.info["split"], a.info["family"]) for a in tiny_frames)
    for name in SPLITS:
        for family in FAMILIES:
            assert manifest["counts"]["structures"][name][family] == counted[(name, family)]
        data = (tiny / f"{name}.extxyz").read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    atoms_per_element = Counter(s for a in tiny_frames for s in a.get_chemical_symbols())
    assert manifest["elements"]["atoms"] == dict(atoms_per_element)
    assert manifest["counts"]["total_structures"] == len(tiny_frames)
    assert manifest["seed"] == 3 and manifest["size"] == "tiny"
    assert manifest["timing"]["total_seconds"] > 0


def test_structures_above_the_force_limit_are_dropped_and_reported(tmp_path):
    manifest = generate_dataset(tmp_path, seed=0, size="tiny", groups=ONLY_BULK, max_force=0.5, progress=False)
    kept = load_dataset(tmp_path)
    expected = 4 * make_recipe("tiny").bulk_copies
    assert manifest["dropped_total"] > 0
    assert len(kept) + manifest["dropped"]["bulk"]["max_force_exceeded"] == expected
    for atoms in kept:
        assert np.linalg.norm(atoms.arrays["forces"], axis=1).max() <= 0.5


def test_group_split_is_seeded_and_near_the_fractions():
    groups = {family: [f"{family}-{i:05d}" for i in range(200)] for family in FAMILIES}
    first = assign_splits(groups, (0.8, 0.1, 0.1), seed=5)
    assert first == assign_splits(groups, (0.8, 0.1, 0.1), seed=5)
    assert first != assign_splits(groups, (0.8, 0.1, 0.1), seed=6)
    counts = Counter(first.values())
    n_families = len(FAMILIES)
    assert counts == {"train": 160 * n_families, "val": 20 * n_families, "test": 20 * n_families}


def test_numeric_size_scales_the_recipe():
    for size in (300, 3000):
        assert make_recipe(size).expected_structures() == pytest.approx(size, rel=0.1)
    assert make_recipe("small", groups={"md_bulk": 0}).groups["md_bulk"] == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"size": "huge"}, ValueError, "unknown size"),
        ({"size": 0}, ValueError, "positive number"),
        ({"size": 2.5}, TypeError, "size must be"),
        ({"seed": -1}, ValueError, "seed"),
        ({"split": (0.5, 0.5, 0.5)}, ValueError, "summing to 1"),
        ({"groups": {"molecules": 3}}, ValueError, "unknown family"),
        ({"groups": {family: 0 for family in FAMILIES}}, ValueError, "no groups"),
        ({"max_force": 0.0}, ValueError, "max_force"),
    ],
)
def test_bad_arguments_give_clear_errors(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        generate_dataset(tmp_path / "out", **({"size": "tiny", "progress": False} | kwargs))
    assert not (tmp_path / "out" / "train.extxyz").exists()


def test_existing_data_set_is_not_overwritten_silently(tiny):
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_dataset(tiny, seed=3, size="tiny", progress=False)


def test_loader_errors(tmp_path, tiny):
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing.extxyz")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset(tiny, split="holdout")
    unlabelled = tmp_path / "unlabelled.extxyz"
    atoms = load_dataset(tiny, split="train")[0]
    bare = atoms.copy()
    del bare.info["energy"], bare.info["stress"], bare.arrays["forces"]
    write(unlabelled, bare, format="extxyz")
    with pytest.raises(ValueError, match="no energy, forces, stress label"):
        load_dataset(unlabelled)


def test_cli_generate_data(tmp_path, capsys):
    argv = ["generate-data", str(tmp_path), "--size", "tiny", "--seed", "1", "--no-progress"]
    argv += [f"--groups={family}=0" for family in FAMILIES if family != "slab"]
    assert escn_main(argv) == 0
    printed = capsys.readouterr().out
    assert "structures" in printed and "slab" in printed
    frames = load_dataset(tmp_path)
    assert {a.info["family"] for a in frames} == {"slab"}
    assert escn_main(argv) == 1  # exists already, no --overwrite: one line, as every command reports errors
    err = capsys.readouterr().err
    assert err.startswith("escn-ase: error: ") and "overwrite" in err and "Traceback" not in err
    assert escn_main([*argv, "--overwrite", "--split", "0.9,0.2,0.1"]) == 1
    assert "summing to 1" in capsys.readouterr().err
