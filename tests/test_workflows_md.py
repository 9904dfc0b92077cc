"""run_md(): restart from the trajectory, thermo log consistency, NPT, settings checks."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read

from escn_ase.workflows.md import run_md


class _Interrupted(Exception):
    pass


def _crystal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=7)
    return atoms


def _stop_at(step_to_stop):
    def callback(atoms, step):
        if step == step_to_stop:
            raise _Interrupted

    return callback


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", ["nve", "nvt"])
def test_interrupted_and_continued_run_equals_uninterrupted(workflow_calc, tmp_path, ensemble):
    settings = dict(
        ensemble=ensemble, temperature_K=500.0, timestep_fs=2.0, steps=8, interval=2, seed=3, progress=False, plot=False
    )
    full = run_md(_crystal(), workflow_calc, trajectory=tmp_path / "full.traj", **settings)

    with pytest.raises(_Interrupted):  # killed after step 5: frames 0, 2, 4 are on disk
        run_md(_crystal(), workflow_calc, trajectory=tmp_path / "piece.traj", callback=_stop_at(5), **settings)
    assert len(read(tmp_path / "piece.traj", ":")) == 3
    continued = run_md(_crystal(), workflow_calc, trajectory=tmp_path / "piece.traj", **settings)

    assert continued.restarted and continued.start_step == 4 and continued.steps_run == 4
    frames_full = read(tmp_path / "full.traj", ":")
    frames_piece = read(tmp_path / "piece.traj", ":")
    assert len(frames_piece) == len(frames_full) == full.frames == continued.frames == 5
    assert [f.info["md_step"] for f in frames_piece] == [0, 2, 4, 6, 8]
    # the continued frames follow the same trajectory (NVE is deterministic; Langevin's random
    # stream is restored from the state file)
    for a, b in zip(frames_full[-3:], frames_piece[-3:]):
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-8)
        np.testing.assert_allclose(b.get_momenta(), a.get_momenta(), atol=1e-8)
    with open(tmp_path / "piece.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == [0, 2, 4, 6, 8]


def test_thermo_log_matches_frames_and_nve_conserves_energy(tmp_path):
    summary = run_md(
        _crystal(),
        EMT(),
        ensemble="nve",
        temperature_K=300.0,
        timestep_fs=1.0,
        steps=40,
        interval=10,
        trajectory=tmp_path / "nve.traj",
        progress=False,
    )
    frames = read(tmp_path / "nve.traj", ":")
    with open(tmp_path / "nve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(frames) == 5
    for row, frame in zip(rows, frames):
        n_dof = 3 * len(frame)
        kinetic = 0.5 * (frame.get_momenta() ** 2 / frame.get_masses()[:, None]).sum()
        assert float(row["ekin_eV"]) == pytest.approx(kinetic, rel=1e-9)
        assert float(row["temperature_K"]) == pytest.approx(2 * kinetic / (n_dof * units.kB), rel=1e-9)
        assert float(row["epot_eV"]) == pytest.approx(frame.get_potential_energy(), rel=1e-9)
        assert float(row["time_fs"]) == pytest.approx(frame.info["md_step"] * 1.0)
    assert abs(summary.energy_drift_eV_per_atom_per_ps) < 0.05
    assert summary.max_energy_deviation_eV_per_atom < 1e-3
    assert (tmp_path / "nve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "nve.summary.json").exists()


def test_npt_changes_the_volume_and_logs_pressure(workflow_calc, tmp_path):
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)  # expanded: the barostat must shrink it
    summary = run_md(
        atoms,
        workflow_calc,
        ensemble="npt",
        temperature_K=300.0,
        timestep_fs=2.0,
        steps=10,
        interval=5,
        pdamp_fs=100.0,
        taut_fs=50.0,
        trajectory=tmp_path / "npt.traj",
        progress=False,
        plot=False,
    )
    volumes = [f.get_volume() for f in read(tmp_path / "npt.traj", ":")]
    # the stiff barostat (pdamp 100 fs on a 4-atom cell) oscillates: compare the average, not the last frame
    assert np.mean(volumes[1:]) < volumes[0]
    assert summary.mean_pressure_GPa is not None and summary.mean_volume_A3 is not None


def test_restart_refuses_changed_settings_and_other_structures(tmp_path):
    trajectory = tmp_path / "md.traj"
    run_md(_crystal(), EMT(), ensemble="nvt", steps=4, interval=2, trajectory=trajectory, progress=False, plot=False)
    with pytest.raises(ValueError, match="timestep_fs"):
        run_md(
            _crystal(),
            EMT(),
            ensemble="nvt",
            steps=8,
            interval=2,
            timestep_fs=2.0,
            trajectory=trajectory,
            progress=False,
            plot=False,
        )
    with pytest.raises(ValueError, match="restart=False"):
        run_md(
            bulk("Cu", cubic=True).repeat(2),
            EMT(),
            ensemble="nvt",
            steps=8,
            interval=2,
            trajectory=trajectory,
            progress=False,
            plot=False,
        )
    fresh = run_md(
        _crystal(),
        EMT(),
        ensemble="nvt",
        steps=2,
        interval=2,
        trajectory=trajectory,
        restart=False,
        progress=False,
        plot=False,
    )
    assert fresh.frames == 2 and not fresh.restarted
    with pytest.raises(ValueError, match="ensemble must be one of"):
        run_md(_crystal(), EMT(), ensemble="nph", trajectory=tmp_path / "x.traj")


@pytest.mark.parametrize("cut_bytes", [10, 300])
def test_restart_after_a_torn_trajectory_continues_from_the_last_complete_frame(tmp_path, cut_bytes):
    """A job killed while writing a frame left a torn file; continuing raised JSONDecodeError or
    'buffer is smaller than requested size'."""
    trajectory = tmp_path / "md.traj"
    settings = dict(ensemble="nve", timestep_fs=2.0, interval=2, progress=False, plot=False, trajectory=trajectory)
    run_md(_crystal(), EMT(), steps=8, **settings)  # frames at steps 0, 2, 4, 6, 8
    trajectory.write_bytes(trajectory.read_bytes()[:-cut_bytes])
    (tmp_path / "md.state.json").write_text('{"step": 8, "settings": {"ensem')  # torn as well
    with pytest.warns(UserWarning) as record:
        continued = run_md(_crystal(), EMT(), steps=12, **settings)
    messages = " | ".join(str(warning.message) for warning in record)
    assert "incomplete frame" in messages and "md.state.json is incomplete" in messages
    assert continued.restarted and continued.start_step in (4, 6)
    steps = [frame.info["md_step"] for frame in read(trajectory, ":")]
    assert steps == list(range(0, 13, 2))


def test_restart_from_a_file_that_is_no_trajectory_explains_what_to_do(tmp_path):
    trajectory = tmp_path / "md.traj"
    trajectory.write_text("not a trajectory")
    with pytest.raises(ValueError, match="restart=False"):
        run_md(_crystal(), EMT(), steps=2, trajectory=trajectory, progress=False, plot=False)
