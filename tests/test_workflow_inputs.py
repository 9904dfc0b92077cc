"""Workflow arguments that cannot work are refused at once, naming the parameter."""

import math

import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from escn_ase.workflows.md import run_md
from escn_ase.workflows.relax import relax


def _crystal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.02, seed=1)
    return atoms


@pytest.mark.parametrize("fmax", [math.nan, 0.0, -1.0, math.inf])
def test_relax_refuses_a_force_threshold_that_cannot_be_reached_or_checked(fmax, tmp_path):
    with pytest.raises(ValueError, match="fmax must be a positive finite force"):
        relax(_crystal(), EMT(), fmax=fmax)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(timestep_fs=math.nan), "timestep_fs must be a positive finite"),
        (dict(timestep_fs=math.inf), "timestep_fs must be a positive finite"),
        (dict(temperature_K=math.nan), "temperature_K must be a finite temperature"),
        (dict(temperature_K=math.inf), "temperature_K must be a finite temperature"),
        (dict(friction_per_fs=-0.01), "friction_per_fs must be a finite number >= 0"),
        (dict(thermostat="bussi", taut_fs=0.0), "taut_fs must be a positive finite number"),
        (dict(pdamp_fs=math.nan), "pdamp_fs must be a positive finite number"),
    ],
)
def test_md_refuses_settings_that_cannot_work(settings, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_md(_crystal(), EMT(), steps=2, trajectory=tmp_path / "md.traj", progress=False, plot=False, **settings)


def test_screening_into_a_file_instead_of_a_directory_is_refused(tmp_path):
    from escn_ase.workflows.adsorption import screen_adsorption

    target = tmp_path / "results"
    target.write_text("a file")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        screen_adsorption(["Cu(111)"], ["O"], "emt", output_dir=target)


def test_results_lines_that_are_not_records_are_skipped_with_a_warning(tmp_path):
    from escn_ase.workflows.adsorption import read_results

    path = tmp_path / "results.jsonl"
    path.write_text('[1, 2, 3]\n"text"\n{"key": "a", "status": "ok"}\n')
    with pytest.warns(UserWarning, match="not a result record"):
        records = read_results(path)
    assert list(records) == ["a"]


def test_phonons_of_a_cell_without_volume_are_refused():
    from escn_ase.workflows.phonons import compute_phonons

    flat = Atoms("Cu", cell=[[2.5, 0, 0], [0, 2.5, 0], [0, 0, 0]], pbc=True)
    with pytest.raises(ValueError, match="volume"):
        compute_phonons(flat, EMT())
