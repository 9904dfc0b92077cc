"""Property-based fuzzing of the calculator with structures a user (or another program) could hand it.

Random cells (cubic, skewed, tiny, nearly degenerate, left-handed), periodicity patterns, positions
(inside, far outside the cell, nearly coincident) and element lists.  Every draw must end in one of two
ways, within a time limit:

* finite energy, forces (and stress for 3D-periodic cells) that agree with the float64 evaluation of the
  same structure and with the structure wrapped into its cell; or
* one of the documented exceptions (``InvalidStructureError`` and its ``UnsupportedElementError``,
  ``StructureTooLargeError``), raised before any long computation.

The suite runs 100 derandomised examples (under half a minute on 2 cores); the longer profile runs by hand:
``ESCN_ASE_FUZZ_EXAMPLES=500 python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from ase import Atoms

from escn_ase import ESCNCalculator
from escn_ase.errors import InvalidStructureError, StructureTooLargeError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("ESCN_ASE_FUZZ_EXAMPLES", "100"))
TIME_LIMIT_S = 20.0  # per structure: a hang or an unbounded search fails
DOCUMENTED_ERRORS = (InvalidStructureError, StructureTooLargeError)

_CALCS: dict[str, ESCNCalculator] = {}


def _calc(dtype: str) -> ESCNCalculator:
    if dtype not in _CALCS:
        _CALCS[dtype] = ESCNCalculator(device="cpu", dtype=dtype)
    return _CALCS[dtype]


@st.composite
def cells(draw) -> np.ndarray:
    kind = draw(st.sampled_from(["cubic", "skewed", "tiny", "degenerate", "left-handed", "zero-row"]))
    length = draw(st.floats(2.0, 12.0))
    if kind == "cubic":
        return np.eye(3) * length
    if kind == "tiny":
        return np.eye(3) * draw(st.sampled_from([0.05, 0.09, 0.9, 1.3]))  # refused, or dense but finite
    if kind == "zero-row":
        cell = np.eye(3) * length
        cell[draw(st.integers(0, 2))] = 0.0
        return cell
    rows = np.array(draw(st.lists(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3), min_size=3, max_size=3)))
    cell = np.eye(3) * length + rows * length * 0.6
    if kind == "degenerate":
        cell[1] = cell[0] * draw(st.floats(0.5, 2.0)) + draw(st.floats(0.0, 1e-3)) * cell[2]
    if kind == "left-handed":
        cell[[0, 1]] = cell[[1, 0]]
    return cell


@st.composite
def structures(draw) -> Atoms:
    cell = draw(cells())
    pbc = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    dense = abs(np.linalg.det(cell)) < 3.0  # a tiny cell holds few atoms (its graph grows as atoms^2 / volume)
    n_atoms = draw(st.integers(1, 2 if dense else 8))
    elements = draw(st.lists(st.sampled_from(["Cu", "Pt", "Al", "H", "C", "N", "O", "Fe", "U"]), min_size=n_atoms,
                             max_size=n_atoms))
    fractional = np.array(draw(st.lists(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3), min_size=n_atoms,
                                        max_size=n_atoms)))
    # fractional coordinates of the cell, or of a 6 A box where the cell spans no volume
    positions = fractional @ (cell if abs(np.linalg.det(cell)) > 1e-6 else np.eye(3) * 6.0)
    placement = draw(st.sampled_from(["inside", "far", "coincident"]))
    if placement == "far" and n_atoms:
        positions[0] += cell.sum(axis=0) * draw(st.integers(-1000, 1000)) + draw(st.floats(-1e4, 1e4))
    if placement == "coincident" and n_atoms > 1:
        positions[1] = positions[0] + draw(st.floats(0.0, 0.2))  # refused below 0.1 A
    return Atoms(elements, positions=positions, cell=cell, pbc=pbc)


def _evaluate(atoms: Atoms, dtype: str) -> dict:
    copy = atoms.copy()
    copy.calc = _calc(dtype)
    start = time.perf_counter()
    try:
        results = {"energy": copy.get_potential_energy(), "forces": copy.get_forces()}
        if np.all(copy.pbc):
            results["stress"] = copy.get_stress()
    finally:
        assert time.perf_counter() - start < TIME_LIMIT_S, "took too long: a hang or an unbounded search"
    return results


@settings(
    max_examples=max(EXAMPLES, 1),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(structures())
def test_any_structure_gives_consistent_finite_results_or_a_documented_error(atoms):
    try:
        single = _evaluate(atoms, "float32")
    except DOCUMENTED_ERRORS as error:
        assert str(error)  # a message that says what is wrong
        return
    assert np.isfinite(single["energy"]) and np.isfinite(single["forces"]).all()
    reference = _evaluate(atoms, "float64")
    scale = 1.0 + np.abs(reference["forces"]).max()
    # float32 resolves an energy to about 1e-7 of its size (a close pair's repulsion reaches 1e3 eV)
    assert abs(single["energy"] - reference["energy"]) < 1e-3 * (1.0 + len(atoms)) + 1e-6 * abs(reference["energy"])
    assert np.abs(single["forces"] - reference["forces"]).max() < 1e-3 * scale
    if "stress" in reference:
        assert np.isfinite(single["stress"]).all()
        assert np.abs(single["stress"] - reference["stress"]).max() < 1e-3 * (1.0 + np.abs(reference["stress"]).max())
    if np.any(atoms.pbc):
        # every atom moved by a random lattice vector (integer combination of the periodic cell vectors)
        moved_atoms = atoms.copy()
        lattice = atoms.cell.array[atoms.pbc]
        steps = np.random.default_rng(len(atoms)).integers(-3, 4, size=(len(atoms), len(lattice)))
        moved_atoms.positions += steps @ lattice
        moved = _evaluate(moved_atoms, "float64")
        assert abs(moved["energy"] - reference["energy"]) < 1e-8 * (1.0 + abs(reference["energy"]))
        assert np.abs(moved["forces"] - reference["forces"]).max() < 1e-7 * scale
