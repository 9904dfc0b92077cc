"""Adsorption screening: sites, placement, anomaly flags, references, Dask execution with resume."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc111, molecule
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.data import covalent_radii
from ase.optimize import BFGS

from escn_ase.workflows._common import CalculatorFactory
from escn_ase.workflows.adsorbates import ADSORBATES, Adsorbate
from escn_ase.workflows.adsorption import _run_job, anomaly_flags, build_jobs, read_results, screen_adsorption
from escn_ase.workflows.surfaces import as_surface, find_sites, place_adsorbate


def test_sites_of_fcc111_and_fcc100():
    kinds_111 = [s.kind for s in find_sites(as_surface("Cu(111)", layers=3).slab)]
    assert sorted(kinds_111) == ["bridge", "hollow", "hollow", "ontop"]  # fcc and hcp hollows
    sites_100 = find_sites(as_surface("Pt(100)", layers=3).slab)
    assert {s.kind: s.coordination for s in sites_100} == {"ontop": 1, "bridge": 2, "hollow": 4}


@pytest.mark.parametrize("surface", ["Pt(100)", "Cu(111)", "Pt(110)"])
def test_sites_of_a_1x1_cell_count_periodic_images(surface):
    """In a 1x1 cell the atoms around a site are images of one atom: a (100) hollow is still four-fold."""
    def kinds(size):
        return sorted((s.kind, s.coordination) for s in find_sites(as_surface(surface, layers=3, size=size).slab))

    assert kinds((1, 1)) == kinds((2, 2))


def test_placement_puts_the_binding_atom_at_bond_length():
    slab = as_surface("Cu(111)", layers=3).slab
    for site in find_sites(slab):
        combined = place_adsorbate(slab, ADSORBATES["O"], site)
        distances = combined.get_distances(len(slab), list(range(len(slab))), mic=True)
        expected = covalent_radii[8] + covalent_radii[29]
        assert distances.min() == pytest.approx(expected, abs=1e-6), site


def test_references_balance_atoms():
    for adsorbate in ADSORBATES.values():  # checked at construction; spot-check one by hand too
        assert adsorbate.reference_formula.startswith(f"E(slab+{adsorbate.name}) - E(slab)")
    assert ADSORBATES["O"].reference == (("O2", 0.5),)
    with pytest.raises(ValueError, match="left over"):
        Adsorbate("OH", ("O", "H"), ((0, 0, 0), (0, 0, 1)), (("O2", 0.5),))


def test_anomaly_flags_on_hand_made_geometries():
    slab = fcc111("Cu", (2, 2, 3), vacuum=8.0, periodic=True)
    n_slab = len(slab)
    initial = slab + Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])
    initial.positions[n_slab:] += slab.positions[-1] + [0, 0, 1.9]

    def flags(change):
        final = initial.copy()
        change(final)
        return anomaly_flags(initial, final, n_slab, binding_index=0)

    assert flags(lambda a: None) == flags(lambda a: None) | {
        "desorbed": False,
        "dissociated": False,
        "surface_changed": False,
    }

    def desorb(a):
        a.positions[n_slab:] += [0, 0, 3.0]

    def dissociate(a):
        a.positions[-1] += [0, 0, 1.5]

    def reconstruct(a):
        a.positions[n_slab - 1] += [0.8, 0, 0]

    assert flags(desorb)["desorbed"] and not flags(desorb)["dissociated"]
    assert flags(dissociate)["dissociated"] and not flags(dissociate)["desorbed"]
    assert flags(reconstruct)["surface_changed"] and flags(reconstruct)["max_surface_displacement_A"] == pytest.approx(
        0.8
    )


def test_jobs_pickle_and_factories_refuse_instances(tmp_path):
    jobs = build_jobs([as_surface("Cu(111)", layers=3, size=(2, 2))], [ADSORBATES["O"]], site_types=("ontop",))
    assert [j.key for j in jobs] == ["slab|Cu(111)", "gas|O2", "ads|Cu(111)|O|ontop|0"]
    clone = pickle.loads(pickle.dumps((jobs[-1], CalculatorFactory("emt"))))
    record = _run_job(*clone)
    assert record["status"] == "ok" and record["converged"]
    with pytest.raises(TypeError, match="factory"):
        screen_adsorption(["Cu(111)"], ["O"], calculator=EMT(), output_dir=tmp_path)


def _direct_adsorption_energy(slab: Atoms, adsorbed: Atoms, n_fixed: int) -> float:
    """E(slab+O) - E(slab) - 1/2 E(O2) with plain ASE (BFGS, FixAtoms) and EMT, no workflow code."""
    energies = []
    for atoms in (adsorbed.copy(), slab.copy()):
        atoms.set_constraint(FixAtoms(indices=list(range(n_fixed))))
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=0.01, steps=300)
        energies.append(atoms.get_potential_energy())
    oxygen = molecule("O2")
    oxygen.center(vacuum=6.0)
    oxygen.calc = EMT()
    BFGS(oxygen, logfile=None).run(fmax=0.01, steps=300)
    return energies[0] - energies[1] - 0.5 * oxygen.get_potential_energy()


def test_adsorption_energy_against_direct_calculation(tmp_path):
    result = screen_adsorption(
        ["Cu(111)"],
        ["O"],
        calculator="emt",
        output_dir=tmp_path,
        n_workers=0,
        site_types=("hollow",),
        max_sites_per_type=1,
        layers=3,
        size=(2, 2),
        fix_bottom_layers=1,
        fmax=0.01,
        progress=False,
    )
    (row,) = result.rows
    slab = as_surface("Cu(111)", layers=3, size=(2, 2)).slab
    adsorbed = place_adsorbate(slab, ADSORBATES["O"], find_sites(slab, ("hollow",))[0])
    expected = _direct_adsorption_energy(slab, adsorbed, n_fixed=4)
    assert row["adsorption_energy_eV"] == pytest.approx(expected, abs=2e-3)
    assert row["reference"] == "E(slab+O) - E(slab) - 0.5 E(O2)"
    assert row["is_minimum"] and not row["anomaly"]


@pytest.mark.slow
def test_dask_screening_interrupted_and_resumed(tmp_path):
    distributed = pytest.importorskip("distributed")
    settings = dict(
        surfaces=["Cu(111)", "Pt(100)"],
        adsorbates=["O", "H"],
        calculator=CalculatorFactory(None),
        output_dir=tmp_path,
        site_types=("ontop", "bridge"),
        max_sites_per_type=1,
        layers=3,
        size=(1, 1),
        fix_bottom_layers=1,
        steps=200,
        progress=False,
    )
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        first = screen_adsorption(executor=client, max_jobs=5, **settings)  # "killed" after 5 jobs
        assert first.n_run == 5 and not first.complete and len(first.missing) == first.n_jobs - 5
        results = tmp_path / "results.jsonl"
        lines_before = results.read_text().splitlines()
        assert len(lines_before) == 5
        with open(results, "a") as handle:  # a record torn by the kill
            handle.write('{"key": "ads|Cu(111)|O|ontop|0", "status": "o')

        second = screen_adsorption(executor=client, **settings)

    # 2 slabs + O2 + H2 + 2 surfaces x 2 adsorbates x 2 sites
    assert second.n_jobs == 12 and second.complete and second.n_failed == 0
    assert second.n_done_before == 5 and second.n_run == 7  # nothing finished was repeated
    lines = results.read_text().splitlines()
    assert lines[:5] == lines_before  # nothing lost
    keys = [json.loads(line)["key"] for line in lines[6:]]  # after the torn line
    assert len(keys) == 7 and not set(keys) & {json.loads(line)["key"] for line in lines_before}
    assert len(read_results(results)) == 12
    assert len(second.rows) == 8 and all(r["adsorption_energy_eV"] is not None for r in second.rows)
    assert {(m["surface"], m["adsorbate"]) for m in second.minima} == {
        (s, a) for s in ("Cu(111)", "Pt(100)") for a in ("O", "H")
    }
    for name in ("adsorption.csv", "adsorption.json", "adsorption.png", "structures.extxyz"):
        assert (tmp_path / name).exists()
    table = json.loads((tmp_path / "adsorption.json").read_text())
    assert table["references"]["H"] == "E(slab+H) - E(slab) - 0.5 E(H2)" and table["complete"]
    assert set(table["gas_energies_eV"]) == {"O2", "H2"}


def test_changed_settings_are_not_mixed_into_old_results(tmp_path):
    settings = dict(
        calculator="emt",
        output_dir=tmp_path,
        n_workers=0,
        site_types=("ontop",),
        layers=3,
        size=(1, 1),
        fix_bottom_layers=1,
        progress=False,
    )
    screen_adsorption(["Cu(111)"], ["H"], **settings)
    with pytest.raises(ValueError, match="different structure or settings"):
        screen_adsorption(["Cu(111)"], ["H"], fmax=0.02, **settings)
    np.testing.assert_equal(len(read_results(tmp_path / "results.jsonl")), 3)


def _broken_calculator():
    raise RuntimeError("no calculator today")


def test_a_screening_whose_jobs_all_failed_raises(tmp_path):
    from escn_ase.errors import ScreeningError

    with pytest.raises(ScreeningError, match="all 3 job"):
        screen_adsorption(
            ["Cu(111)"],
            ["O"],
            calculator=_broken_calculator,
            output_dir=tmp_path,
            n_workers=0,
            site_types=("hollow",),
            max_sites_per_type=1,
            layers=3,
            size=(2, 2),
            progress=False,
        )
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["status"] == "failed" for r in records)
    assert "no calculator today" in records[0]["error"]


_SCRIPT = """
from escn_ase.workflows import screen_adsorption
{call}screen_adsorption(["Cu(111)"], ["O"], calculator="emt", output_dir="out", n_workers=2, site_types=("hollow",),
{indent}                  max_sites_per_type=1, layers=3, size=(2, 2), progress=False)
{indent}print("rows written")
"""


@pytest.mark.parametrize("guarded", [False, True], ids=["pasted", "guarded"])
def test_screening_from_a_script_with_and_without_main_guard(tmp_path, guarded):
    """A script pasted without `if __name__ == "__main__":` still writes its rows (the jobs then run in
    the script's process, with a warning); a guarded script uses worker processes."""
    import subprocess
    import sys

    script = _SCRIPT.format(
        call='if __name__ == "__main__":\n    ' if guarded else "", indent="    " if guarded else ""
    )
    (tmp_path / "screen.py").write_text(script)
    run = subprocess.run(
        [sys.executable, "screen.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("rows written") == 1  # the script ran once, not once more per worker
    assert ("outside an `if __name__" in run.stderr) is not guarded
    rows = (tmp_path / "out" / "adsorption.csv").read_text().splitlines()
    assert len(rows) == 2  # header + one hollow site


# ------------------------------------------------------------------------------------- batched mode
_BATCHED_SETTINGS = dict(
    surfaces=["Cu(111)", "Cu(100)"],
    adsorbates=["O", "H"],
    site_types=("ontop", "bridge"),
    max_sites_per_type=1,
    layers=3,
    size=(1, 1),
    fix_bottom_layers=1,
    steps=200,
    optimizer="LBFGS",
    progress=False,
)


class _InterruptedModel:
    """The default model that is 'killed' (KeyboardInterrupt) at its n-th batched evaluation, recording
    how many structures each evaluation packs."""

    def __init__(self, after: int) -> None:
        from escn_ase import ESCNCalculator

        self.model = ESCNCalculator()
        self.config = self.model.config
        self.after = after
        self.sizes: list[int] = []

    def get_forces(self, atoms):
        return self.model.get_forces(atoms)

    def evaluate(self, structures):
        if len(self.sizes) == self.after:
            raise KeyboardInterrupt
        self.sizes.append(len(structures))
        return self.model.evaluate(structures)


_INTERRUPTED: list[_InterruptedModel] = []


def _interrupted_model(after: int) -> _InterruptedModel:
    _INTERRUPTED.append(_InterruptedModel(after))
    return _INTERRUPTED[-1]


def test_batched_screening_matches_the_executor_and_packs_structures(tmp_path):
    """Same jobs, LBFGS both ways: batched (many structures per model call) and one job at a time
    reach the same adsorption energies (within 2 meV) and the same anomaly flags."""
    executor = screen_adsorption(calculator=CalculatorFactory(None), output_dir=tmp_path / "executor",
                                 n_workers=0, **_BATCHED_SETTINGS)
    recording = CalculatorFactory(_interrupted_model, {"after": 10**9})
    batched = screen_adsorption(calculator=recording, output_dir=tmp_path / "batched", mode="batched",
                                **_BATCHED_SETTINGS)
    assert max(_INTERRUPTED[-1].sizes) >= 8  # 12 jobs: the first calls pack most of them
    assert batched.complete and batched.n_run == executor.n_run == 12
    # every job converges, so both routes end at a minimum (a run that hits the step limit ends
    # wherever the path has gone, and tiny differences of the packed graph's sums move that point)
    assert all(row["converged"] for row in executor.rows + batched.rows)
    by_key = {row["key"]: row for row in executor.rows}
    for row in batched.rows:
        other = by_key[row["key"]]
        assert row["adsorption_energy_eV"] == pytest.approx(other["adsorption_energy_eV"], abs=2e-3)
        assert [row[f] for f in ("desorbed", "dissociated", "surface_changed")] == [
            other[f] for f in ("desorbed", "dissociated", "surface_changed")
        ]
    assert [(m["surface"], m["adsorbate"], m["site"]) for m in batched.minima] == [
        (m["surface"], m["adsorbate"], m["site"]) for m in executor.minima
    ]


def test_batched_screening_interrupted_and_resumed(tmp_path):
    """Killed part-way (KeyboardInterrupt inside a model call): the records of finished structures are
    on disk; a rerun runs only the others, with no repeats and no lost rows."""
    with pytest.raises(KeyboardInterrupt):  # in the 7th of the 14 model calls the default model needs
        screen_adsorption(calculator=CalculatorFactory(_interrupted_model, {"after": 6}), output_dir=tmp_path,
                          mode="batched", **_BATCHED_SETTINGS)
    results = tmp_path / "results.jsonl"
    lines_before = results.read_text().splitlines()
    assert 0 < len(lines_before) < 12  # stopped part-way, with some structures finished
    with open(results, "a") as handle:  # a record torn by the kill
        handle.write('{"key": "ads|Cu(111)|O|ontop|0", "status": "o')
    second = screen_adsorption(calculator=CalculatorFactory(None), output_dir=tmp_path, mode="batched",
                               **_BATCHED_SETTINGS)
    assert second.complete and second.n_failed == 0
    assert second.n_done_before == len(lines_before) and second.n_run == 12 - len(lines_before)
    lines = results.read_text().splitlines()
    assert lines[: len(lines_before)] == lines_before
    keys = [json.loads(line)["key"] for line in lines[len(lines_before) + 1:]]
    assert len(keys) == len(set(keys)) == second.n_run
    assert not set(keys) & {json.loads(line)["key"] for line in lines_before}
    assert len(read_results(results)) == 12 and len(second.rows) == 8


class _RefusesHydrogen(_InterruptedModel):
    """The default model, except that any packed call holding a hydrogen atom raises (as the model
    raises for a structure it cannot evaluate)."""

    def evaluate(self, structures):
        if any("H" in atoms.get_chemical_symbols() for atoms in structures):
            raise ValueError("this model refuses hydrogen")
        return super().evaluate(structures)


def _refuses_hydrogen() -> _RefusesHydrogen:
    return _RefusesHydrogen(after=10**9)


def test_batched_screening_records_a_failing_structure_and_goes_on(tmp_path):
    """Structures the calculator refuses become failed records (the batch is split until each culprit
    is alone); every other structure finishes."""
    result = screen_adsorption(calculator=CalculatorFactory(_refuses_hydrogen), output_dir=tmp_path,
                               mode="batched", **_BATCHED_SETTINGS)
    records = read_results(tmp_path / "results.jsonl")
    failed = {key for key, record in records.items() if record["status"] != "ok"}
    # H2 and the four H adsorption jobs; the slabs, O2 and O jobs are fine
    assert failed == {"gas|H2"} | {key for key in records if key.startswith("ads|") and "|H|" in key}
    assert len(failed) == 5 and result.n_failed == 5
    assert all("ValueError: this model refuses hydrogen" in records[key]["error"] for key in failed)
    assert {(m["surface"], m["adsorbate"]) for m in result.minima} == {("Cu(111)", "O"), ("Cu(100)", "O")}


def test_batched_mode_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(ValueError, match="mode='batched' relaxes with FIRE or LBFGS"):
        screen_adsorption(["Cu(111)"], ["O"], output_dir=tmp_path, mode="batched", optimizer="BFGS")
    with pytest.raises(ValueError, match="executor and n_workers are for mode='executor'"):
        screen_adsorption(["Cu(111)"], ["O"], output_dir=tmp_path, mode="batched", n_workers=2)
    with pytest.raises(ValueError, match="mode must be one of executor, batched"):
        screen_adsorption(["Cu(111)"], ["O"], output_dir=tmp_path, mode="gpu")
