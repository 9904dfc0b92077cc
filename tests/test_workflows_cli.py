"""CLI subcommands relax / md / adsorb / phonons: help texts and small runs with --emt."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.io import read, write

from escn_ase.cli import main, read_structure


@pytest.mark.parametrize(
    "command, options",
    [
        ("relax", ["--fmax", "--relax-cell", "--fix-bottom-layers", "--optimizer", "--emt", "--checkpoint"]),
        ("md", ["--ensemble", "--temperature", "--timestep", "--thermostat", "--pressure", "--no-restart", "--replicas",
                "--replicas-dir"]),
        ("adsorb", ["--surfaces", "--adsorbates", "--workers", "--scheduler", "--max-jobs", "--out", "--batched",
                    "--max-batch-atoms"]),
        ("phonons", ["--supercell", "--displacement", "--mesh", "--path", "--plot"]),
        ("download", ["--list", "--force", "--offline", "--cache-dir"]),
    ],
)
def test_help_lists_the_options(command, options, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text, option


def test_relax_and_md_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    slab = fcc111("Cu", (1, 1, 3), vacuum=5.0, periodic=True)
    slab.positions[-1] += [0.1, 0.0, 0.1]
    del slab.info["adsorbate_info"]  # ase's site table, which extxyz cannot store
    write("slab.extxyz", slab)
    assert main(["relax", "slab.extxyz", "--emt", "--fix-bottom-layers", "1", "--logfile", "relax.log"]) == 0
    summary = json.loads(capsys.readouterr().out)
    relaxed = read(summary["output"])
    relaxed.calc = EMT()
    assert np.abs(relaxed.get_forces()[1:]).max() < 0.05 and summary["converged"]

    assert main(["md", "slab_relaxed.extxyz", "--emt", "--steps", "6", "--interval", "3", "--no-progress"]) == 0
    md_summary = json.loads(capsys.readouterr().out)
    assert md_summary["frames"] == 3 and (tmp_path / "md.png").exists() and (tmp_path / "md.csv").exists()


def test_phonons_and_adsorb_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "phonons",
                "--bulk",
                "Cu",
                "-a",
                "3.59",
                "--emt",
                "--supercell",
                "2",
                "--mesh",
                "4",
                "--npoints",
                "5",
                "--json",
                "ph.json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert len(json.loads((tmp_path / "ph.json").read_text())["gamma_frequencies_THz"]) == 3
    assert (tmp_path / "phonons.png").exists()

    assert (
        main(
            [
                "adsorb",
                "--surfaces",
                "Cu(111)",
                "--adsorbates",
                "O",
                "--emt",
                "--workers",
                "0",
                "--sites",
                "ontop",
                "--layers",
                "3",
                "--size",
                "1",
                "1",
                "--fix-bottom-layers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "E(slab+O) - E(slab) - 0.5 E(O2)" in out and "Cu(111)" in out
    assert (tmp_path / "adsorption" / "adsorption.csv").exists()


def test_md_replicas(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "cu.extxyz", bulk("Cu", "fcc", a=3.6, cubic=True))
    command = ["md", "cu.extxyz", "--emt", "--steps", "4", "--interval", "2", "--no-progress"]
    assert main(command + ["--temperature", "100", "900", "--seed", "5"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert len(summaries) == 2 and all(s["frames"] == 3 for s in summaries)
    assert summaries[0]["mean_temperature_K"] < summaries[1]["mean_temperature_K"]
    assert sorted(p.name for p in (tmp_path / "md_replicas").glob("*.traj")) == ["replica_000.traj", "replica_001.traj"]
    assert main(command + ["--replicas", "3", "--replicas-dir", "three"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3 and len(list((tmp_path / "three").glob("*.csv"))) == 3
    assert main(command + ["--replicas", "3", "--temperature", "100", "200"]) == 1
    assert "escn-ase: error: --temperature has 2 values for 3 replicas" in capsys.readouterr().err


def test_adsorb_batched_runs_in_process_and_refuses_workers(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["adsorb", "--surfaces", "Cu(111)", "--adsorbates", "O", "--sites", "ontop", "--layers", "3",
              "--size", "1", "1", "--fix-bottom-layers", "1", "--no-progress", "--batched"]
    assert main(common + ["--max-batch-atoms", "40"]) == 0
    out = capsys.readouterr().out
    assert "E(slab+O) - E(slab) - 0.5 E(O2)" in out and "3 run now, 0 failed" in out
    records = [json.loads(line) for line in (tmp_path / "adsorption" / "results.jsonl").read_text().splitlines()]
    assert {r["key"].split("|")[0] for r in records} == {"slab", "gas", "ads"}
    assert main(common + ["--workers", "2", "--out", "other"]) == 1
    assert "escn-ase: error: mode='batched' runs every job in this process" in capsys.readouterr().err
    assert main(common + ["--optimizer", "BFGS", "--out", "other"]) == 1
    assert "relaxes with FIRE or LBFGS" in capsys.readouterr().err


def test_structures_that_ase_cannot_read_go_through_pymatgen(tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    path = tmp_path / "structure.json"  # pymatgen's JSON: ase.io takes .json for its database format
    AseAtomsAdaptor.get_structure(crystal).to(filename=str(path))
    atoms = read_structure(str(path))
    np.testing.assert_allclose(atoms.cell, crystal.cell, atol=1e-8)
    assert atoms.get_chemical_formula() == "Cu4"
    with pytest.raises(FileNotFoundError):
        read_structure(str(tmp_path / "missing.cif"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "missing.extxyz"], "No such file"),
        (["info", "--checkpoint", "not-a-checkpoint.txt"], "could not be read as a torch checkpoint"),
        (["eval", "h2o.xyz", "--checkpoint", "nowhere.pt"], "checkpoint not found"),
        (["eval", "au.xyz"], "not covered by this model"),
    ],
)
def test_runtime_errors_print_one_line_and_exit_1(argv, message, tmp_path, capsys, monkeypatch):
    from ase.io import write

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESCN_ASE_DEBUG", raising=False)
    (tmp_path / "not-a-checkpoint.txt").write_text("hello")
    write(tmp_path / "h2o.xyz", Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    write(tmp_path / "au.xyz", Atoms("U", positions=[[0, 0, 0]]))
    assert main(argv) == 1
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith("escn-ase: error: ") and message in error_lines[0]
    with pytest.raises(Exception) as raised:  # noqa: B017  --debug: the exception itself, with its traceback
        main(["--debug", *argv])
    assert message in str(raised.value) or message in type(raised.value).__name__


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("escn-ase ")


def test_eval_writes_energy_forces_and_stress_to_a_file(tmp_path, capsys):
    from escn_ase import ESCNCalculator

    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.rattle(0.05, seed=1)
    slab = fcc111("Cu", (2, 2, 2), vacuum=5.0)  # periodic in x, y only: no stress
    del slab.info["adsorbate_info"]  # ase's site table, which extxyz cannot store
    write(tmp_path / "in.extxyz", [cell, slab])
    out = tmp_path / "out.extxyz"
    assert main(["eval", str(tmp_path / "in.extxyz"), "--output", str(out), "--threads", "1", "--device", "cpu"]) == 0
    assert "wrote 2 frame(s)" in capsys.readouterr().out
    frames = read(out, index=":")
    reference = cell.copy()
    reference.calc = ESCNCalculator(device="cpu")
    assert frames[0].get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-5)
    np.testing.assert_allclose(frames[0].get_forces(), reference.get_forces(), atol=1e-5)
    np.testing.assert_allclose(frames[0].get_stress(), reference.get_stress(), atol=1e-6)
    assert "stress" not in frames[1].calc.results and frames[1].get_forces().shape == (8, 3)


def test_model_options_have_help_texts(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "float64 (finite-difference checks" in text and "--threads THREADS CPU threads" in text
    assert main(["info", "--threads", "0"]) == 1
    assert "threads must be a positive integer" in capsys.readouterr().err
