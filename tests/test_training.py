"""Training of conservative eSCN models: data reading, output scaling, config, the loop, resume, outputs.

Every test builds its own tiny EMT data set (Cu/Pt/O, at most 8 atoms per structure) and a tiny model,
so that the module runs in well under a minute on two cores.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from _reference import REPO_ROOT, small_fixture
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from escn_ase import ESCNCalculator, load_checkpoint
from escn_ase.cli import main as cli_main
from escn_ase.model import ENERGY_SCALE
from escn_ase.training import (
    LabelError,
    TrainConfig,
    Trainer,
    TrainingConfigError,
    choose_energy_scale,
    fit_element_references,
    load_config,
    read_labelled_structures,
    save_config,
    train,
)

TINY_MODEL = dict(num_layers=2, lmax=2, mmax=1, sphere_channels=8, hidden_channels=16, edge_channels=8, cutoff=4.0)


# ---------------------------------------------------------------------- data
def _emt_structures(count: int, seed: int) -> list[Atoms]:
    """Small rattled Cu/Pt/O structures labelled by EMT through a SinglePointCalculator (how ase stores DFT data)."""
    rng = np.random.default_rng(seed)
    structures = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            atoms = bulk("Cu", "fcc", a=3.61 * rng.uniform(0.97, 1.03), cubic=True)
        elif kind == 1:
            atoms = bulk("Pt", "fcc", a=3.92 * rng.uniform(0.97, 1.03), cubic=True)
            atoms[int(rng.integers(4))].symbol = "Cu"
        elif kind == 2:
            atoms = bulk("Cu", "fcc", a=3.65, cubic=True) * (2, 1, 1)
            atoms[int(rng.integers(8))].symbol = "O"
        else:
            atoms = fcc111("Cu", (2, 2, 1), vacuum=3.0, periodic=False)
            atoms[0].symbol = "Pt"
            del atoms.info["adsorbate_info"]  # a dict that extxyz cannot write
            atoms.pbc = False  # a cluster: no stress label is used
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if atoms.pbc.all():
            results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["family"] = ("cu", "ptcu", "cuo", "cluster")[kind]
        structures.append(atoms)
    return structures


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emt")
    for name, count, seed in (("train", 12, 0), ("val", 4, 1), ("test", 4, 2)):
        write(folder / f"{name}.extxyz", _emt_structures(count, seed))
    return folder


def _config(dataset, output_dir, **changes) -> TrainConfig:
    values = dict(
        model=dict(TINY_MODEL),
        data=dict(
            train=str(dataset / "train.extxyz"), val=str(dataset / "val.extxyz"), test=str(dataset / "test.extxyz")
        ),
        optimizer=dict(lr=5e-3),
        schedule=dict(warmup_epochs=0.5),
        epochs=2,
        batch_size=4,
        output_dir=str(output_dir),
        progress_bar=False,
    )
    values.update(changes)
    return TrainConfig.from_dict(values)


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory):
    """A 2-epoch run through the command line (YAML config, progress bar on)."""
    output = tmp_path_factory.mktemp("run")
    config = dataclasses.replace(_config(dataset, output / "out"), progress_bar=True)
    save_config(config, output / "config.yaml")
    assert cli_main(["train", str(output / "config.yaml")]) == 0
    return output / "out"


def test_reader_takes_calculator_results_and_info_labels(tmp_path):
    structures = _emt_structures(4, seed=5)
    write(tmp_path / "calc.extxyz", structures)
    # The same labels as plain info/array keys under custom names (MACE style).
    renamed = []
    for atoms in structures:
        copy = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        copy.info["REF_energy"] = atoms.get_potential_energy()
        copy.arrays["REF_forces"] = atoms.get_forces()
        if atoms.pbc.all():
            copy.info["REF_stress"] = atoms.get_stress(voigt=False).reshape(9)  # 3x3 form is accepted too
        renamed.append(copy)
    write(tmp_path / "info.extxyz", renamed)

    from_calc = read_labelled_structures(tmp_path / "calc.extxyz")
    from_info = read_labelled_structures(
        tmp_path / "info.extxyz", energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress"
    )
    for original, a, b in zip(structures, from_calc, from_info):
        emt = original.copy()
        emt.calc = EMT()  # independent labels, recomputed
        for read_back in (a, b):
            assert read_back.calc is None
            assert read_back.info["energy"] == pytest.approx(emt.get_potential_energy(), abs=1e-6)
            np.testing.assert_allclose(read_back.arrays["forces"], emt.get_forces(), atol=1e-6)
            if original.pbc.all():
                np.testing.assert_allclose(read_back.info["stress"], emt.get_stress(), atol=1e-7)
            else:
                assert "stress" not in read_back.info
        assert a.info["family"] == original.info["family"]


def test_reader_names_the_frame_without_labels(tmp_path):
    write(tmp_path / "bare.extxyz", [molecule("H2O")])
    with pytest.raises(LabelError, match=r"frame 0 \(H2O\): no energy label 'energy'"):
        read_labelled_structures(tmp_path / "bare.extxyz")


# ---------------------------------------------------------------------- output scaling
def test_element_references_recover_known_energies():
    rng = np.random.default_rng(3)
    counts = np.zeros((20, 90))
    counts[:, [8, 29, 78]] = rng.integers(0, 9, size=(20, 3))
    truth = np.zeros(90)
    truth[[8, 29, 78]] = [-4.9, -3.7, -6.1]
    references = fit_element_references(counts, counts @ truth)
    np.testing.assert_allclose(references, truth, atol=1e-10)
    # An absent element gets zero, not an arbitrary value.
    assert references[1] == 0.0


def test_energy_scale_is_the_force_rms_over_the_model_factor():
    forces = [np.full((2, 3), 2.0), np.full((1, 3), -2.0)]
    scale, reason = choose_energy_scale(forces, np.array([0.3]))
    assert scale == pytest.approx(2.0 / ENERGY_SCALE) and "force RMS" in reason
    scale, reason = choose_energy_scale([np.zeros((2, 3))], np.array([0.3, -0.3]))
    assert scale == pytest.approx(0.3 / ENERGY_SCALE) and "energy" in reason


# ---------------------------------------------------------------------- config
def test_config_yaml_round_trip(tmp_path):
    config = TrainConfig.from_dict(
        dict(
            model=dict(lmax=3, mmax=2, cutoff=5.0),
            data=dict(train="a.extxyz", val_fraction=0.2, stress_key="REF_stress"),
            loss=dict(stress=0.0),
            schedule=dict(kind="plateau", plateau_patience=3),
            max_minutes=30.0,
            init_checkpoint="x.pt",
            dtype="float64",
        )
    )
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config
    assert config.model_config().forces == "conservative" and config.model_config().max_neighbors is None


def test_example_config_is_valid():
    config = load_config(REPO_ROOT / "configs" / "default_model.yaml")
    model = config.model_config()
    assert model.forces == "conservative" and model.smooth_cutoff and model.max_neighbors is None


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("data: {train: a.xyz}\nepochz: 3\n", r"unknown key\(s\) \['epochz'\] in the top level"),
        ("data: {train: a.xyz}\noptimizer: {lrr: 0.1}\n", r"unknown key\(s\) \['lrr'\] in optimizer"),
        ("data: {train: a.xyz}\noptimizer: {lr: fast}\n", r"optimizer.lr: expected a number, got 'fast'"),
        ("data: {train: a.xyz}\nmodel: {lmaxx: 2}\n", r"unknown eSCN config keys: \['lmaxx'\]"),
        ("data: {train: a.xyz}\nmodel: {lmax: 2.5}\n", r"model.lmax: expected an integer"),
        ("data: {train: a.xyz}\nepochs: 0\n", r"epochs must be at least 1"),
        ("data: {train: a.xyz}\nschedule: {kind: linear}\n", r"schedule.kind: must be one of"),
        ("data: {val: v.xyz}\n", r"data.train \(the training file\) is required"),
        ("data: {train: a.xyz}\nmodel: {forces: direct}\n", r"trains conservative models"),
        ("- just\n- a list\n", r"expected a mapping of settings"),
    ],
)
def test_bad_config_errors(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(TrainingConfigError, match=message):
        load_config(path)


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {train: a.xyz}\noptimizer: {lr: 1e-3}\n")  # YAML 1.1 reads 1e-3 as a string
    assert load_config(path).optimizer.lr == 1e-3


def test_learning_rate_schedule():
    from escn_ase.training import ScheduleConfig
    from escn_ase.training.schedule import LearningRateSchedule

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cosine = LearningRateSchedule(optimizer, ScheduleConfig(min_lr_ratio=0.1), 2.0, total_steps=14, warmup_steps=4)
    rates = [cosine.factor(step) * 2.0 for step in range(16)]
    np.testing.assert_allclose(rates[:4], [0.5, 1.0, 1.5, 2.0])  # linear warmup
    assert rates[9] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))  # half way through the cosine
    assert rates[14] == rates[15] == pytest.approx(0.2)  # the floor
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)

    plateau = LearningRateSchedule(
        optimizer, ScheduleConfig(kind="plateau", plateau_patience=1, plateau_factor=0.5), 1.0, 10, 0
    )
    for loss in (1.0, 0.5, 0.6, 0.6):  # two epochs without improvement > patience 1: halve
        plateau.end_epoch(loss)
    assert plateau.lr == pytest.approx(0.5) and optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    state = plateau.state_dict()
    again = LearningRateSchedule(optimizer, plateau.config, 1.0, 10, 0)
    again.load_state_dict(state)
    assert again.lr == plateau.lr and again.best_loss == 0.5


# ---------------------------------------------------------------------- the loop
def test_validation_split_from_training_file(dataset, tmp_path):
    config = _config(dataset, tmp_path, data=dict(train=str(dataset / "train.extxyz"), val_fraction=0.25))
    trainer = Trainer(config)
    assert trainer.data_info["split_counts"] == {"train": 9, "val": 3, "test": 0}
    train_positions = {atoms.positions.tobytes() for atoms in trainer.train_set.structures}
    assert not any(atoms.positions.tobytes() in train_positions for atoms in trainer.val_set.structures)


def test_validation_elements_must_be_trained(dataset, tmp_path):
    gold = bulk("Au", "fcc", a=4.08, cubic=True)
    gold.calc = EMT()
    gold.calc = SinglePointCalculator(gold, energy=gold.get_potential_energy(), forces=gold.get_forces())
    write(tmp_path / "val.extxyz", gold)
    files = dict(train=str(dataset / "train.extxyz"), val=str(tmp_path / "val.extxyz"))
    config = _config(dataset, tmp_path / "out", data=files)
    with pytest.raises(TrainingConfigError, match=r"val structures contain \['Au'\]"):
        Trainer(config)


def test_loss_falls_when_overfitting_one_batch(dataset, tmp_path):
    config = _config(
        dataset, tmp_path, optimizer=dict(lr=1e-2), schedule=dict(kind="constant", warmup_epochs=0.0), ema_decay=0.0
    )
    trainer = Trainer(config)
    batch = trainer.train_set.batch(np.arange(8), trainer.device, trainer.dtype)
    losses = [trainer.train_step(batch)[0] for _ in range(20)]
    assert np.isfinite(losses).all()
    assert min(losses[-3:]) < 0.5 * losses[0], losses


def test_training_run_writes_every_output(trained_run):
    names = {path.name for path in trained_run.iterdir()}
    assert {"config.yaml", "train.log", "log.csv", "learning_curve.png", "last.pt", "best.pt", "metrics.json"} <= names
    with open(trained_run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(float(row["val_forces_mae_ev_per_a"]) > 0 for row in rows)
    assert (trained_run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["stopped_by"] == "epochs" and metrics["epochs_completed"] == 2
    assert metrics["split_counts"] == {"train": 12, "val": 4, "test": 4}
    assert set(metrics["test"]["by_family"]) == {"cu", "ptcu", "cuo", "cluster"}

    loaded = load_checkpoint(trained_run / "best.pt")
    assert loaded.config.forces == "conservative" and loaded.elements == (8, 29, 78)
    meta = loaded.metadata
    assert meta["test_metrics"] == metrics["test"] and meta["val_metrics"] == metrics["val"]
    assert meta["training_config"]["model"] == TINY_MODEL and meta["versions"]["torch"] == torch.__version__
    # The buffers hold the fitted output scaling recorded in the metadata.
    scaling = meta["output_scaling"]
    assert float(loaded.model.energy_scale) == pytest.approx(scaling["energy_scale"], rel=1e-6)
    assert float(loaded.model.element_references[29]) == pytest.approx(scaling["element_references_ev"]["Cu"], abs=1e-5)


def test_test_metrics_agree_with_the_calculator(trained_run, dataset):
    """metrics.json's test errors, recomputed independently through ESCNCalculator and numpy."""
    metrics = json.loads((trained_run / "metrics.json").read_text())["test"]
    calc = ESCNCalculator(trained_run / "best.pt", device="cpu")
    energy_errors, force_errors, stress_errors = [], [], []
    for atoms in read_labelled_structures(dataset / "test.extxyz"):
        labels = (atoms.info["energy"], atoms.arrays["forces"], atoms.info.get("stress"))
        atoms.calc = calc
        energy_errors.append((atoms.get_potential_energy() - labels[0]) / len(atoms))
        force_errors.append(atoms.get_forces() - labels[1])
        if labels[2] is not None:
            from ase.stress import voigt_6_to_full_3x3_stress

            stress_errors.append(voigt_6_to_full_3x3_stress(atoms.get_stress() - labels[2]))
    assert metrics["energy_mae_mev_per_atom"] == pytest.approx(1000 * np.mean(np.abs(energy_errors)), rel=1e-3)
    assert metrics["forces_mae_ev_per_a"] == pytest.approx(np.mean(np.abs(np.concatenate(force_errors))), rel=1e-3)
    assert metrics["stress_mae_mev_per_a3"] == pytest.approx(1000 * np.mean(np.abs(stress_errors)), rel=1e-3)


def test_saved_model_forces_and_stress_are_derivatives_of_its_energy(trained_run):
    calc = ESCNCalculator(trained_run / "best.pt", device="cpu", dtype="float64")
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms[1].symbol = "Pt"
    atoms.rattle(0.1, seed=4)
    atoms.calc = calc
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 1e-3  # a trained model, not a constant
    some = [0, 2]
    np.testing.assert_allclose(forces[some], calculate_numerical_forces(atoms, eps=1e-4, iatoms=some), atol=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-5), atol=1e-7)


def test_resume_continues_exactly(dataset, tmp_path):
    """Stopping at an epoch boundary and mid-epoch, then resuming, gives the uninterrupted run's numbers."""
    no_test = dict(train=str(dataset / "train.extxyz"), val=str(dataset / "val.extxyz"))
    straight = Trainer(_config(dataset, tmp_path / "a", data=no_test))
    straight.run()
    steps = straight.steps_per_epoch
    for max_steps in (steps, steps + 1, None):  # stop after epoch 1, stop inside epoch 2, finish
        config = _config(dataset, tmp_path / "b", data=no_test, max_steps=max_steps)
        interrupted = Trainer(config, resume=max_steps != steps)
        result = interrupted.run()
    assert result["stopped_by"] == "epochs"
    complete_rows = [row for row in interrupted.history if float(row["epoch"]).is_integer()]
    assert len(complete_rows) == 2 and len(interrupted.history) == 3  # plus the mid-epoch stop
    for expected, got in zip(straight.history, complete_rows):
        assert got["epoch"] == expected["epoch"]
        for key in ("train_loss", "val_loss", "val_forces_mae_ev_per_a", "lr"):
            assert got[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-12), key
    for name, value in straight.ema.model.state_dict().items():
        torch.testing.assert_close(interrupted.ema.model.state_dict()[name], value, rtol=1e-6, atol=1e-7)


def test_refuses_to_overwrite_a_run_and_to_resume_a_changed_one(dataset, tmp_path):
    train(_config(dataset, tmp_path, epochs=1, max_steps=1))
    with pytest.raises(FileExistsError, match="pass --resume"):
        Trainer(_config(dataset, tmp_path, epochs=1))
    with pytest.raises(TrainingConfigError, match=r"differs in \['batch_size'\]"):
        Trainer(_config(dataset, tmp_path, epochs=1, batch_size=3), resume=True)


# ---------------------------------------------------------------------- fine-tuning
def test_fine_tuning_refits_references_to_a_shifted_energy_zero(trained_run, dataset, tmp_path):
    """Fine-tuning on data whose Cu energy zero moved by 0.5 eV/atom moves the Cu reference by exactly that."""
    shifted_dir = tmp_path / "shifted"
    shifted_dir.mkdir()
    frames = read_labelled_structures(dataset / "train.extxyz")
    for atoms in frames:
        atoms.info["energy"] += 0.5 * int((atoms.numbers == 29).sum())
    write(shifted_dir / "train.extxyz", frames)

    def references(train_file, output):
        config = _config(
            dataset,
            output,
            init_checkpoint=str(trained_run / "best.pt"),
            model={},
        )
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, train=str(train_file)))
        trainer = Trainer(config)
        return trainer, trainer.model.element_references.double().numpy()

    trainer, original = references(dataset / "train.extxyz", tmp_path / "a")
    _, shifted = references(shifted_dir / "train.extxyz", tmp_path / "b")
    expected = np.zeros_like(original)
    expected[29] = 0.5
    np.testing.assert_allclose(shifted - original, expected, atol=1e-5)
    # Every weight came from the checkpoint (same architecture).
    best = load_checkpoint(trained_run / "best.pt").model
    for name, value in best.named_parameters():
        torch.testing.assert_close(dict(trainer.model.named_parameters())[name], value)
    n_parameters = len(list(best.parameters()))
    assert f"reused {n_parameters} of {n_parameters}" in trainer.init_summary


def test_fine_tuning_from_a_fairchem_direct_force_checkpoint(dataset, tmp_path):
    fixture = small_fixture()
    source = load_checkpoint(fixture / "checkpoint.pt")
    config = _config(dataset, tmp_path, init_checkpoint=str(fixture / "checkpoint.pt"), model={})
    trainer = Trainer(config)
    # Architecture from the checkpoint, made conservative; backbone and energy head reused, force head dropped.
    assert trainer.model_config.lmax == source.config.lmax and trainer.model_config.forces == "conservative"
    assert trainer.model_config.max_neighbors is None and trainer.model_config.smooth_cutoff
    ours = dict(trainer.model.named_parameters())
    for name, value in source.model.named_parameters():
        if name.startswith("force_block."):
            assert name not in ours
        else:
            torch.testing.assert_close(ours[name], value)
    assert "force_block.fc1.weight" in trainer.init_summary and "forces are now -dE/dx" in trainer.init_summary
    assert float(trainer.model.energy_scale) == pytest.approx(float(source.model.energy_scale))
    # The references are the least-squares correction: the remaining energy error has no component
    # along any element count.
    data = trainer.train_set
    with torch.no_grad():
        predicted = np.concatenate(
            [
                trainer.model(**batch.graph.model_inputs())["energy"].double().numpy()
                for batch in data.batches(8, trainer.device, trainer.dtype)
            ]
        )
    counts = data.composition_matrix(90)[:, data.elements]
    np.testing.assert_allclose(counts.T @ (data.energies - predicted), 0.0, atol=2e-3)


@pytest.mark.slow
def test_fine_tuning_the_shipped_model_keeps_what_it_knew(tmp_path):
    """25 new structures, 2 epochs, from the shipped model, with a share of its own training data mixed in
    (the generator's tiny preset stands in for it): the original test split's energy MAE stays within
    2x its value before, and the element references are kept."""
    from escn_ase.data import generate_dataset
    from escn_ase.registry import default_model_path

    original = tmp_path / "original"
    generate_dataset(original, seed=0, size="tiny", progress=False)
    # The user's own structures: more of the same kinds (the generator with another seed), 25 of them.
    other = tmp_path / "other"
    generate_dataset(other, seed=1, size="tiny", progress=False)
    new = tmp_path / "new"
    new.mkdir()
    write(new / "train.extxyz", read(other / "train.extxyz", index=":25"))
    write(new / "val.extxyz", read(other / "val.extxyz", index=":"))
    config = TrainConfig.from_dict(
        dict(
            data=dict(train=str(new / "train.extxyz"), val=str(new / "val.extxyz")),
            init_checkpoint=str(default_model_path()),
            retain=dict(train=str(original / "train.extxyz"), test=str(original / "test.extxyz"), share=0.5),
            epochs=2,
            batch_size=8,
            output_dir=str(tmp_path / "run"),
            progress_bar=False,
            optimizer=dict(lr=1e-4),  # the fine-tuning example's rate
            schedule=dict(warmup_epochs=0.5),
        )
    )
    trainer = Trainer(config)
    assert trainer.data_info["retained_train"]["structures"] == 25
    metrics = trainer.run()
    before = metrics["retained_test"]["before"]["energy_mae_mev_per_atom"]
    after = metrics["retained_test"]["after"]["energy_mae_mev_per_atom"]
    assert after <= 2.0 * before, (before, after)
    assert metrics["retained_test"]["after"] and trainer.scaling["element_references_fit"] == "new elements"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["retained_test"]["after"]


def test_fine_tuning_keeps_references_the_new_data_cannot_determine(trained_run, dataset, tmp_path):
    """Four structures of one composition cannot separate Cu from Pt: the checkpoint's references stay."""
    one_composition = tmp_path / "one"
    one_composition.mkdir()
    frames = [a for a in read_labelled_structures(dataset / "train.extxyz") if a.info.get("family") == "ptcu"][:2]
    write(one_composition / "train.extxyz", frames)
    config = _config(dataset, tmp_path / "run", init_checkpoint=str(trained_run / "best.pt"), model={})
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, train=str(one_composition / "train.extxyz"))
    )
    trainer = Trainer(config)
    assert trainer.scaling["element_references_fit"] == "new elements"
    original = load_checkpoint(trained_run / "best.pt").model.element_references
    torch.testing.assert_close(trainer.model.element_references.cpu().to(original.dtype), original)


def test_fine_tune_example_config_is_valid():
    config = load_config(REPO_ROOT / "configs" / "fine_tune_example.yaml")
    assert config.init_checkpoint and config.retain.train and config.retain.share == 0.5
    assert config.fit_element_references is None


def test_retain_needs_an_init_checkpoint(dataset, tmp_path):
    with pytest.raises(TrainingConfigError, match="retain.train / retain.test need init_checkpoint"):
        _config(dataset, tmp_path, retain=dict(train="x.extxyz"))
