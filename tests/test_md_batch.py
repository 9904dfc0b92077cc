"""run_md_batch(): replicas stepped together follow run_md alone; batching, failures, restart, bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.io import read

from escn_ase import ESCNCalculator
from escn_ase.workflows import run_md
from escn_ase.workflows.md_batch import ReplicaError, run_md_batch


@pytest.fixture(scope="module")
def calc64():
    """The default model in float64: packed and single graphs then agree to ~1e-12 per step."""
    return ESCNCalculator(dtype="float64")


def _structures() -> list[Atoms]:
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, "O", 1.3, "fcc")
    cell = bulk("Cu", "fcc", a=3.62, cubic=True)
    cell.rattle(0.03, seed=1)
    water = molecule("H2O")
    water.center(vacuum=4.0)
    return [slab, cell, water]


class _Counting:
    """Wraps a calculator with calculate_batch and records how many structures each call packs."""

    def __init__(self, calc) -> None:
        self.calc = calc
        self.conservative = calc.conservative
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def calculate_batch(self, structures, compute_stress=None):
        self.sizes.append(len(structures))
        self.threads.add(threading.current_thread().name)
        return self.calc.calculate_batch(structures, compute_stress=compute_stress)


@pytest.mark.parametrize(
    "settings",
    [
        {"ensemble": "nve", "temperature_K": 300.0},
        {"ensemble": "nvt", "thermostat": "langevin", "temperature_K": [200.0, 500.0, 300.0]},
        {"ensemble": "nvt", "thermostat": "bussi", "temperature_K": 400.0, "taut_fs": 20.0},
    ],
    ids=["nve", "langevin", "bussi"],
)
def test_replicas_follow_run_md_alone(calc64, tmp_path, settings):
    """Every replica's frames equal those of run_md on the same structure, seed and settings."""
    structures = _structures()
    counting = _Counting(calc64)
    summaries = run_md_batch(
        structures, counting, steps=12, interval=4, timestep_fs=1.0, trajectory_dir=tmp_path / "batch",
        progress=False, plot=False, **settings,
    )
    assert len(summaries) == 3
    # One packed call per MD step (13 evaluations: step 0 and 12 steps), always with all replicas.
    assert counting.sizes == [3] * 13
    assert counting.threads == {threading.main_thread().name}  # evaluations stay in the calling thread
    for index, atoms in enumerate(structures):
        single = {k: (v[index] if isinstance(v, list) else v) for k, v in settings.items()}
        run_md(atoms, calc64, steps=12, interval=4, timestep_fs=1.0, seed=index,
               trajectory=tmp_path / f"single_{index}.traj", progress=False, plot=False, **single)
        alone = read(tmp_path / f"single_{index}.traj", ":")
        batched = read(summaries[index].trajectory, ":")
        assert len(batched) == len(alone) == 4
        for a, b in zip(alone, batched):
            np.testing.assert_allclose(b.positions, a.positions, atol=1e-9, rtol=0)
            np.testing.assert_allclose(b.get_momenta(), a.get_momenta(), atol=1e-9, rtol=0)
            assert abs(b.get_potential_energy() - a.get_potential_energy()) < 1e-8


def test_one_structure_with_n_replicas_draws_different_velocities(calc64, tmp_path):
    atoms = _structures()[1]
    summaries = run_md_batch(atoms, calc64, n_replicas=3, steps=4, interval=2, ensemble="nvt",
                             trajectory_dir=tmp_path, progress=False, plot=False)
    first_frames = [read(s.trajectory, 0) for s in summaries]
    momenta = [frame.get_momenta() for frame in first_frames]
    assert not np.allclose(momenta[0], momenta[1]) and not np.allclose(momenta[1], momenta[2])
    assert sorted(p.name for p in tmp_path.glob("*.traj")) == [f"replica_00{i}.traj" for i in range(3)]


def test_replicas_with_different_step_counts_leave_the_batch(calc64, tmp_path):
    """A restarted run: one replica already finished, the others continue; calls shrink as they end."""
    structures = _structures()
    run_md_batch(structures, calc64, steps=4, interval=2, ensemble="nve", trajectory_dir=tmp_path,
                 progress=False, plot=False)
    counting = _Counting(calc64)
    summaries = run_md_batch(structures, counting, steps=8, interval=2, ensemble="nve", trajectory_dir=tmp_path,
                             progress=False, plot=False)
    assert all(s.restarted and s.start_step == 4 and s.steps_run == 4 for s in summaries)
    assert counting.sizes == [3] * 5  # the restart point is evaluated again, then 4 steps
    frames = read(summaries[0].trajectory, ":")
    assert [f.info["md_step"] for f in frames] == [0, 2, 4, 6, 8]


def test_a_failing_replica_stops_alone(calc64, tmp_path):
    """A replica that cannot be evaluated (an element the model lacks) fails; the others finish."""
    bad = Atoms("Cu2U", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0]], cell=[9, 9, 9], pbc=True)
    structures = [_structures()[1], bad, _structures()[2]]
    with pytest.raises(ReplicaError, match=r"1 of 3 replica\(s\) failed \(replica 1: ") as caught:
        run_md_batch(structures, calc64, steps=3, interval=1, ensemble="nve", trajectory_dir=tmp_path,
                     progress=False, plot=False)
    summaries = caught.value.summaries
    assert summaries[1] is None and set(caught.value.errors) == {1}
    assert summaries[0].steps_run == 3 and summaries[2].steps_run == 3


def test_callback_sees_each_replica_and_step(tmp_path):
    seen: list[tuple[int, int]] = []
    cells = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("Pt", "fcc", a=3.95, cubic=True)]
    run_md_batch(cells, EMT(), steps=3, interval=3, ensemble="nvt", temperature_K=[100.0, 200.0],
                 trajectory_dir=tmp_path, progress=False, plot=False,
                 callback=lambda index, atoms, step: seen.append((index, step)))
    assert sorted(seen) == [(i, s) for i in range(2) for s in (1, 2, 3)]


def test_bad_input_is_refused_before_any_replica_starts(calc64, tmp_path):
    cells = [bulk("Cu", "fcc", a=3.6, cubic=True)] * 2
    with pytest.raises(ValueError, match="temperature_K has 3 entries for 2 replicas"):
        run_md_batch(cells, calc64, temperature_K=[1.0, 2.0, 3.0], trajectory_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="replica 1: ensemble must be one of"):
        run_md_batch(cells, calc64, ensemble=["nve", "nvx"], trajectory_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="replica 0: timestep_fs must be a positive"):
        run_md_batch(cells, calc64, timestep_fs=-1.0, trajectory_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="n_replicas must be a positive integer"):
        run_md_batch(cells[0], calc64, trajectory_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="n_replicas=3 but 2 structures"):
        run_md_batch(cells, calc64, n_replicas=3, trajectory_dir=tmp_path, progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument.*frictoin"):
        run_md_batch(cells, calc64, frictoin=0.1, trajectory_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("*.traj"))


_INTERRUPTIBLE = """
import sys, time
from ase.build import bulk
from ase.calculators.emt import EMT
from escn_ase.workflows.md_batch import run_md_batch

cells = [bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), bulk("Pt", "fcc", a=3.95, cubic=True).repeat(2)]
slow = sys.argv[1] == "slow"
def pace(index, atoms, step):
    if slow:
        time.sleep(0.05)
run_md_batch(cells, EMT(), steps=60, interval=5, ensemble="nvt", temperature_K=[300.0, 600.0],
             trajectory_dir=sys.argv[2], progress=False, plot=False, callback=pace)
print("done")
"""


def test_interrupted_batch_continues_to_the_frames_of_an_uninterrupted_one(tmp_path):
    """Ctrl-C (SIGINT) mid-run, then a rerun: every replica ends with the frames of a run never stopped."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "replicas.py"
    script.write_text(_INTERRUPTIBLE)
    reference = subprocess.run([sys.executable, str(script), "fast", str(tmp_path / "once")], capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    process = subprocess.Popen([sys.executable, str(script), "slow", str(tmp_path / "twice")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "twice" / "replica_000.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 4):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    interrupted = [len(read(tmp_path / "twice" / f"replica_00{i}.traj", ":")) for i in range(2)]
    assert all(1 < n < 13 for n in interrupted), interrupted  # stopped part-way
    again = subprocess.run([sys.executable, str(script), "fast", str(tmp_path / "twice")], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    for index in range(2):
        once = read(tmp_path / "once" / f"replica_00{index}.traj", ":")
        twice = read(tmp_path / "twice" / f"replica_00{index}.traj", ":")
        assert [f.info["md_step"] for f in twice] == list(range(0, 61, 5))
        for a, b in zip(once, twice):
            np.testing.assert_allclose(b.positions, a.positions, atol=1e-10, rtol=0)


def test_npt_replicas_get_the_stress_and_follow_run_md(calc64, tmp_path):
    """NPT needs the stress: the packed call computes it for 3D-periodic replicas, as a single call does."""
    cells = []
    for seed, a in ((1, 3.60), (2, 3.66)):
        cell = bulk("Cu", "fcc", a=a, cubic=True)
        cell.rattle(0.02, seed=seed)
        cells.append(cell)
    settings = dict(ensemble="npt", temperature_K=300.0, timestep_fs=2.0, pressure_bar=1e4, pdamp_fs=100.0,
                    taut_fs=50.0, interval=3, progress=False, plot=False)
    summaries = run_md_batch(cells, calc64, steps=6, trajectory_dir=tmp_path / "batch", **settings)
    for index, cell in enumerate(cells):
        run_md(cell, calc64, steps=6, seed=index, trajectory=tmp_path / f"single_{index}.traj", **settings)
        alone, batched = read(tmp_path / f"single_{index}.traj", -1), read(summaries[index].trajectory, -1)
        assert summaries[index].mean_pressure_GPa is not None
        np.testing.assert_allclose(batched.cell[:], alone.cell[:], atol=1e-9, rtol=0)
        np.testing.assert_allclose(batched.positions, alone.positions, atol=1e-9, rtol=0)
