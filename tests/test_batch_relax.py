"""relax_batch(): ASE's FIRE path for one structure, batched vs one-at-a-time results, the queue, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.io import read
from ase.optimize import FIRE, LBFGS

from escn_ase.errors import StructureTooLargeError
from escn_ase.workflows import iter_relax_batch, relax, relax_batch
from escn_ase.workflows.relax import RelaxResult, fix_bottom_layers


def _slab(metal: str, size: tuple[int, int, int], adsorbate: str | Atoms, site: str, seed: int) -> Atoms:
    slab = fcc111(metal, size, vacuum=6.0)
    add_adsorbate(slab, adsorbate, 1.6 if site == "ontop" else 1.3, site)
    slab.rattle(0.03, seed=seed)
    return slab


def _hydroxyl() -> Atoms:
    return Atoms("OH", positions=[(0.0, 0.0, 0.0), (0.0, 0.0, 0.97)])


def _mixture() -> tuple[list[Atoms], list[int]]:
    """Cu(111) slabs of two sizes with O, H and OH, one with its own FixAtoms, and a rattled bulk cell."""
    own_fix = _slab("Cu", (2, 2, 3), "O", "ontop", seed=3)
    own_fix.set_constraint(FixAtoms(indices=[0, 1, 2, 3]))  # the bottom layer, fixed by the structure itself
    cell = bulk("Cu", "fcc", a=3.62, cubic=True)
    cell.rattle(0.05, seed=4)
    structures = [
        _slab("Cu", (2, 2, 3), "O", "fcc", seed=1),
        _slab("Cu", (3, 3, 3), "H", "fcc", seed=2),
        own_fix,
        cell,
        _slab("Cu", (3, 3, 3), _hydroxyl(), "ontop", seed=5),
    ]
    return structures, [1, 1, 0, 0, 1]


class _Recording:
    """A batched calculator (has ``evaluate``) made of EMT, recording the size of every batch.

    ``too_large_above``: batches of more structures raise StructureTooLargeError, as an
    ESCNCalculator does when a batch does not fit in memory.
    """

    def __init__(self, too_large_above: int | None = None) -> None:
        self.emt = EMT()
        self.batches: list[list[int]] = []
        self.too_large_above = too_large_above

    def get_forces(self, atoms):
        return self.emt.get_forces(atoms)

    def evaluate(self, structures):
        if self.too_large_above is not None and len(structures) > self.too_large_above:
            raise StructureTooLargeError("too many structures for this test's budget")
        self.batches.append([len(atoms) for atoms in structures])
        results = []
        for atoms in structures:
            forces = self.emt.get_forces(atoms)
            results.append({"energy": self.emt.get_potential_energy(atoms), "forces": forces})
        return results


def _ase_fire(atoms: Atoms, calc, fmax: float, steps: int, fix_layers: int = 0, optimizer=FIRE):
    """ASE's own optimiser on a copy: (relaxed atoms, converged, steps taken)."""
    work = atoms.copy()
    if fix_layers:
        fix_bottom_layers(work, fix_layers)
    work.calc = calc
    with optimizer(work, logfile=None) as dynamics:
        converged = dynamics.run(fmax=fmax, steps=steps)
    return work, converged, dynamics.nsteps


@pytest.mark.parametrize("optimizer, ase_optimizer", [("fire", FIRE), ("lbfgs", LBFGS)])
@pytest.mark.parametrize("steps", [1, 7, 30])
def test_single_structure_follows_ase_step_by_step(optimizer, ase_optimizer, steps):
    start = _slab("Cu", (2, 2, 3), "O", "ontop", seed=7)
    reference, converged, taken = _ase_fire(start, EMT(), 0.01, steps, fix_layers=1, optimizer=ase_optimizer)
    (result,) = relax_batch([start], EMT(), fmax=0.01, steps=steps, optimizer=optimizer, fix_bottom_layers=1)
    assert not converged and taken == steps  # precondition: the comparison is after exactly `steps` steps
    assert result.steps == steps and not result.converged
    np.testing.assert_allclose(result.atoms.positions, reference.positions, rtol=0, atol=1e-10)
    assert result.energy == pytest.approx(reference.get_potential_energy(), abs=1e-10)


def test_other_constraints_act_as_in_ase():
    """FixCartesian (adjust_positions / adjust_forces) and Hookean (adds energy and forces) as ASE applies them."""
    from ase.constraints import FixCartesian, Hookean

    start = _slab("Pt", (2, 2, 3), _hydroxyl(), "fcc", seed=11)
    n = len(start)
    spring = Hookean(n - 2, n - 1, k=5.0, rt=0.9)  # O-H longer than 0.9 A: the spring acts
    start.set_constraint([FixAtoms(indices=range(4)), FixCartesian(n - 2, mask=(1, 1, 0)), spring])
    reference, converged, taken = _ase_fire(start, EMT(), 0.02, 25)
    (result,) = relax_batch([start], EMT(), fmax=0.02, steps=25)
    assert result.steps == taken and result.converged == converged
    np.testing.assert_allclose(result.atoms.positions, reference.positions, rtol=0, atol=1e-10)
    assert result.energy == pytest.approx(reference.get_potential_energy(), abs=1e-10)
    np.testing.assert_array_equal(result.atoms.positions[n - 2, :2], start.positions[n - 2, :2])


def test_single_structure_converges_where_ase_does():
    start = _slab("Cu", (2, 2, 3), "O", "fcc", seed=8)
    reference, converged, taken = _ase_fire(start, EMT(), 0.02, 500, fix_layers=1)
    (result,) = relax_batch([start], EMT(), fmax=0.02, fix_bottom_layers=1)
    assert converged and result.converged
    assert result.steps == taken > 10
    np.testing.assert_allclose(result.atoms.positions, reference.positions, rtol=0, atol=1e-10)
    forces = reference.get_forces()
    assert result.fmax == pytest.approx(np.sqrt((forces**2).sum(axis=1)).max(), abs=1e-10)
    assert result.fmax < 0.02


def test_single_structure_with_the_default_model_matches_ase_fire(workflow_calc):
    start = _slab("Cu", (2, 2, 3), "O", "fcc", seed=9)
    single = relax(start, workflow_calc, fmax=0.05, steps=200, optimizer="FIRE", fix_bottom_layers=1)
    (batched,) = relax_batch([start], workflow_calc, fmax=0.05, steps=200, fix_bottom_layers=1)
    assert single.converged and batched.converged
    assert batched.steps == single.steps
    assert batched.energy == pytest.approx(single.energy, abs=1e-6)
    assert batched.initial_energy == pytest.approx(single.initial_energy, abs=1e-6)
    np.testing.assert_allclose(batched.atoms.positions, single.atoms.positions, rtol=0, atol=1e-5)


def test_mixture_batched_matches_one_at_a_time(workflow_calc):
    structures, layers = _mixture()
    before = [atoms.positions.copy() for atoms in structures]
    batched = relax_batch(structures, workflow_calc, fmax=0.05, steps=300, fix_bottom_layers=layers)
    assert len(batched) == len(structures) and all(isinstance(result, RelaxResult) for result in batched)
    n_fixed = [4, 9, 4, 0, 9]  # bottom layers of 2x2 and 3x3 slabs; the structure's own FixAtoms; none in bulk
    for index, (atoms, n_layers, result) in enumerate(zip(structures, layers, batched)):
        single = relax(atoms, workflow_calc, fmax=0.05, steps=300, optimizer="FIRE", fix_bottom_layers=n_layers)
        assert result.converged == single.converged, index
        assert abs(result.energy - single.energy) < 2e-3, (index, result.energy, single.energy)
        assert result.energy < result.initial_energy
        assert result.atoms.get_chemical_formula() == atoms.get_chemical_formula()
        fixed = [i for c in result.atoms.constraints if isinstance(c, FixAtoms) for i in c.get_indices()]
        assert len(fixed) == n_fixed[index]
        np.testing.assert_array_equal(result.atoms.positions[fixed], before[index][fixed])  # fixed atoms stay
        np.testing.assert_array_equal(atoms.positions, before[index])  # the inputs are not modified
        # the reported energy is the structure's: recompute it
        fresh = result.atoms.copy()
        fresh.calc = workflow_calc
        assert fresh.get_potential_energy() == pytest.approx(result.energy, abs=1e-4)


def test_queue_relaxes_everything_in_input_order():
    starts = [
        _slab(metal, size, adsorbate, site, seed)
        for seed, (metal, size, adsorbate, site) in enumerate(
            [
                ("Cu", (2, 2, 3), "O", "fcc"),
                ("Pt", (2, 2, 3), "H", "ontop"),
                ("Cu", (3, 3, 3), "O", "ontop"),
                ("Au", (2, 2, 3), "C", "fcc"),
                ("Ni", (2, 2, 3), "N", "fcc"),
                ("Cu", (2, 2, 3), "H", "fcc"),
                ("Pt", (2, 2, 3), "O", "fcc"),
            ]
        )
    ]
    calc = _Recording()
    results = relax_batch(starts, calc, fmax=0.05, steps=60, max_batch_atoms=30, fix_bottom_layers=1)
    assert max(sum(batch) for batch in calc.batches) <= 30
    assert max(len(batch) for batch in calc.batches) == 2  # 13-atom slabs two at a time; 28 atoms alone
    assert [len(batch) for batch in calc.batches].count(1) >= 1
    for start, result in zip(starts, results):
        reference, converged, _ = _ase_fire(start, EMT(), 0.05, 60, fix_layers=1)
        assert result.converged == converged
        np.testing.assert_allclose(result.atoms.positions, reference.positions, rtol=0, atol=1e-10)
    # Every structure was evaluated once per step plus once at the start.
    assert sum(len(batch) for batch in calc.batches) == sum(result.steps + 1 for result in results)


def test_batches_that_do_not_fit_are_split():
    starts = [_slab("Cu", (2, 2, 3), "O", "fcc", seed) for seed in range(5)]
    calc = _Recording(too_large_above=2)
    results = relax_batch(starts, calc, fmax=0.05, steps=20)
    assert max(len(batch) for batch in calc.batches) == 2
    for start, result in zip(starts, results):
        reference, _, _ = _ase_fire(start, EMT(), 0.05, 20)
        np.testing.assert_allclose(result.atoms.positions, reference.positions, rtol=0, atol=1e-10)


def _record_batch_sizes(calc, monkeypatch) -> list[int]:
    """Wrap ``calc.evaluate`` so that the number of structures of every packed call is appended to the list returned."""
    sizes: list[int] = []
    evaluate = calc.evaluate

    def recording(structures, **kwargs):
        sizes.append(len(structures))
        return evaluate(structures, **kwargs)

    monkeypatch.setattr(calc, "evaluate", recording)
    return sizes


def test_memory_estimate_limits_the_batch(workflow_calc, monkeypatch):
    """Without max_batch_atoms the calculator's memory estimate decides, as in calculate_batch."""
    from escn_ase.batch import structure_graph

    starts = [_slab("Cu", (2, 2, 3), "O", "fcc", seed) for seed in range(4)]
    graph = structure_graph(starts[0], workflow_calc.config)
    two, three = (workflow_calc._memory_estimate(k * len(starts[0]), k * graph.n_edges).total() for k in (2, 3))
    monkeypatch.setattr(workflow_calc, "_memory_budget", lambda: int((two + three) / 2))  # room for two
    sizes = _record_batch_sizes(workflow_calc, monkeypatch)
    results = relax_batch(starts, workflow_calc, fmax=0.05, steps=3)
    assert max(sizes) == 2 and all(result.steps == 3 for result in results)


def test_cpu_preferred_graph_size_limits_the_batch(workflow_calc, monkeypatch):
    """On a CPU, without max_batch_atoms, batches stop at the calculator's preferred number of edges;
    an explicit max_batch_atoms replaces that preference."""
    from escn_ase.batch import structure_graph
    from escn_ase.memory import CPU_BATCH_CHUNKS, default_edge_chunk_size

    assert workflow_calc.device.type == "cpu"
    preferred = workflow_calc.preferred_batch_edges()
    assert preferred == CPU_BATCH_CHUNKS * default_edge_chunk_size(workflow_calc.config, workflow_calc.dtype)
    starts = [_slab("Cu", (2, 2, 3), "O", "fcc", seed) for seed in range(5)]
    edges = structure_graph(starts[0], workflow_calc.config).n_edges
    monkeypatch.setattr(workflow_calc, "preferred_batch_edges", lambda: int(2.5 * edges))  # room for two
    sizes = _record_batch_sizes(workflow_calc, monkeypatch)
    relax_batch(starts, workflow_calc, fmax=0.05, steps=2)
    assert max(sizes) == 2 and sizes[0] == 2
    sizes.clear()
    relax_batch(starts, workflow_calc, fmax=0.05, steps=2, max_batch_atoms=10 * len(starts[0]))
    assert sizes[0] == 5


def test_trajectories_and_zero_steps(tmp_path):
    starts = [_slab("Cu", (2, 2, 3), "O", "fcc", 0), _slab("Cu", (2, 2, 3), "H", "fcc", 1)]
    results = relax_batch(starts, EMT(), fmax=0.05, steps=6, trajectory_dir=tmp_path / "traj", progress=True)
    for index, result in enumerate(results):
        frames = read(result.trajectory, index=":")
        assert result.trajectory == str(tmp_path / "traj" / f"{index:04d}.traj")
        assert len(frames) == result.steps + 1
        assert frames[0].get_potential_energy() == pytest.approx(result.initial_energy)
        assert frames[-1].get_potential_energy() == pytest.approx(result.energy)
    (unmoved,) = relax_batch(starts[:1], EMT(), steps=0)
    assert unmoved.steps == 0 and unmoved.energy == unmoved.initial_energy and not unmoved.converged
    np.testing.assert_array_equal(unmoved.atoms.positions, starts[0].positions)


def test_bad_input_is_named():
    slab = _slab("Cu", (2, 2, 3), "O", "fcc", 0)
    with pytest.raises(ValueError, match="at least one structure"):
        relax_batch([], EMT())
    with pytest.raises(ValueError, match="fmax must be a positive finite"):
        relax_batch([slab], EMT(), fmax=math.nan)
    with pytest.raises(ValueError, match="fmax must be a positive finite"):
        relax_batch([slab], EMT(), fmax=-0.1)
    with pytest.raises(TypeError, match=r"pass \[atoms\]"):
        relax_batch(slab, EMT())
    with pytest.raises(TypeError, match=r"structures\[1\] is a str"):
        relax_batch([slab, "slab.xyz"], EMT())
    with pytest.raises(ValueError, match=r"structures\[0\] has no atoms"):
        relax_batch([Atoms()], EMT())
    with pytest.raises(ValueError, match="optimizer must be one of fire, lbfgs"):
        relax_batch([slab], EMT(), optimizer="bfgs")
    with pytest.raises(ValueError, match="steps must be an integer"):
        relax_batch([slab], EMT(), steps=-1)
    with pytest.raises(ValueError, match="max_batch_atoms must be a positive"):
        relax_batch([slab], EMT(), max_batch_atoms=0)
    with pytest.raises(ValueError, match="2 entries for 1 structures"):
        relax_batch([slab], EMT(), fix_bottom_layers=[1, 1])
    with pytest.raises(ValueError, match=r"structures\[1\]: cannot fix 3 bottom layer"):
        relax_batch([slab, bulk("Cu")], EMT(), fix_bottom_layers=3)
    with pytest.raises(TypeError, match="ASE calculator"):
        relax_batch([slab], object())


class _RefusesHydrogen(_Recording):
    """Raises for any packed call that holds a hydrogen atom, as a model raises for a structure it refuses."""

    def evaluate(self, structures):
        if any("H" in atoms.get_chemical_symbols() for atoms in structures):
            raise ValueError("no hydrogen here")
        return super().evaluate(structures)


def test_iter_relax_batch_isolates_a_failing_structure():
    """The failing structure is found by splitting the batch and reported alone; the rest relax as usual."""
    structures, layers = _mixture()
    calc = _RefusesHydrogen()
    items = list(iter_relax_batch(structures, calc, fmax=0.05, steps=200, fix_bottom_layers=layers))
    assert sorted(item.index for item in items) == list(range(len(structures)))
    failed = {item.index for item in items if item.error is not None}
    assert failed == {1, 4}  # the H and OH structures
    assert all(isinstance(item.error, ValueError) and item.result is None for item in items if item.index in failed)
    expected = relax_batch([structures[i] for i in (0, 2, 3)], EMT(), fmax=0.05, steps=200,
                           fix_bottom_layers=[layers[i] for i in (0, 2, 3)])
    for item in items:
        if item.index not in failed:
            reference = expected[(0, 2, 3).index(item.index)]
            assert item.result.converged and item.wall_s > 0
            assert item.result.energy == pytest.approx(reference.energy, abs=1e-10)
    with pytest.raises(ValueError, match="no hydrogen here"):
        relax_batch(structures, calc, fmax=0.05, steps=200, fix_bottom_layers=layers)
