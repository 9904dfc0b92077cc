"""The training loop of conservative eSCN models: energies, forces and stress by autograd.

Files written to ``config.output_dir``:

    config.yaml    the full config of the run
    train.log      the log
    log.csv        one row per epoch, plus one with a fractional epoch where a budget stopped training
                   inside an epoch (``Trainer.CSV_COLUMNS``; units in the column names; ``lr`` is
                   the rate after the epoch's last step, ``time_s`` the training time so far)
    learning_curve.png
    last.pt        resumable state (model, EMA, optimizer, schedule, position, RNG), every epoch and
                   every ``checkpoint_every_minutes``
    best.pt        the EMA weights with the lowest validation loss, escn_ase checkpoint format
    metrics.json   validation and test metrics of best.pt, timing, why training stopped
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase.data import chemical_symbols

from ..checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from ..device import DTYPES, resolve_device
from ..files import atomic_write
from ..model import ESCN, ESCNConfig
from .config import TrainConfig, TrainingConfigError, save_config
from .data import StructureSet, TrainingBatch, read_labelled_structures
from .ema import WeightAverage
from .initial_weights import lecun_initialise, transfer_weights
from .metrics import batch_loss, evaluate, predict_batch
from .plots import plot_learning_curve
from .scaling import choose_energy_scale, fit_element_references, references_determined
from .schedule import LearningRateSchedule

__all__ = ["Trainer", "train", "TRAINING_STATE_FORMAT"]

logger = logging.getLogger("escn_ase.training")

TRAINING_STATE_FORMAT = "escn_ase-training-state"
# Settings a resumed run may change; anything else must match the interrupted run.
# Fine-tuning data whose energies differ from the init model's by more than this (mean, per atom) are taken
# to use another energy zero (another DFT code or functional): their element references are refitted.
# Below it a refit would only absorb the model's errors on the new structures into every other structure.
ENERGY_ZERO_CHANGE_EV_PER_ATOM = 0.1
_RESUMABLE_CHANGES = {"epochs", "max_minutes", "max_steps", "device", "progress_bar", "checkpoint_every_minutes"}


class Trainer:
    """Sets up a run from a ``TrainConfig`` (data, model, output scaling, optimizer) and trains it.

    Args:
        config: the run.
        resume: continue from ``output_dir/last.pt``.  Without it, an ``output_dir`` that already
            holds a ``last.pt`` is refused rather than overwritten.
    """

    CSV_COLUMNS = (
        "epoch",
        "step",
        "time_s",
        "lr",
        "train_loss",
        "val_loss",
        "val_energy_mae_mev_per_atom",
        "val_energy_rmse_mev_per_atom",
        "val_forces_mae_ev_per_a",
        "val_forces_rmse_ev_per_a",
        "val_stress_mae_mev_per_a3",
        "val_stress_rmse_mev_per_a3",
    )

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = DTYPES[config.dtype]
        self.output_dir = Path(config.output_dir)
        self.last_path = self.output_dir / "last.pt"
        self.best_path = self.output_dir / "best.pt"
        saved = self._read_saved_state() if resume else None
        if not resume and self.last_path.exists():
            raise FileExistsError(
                f"{self.last_path} exists: pass --resume to continue that run, or choose another output_dir"
            )
        source = None
        if saved is not None:
            model_config = ESCNConfig.from_dict(saved["model_config"])
        else:
            source = load_checkpoint(config.init_checkpoint) if config.init_checkpoint else None
            model_config = config.model_config(source.config if source else None)
        self.model_config = model_config

        self.train_set, self.val_set, self.test_set, self.data_info = self._load_data(model_config)
        self.elements = [int(z) for z in saved["elements"]] if saved is not None else self._covered_elements(source)
        self._check_elements()
        self.output_dir.mkdir(parents=True, exist_ok=True)

        self._build_model(source)
        self.scaling: dict = {}
        self.retained_before: dict | None = None
        if saved is None:
            self.scaling = self._fit_output_scaling(source)
            if self.retained_test_set is not None:
                self.retained_before = self._retained_metrics_before(source)

        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.optimizer.lr, weight_decay=config.optimizer.weight_decay
        )
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        self.schedule = LearningRateSchedule(
            self.optimizer,
            config.schedule,
            config.optimizer.lr,
            total_steps=config.epochs * self.steps_per_epoch,
            warmup_steps=round(config.schedule.warmup_epochs * self.steps_per_epoch),
        )
        self.ema = WeightAverage(self.model, config.ema_decay)

        self._start_progress()
        if saved is not None:
            self._restore(saved)
        save_config(config, self.output_dir / "config.yaml")
        n_parameters = sum(p.numel() for p in self.model.parameters())
        logger.info(
            "model %s: %d parameters; %d train / %d val / %d test structures; %d steps per epoch on %s (%s)",
            _architecture_summary(model_config),
            n_parameters,
            len(self.train_set),
            len(self.val_set),
            len(self.test_set) if self.test_set else 0,
            self.steps_per_epoch,
            self.device,
            config.dtype,
        )

    # ------------------------------------------------------------------ set-up
    def _build_model(self, source: LoadedModel | None) -> None:
        """A fresh model (seeded, initialised), with the weights of ``source`` where names and shapes match."""
        torch.manual_seed(self.config.seed)
        self.model = ESCN(self.model_config)
        if self.config.weight_init == "lecun":
            lecun_initialise(self.model)
        self.init_summary: str | None = None
        if source is not None:
            report = transfer_weights(self.model, source)
            self.init_summary = report.summary(source)
            logger.info(self.init_summary)
        self.model.to(device=self.device, dtype=self.dtype)

    def _retained_metrics_before(self, source: LoadedModel) -> dict:
        """The init checkpoint's errors (as loaded) on the retained test split."""
        metrics = self._retained_test_metrics(source.model.to(device=self.device, dtype=self.dtype))
        logger.info(
            "retained test split before fine-tuning (%s as loaded): energy MAE %.3g meV/atom, force MAE %.4g eV/A",
            source.path,
            metrics["energy_mae_mev_per_atom"],
            metrics["forces_mae_ev_per_a"],
        )
        return metrics

    def _start_progress(self) -> None:
        """Position in the run and what has been learnt so far: nothing yet (``_restore`` sets a resumed run's)."""
        self.epoch = 0  # completed epochs
        self.batch_in_epoch = 0  # completed steps of the current epoch
        self.global_step = 0
        self.epoch_loss_sum = 0.0
        self.epoch_loss_steps = 0
        self.history: list[dict] = []
        self.best_loss = math.inf
        self.best_epoch: float | None = None
        self.best_val_metrics: dict | None = None
        self.train_time_s = 0.0  # all invocations together
        self._session_start = time.monotonic()
        self._session_time_base = 0.0

    def _load_data(self, model_config: ESCNConfig):
        data = self.config.data
        keys = dict(energy_key=data.energy_key, forces_key=data.forces_key, stress_key=data.stress_key)
        started = time.monotonic()
        train_structures = read_labelled_structures(data.train, **keys)
        info = {"train_file": data.train, "val_file": data.val, "test_file": data.test}
        if data.val:
            val_structures = read_labelled_structures(data.val, **keys)
        else:
            order = np.random.default_rng(self.config.seed).permutation(len(train_structures))
            n_val = max(1, round(data.val_fraction * len(train_structures)))
            if n_val >= len(train_structures):
                raise TrainingConfigError(
                    f"{data.train}: {len(train_structures)} structures are too few to hold out a validation set"
                )
            held_out = set(order[:n_val].tolist())
            val_structures = [a for i, a in enumerate(train_structures) if i in held_out]
            train_structures = [a for i, a in enumerate(train_structures) if i not in held_out]
            info["val_from_train"] = {"fraction": data.val_fraction, "seed": self.config.seed}
        self.new_train_set = None
        retain = self.config.retain
        if retain.train:
            retained = read_labelled_structures(retain.train, **keys)
            wanted = min(len(retained), round(retain.share / (1.0 - retain.share) * len(train_structures)))
            order = np.random.default_rng([self.config.seed, 1]).permutation(len(retained))[:wanted]
            info["retained_train"] = {"file": retain.train, "share": retain.share, "structures": int(wanted)}
            logger.info(
                "fine-tuning keeps %d structures of %s in the training set (share %.2f)",
                wanted,
                retain.train,
                retain.share,
            )
            self.new_train_set = StructureSet(train_structures, model_config, "new")  # the user's own data
            train_structures = list(train_structures) + [retained[i] for i in sorted(order.tolist())]
        train_set = StructureSet(train_structures, model_config, "train")
        val_set = StructureSet(val_structures, model_config, "val")
        test_set = None
        if data.test:
            test_set = StructureSet(read_labelled_structures(data.test, **keys), model_config, "test")
        self.retained_test_set = None
        if retain.test:
            self.retained_test_set = StructureSet(
                read_labelled_structures(retain.test, **keys), model_config, "retained test"
            )
        info["split_counts"] = {
            "train": len(train_set),
            "val": len(val_set),
            "test": len(test_set) if test_set else 0,
        }
        info["manifest"] = self._read_manifest()
        n_edges = sum(g.n_edges for g in train_set.graphs)
        logger.info(
            "read data and built graphs in %.1f s: %d training structures, %d atoms, %d edges (%.1f per atom)",
            time.monotonic() - started,
            len(train_set),
            int(train_set.atom_counts.sum()),
            n_edges,
            n_edges / train_set.atom_counts.sum(),
        )
        return train_set, val_set, test_set, info

    def _read_manifest(self) -> dict | None:
        path = self.config.data.manifest
        if path is None:
            beside = Path(self.config.data.train).parent / "manifest.json"
            if not beside.is_file():
                return None
            path = str(beside)
        try:
            return json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingConfigError(f"data manifest {path} is not readable JSON: {exc}") from exc

    def _covered_elements(self, source: LoadedModel | None) -> list[int]:
        elements = set(self.train_set.elements)
        if source is not None and source.source == "escn_ase":
            elements |= set(source.elements)  # fine-tuning keeps what the model already covered
        return sorted(elements)

    def _check_elements(self) -> None:
        for data in (self.val_set, self.test_set):
            if data is None:
                continue
            extra = sorted(set(data.elements) - set(self.elements))
            if extra:
                raise TrainingConfigError(
                    f"the {data.name} structures contain {[chemical_symbols[z] for z in extra]}, "
                    "absent from the training structures"
                )

    @torch.no_grad()
    def _fit_output_scaling(self, source: LoadedModel | None) -> dict:
        """Set ``energy_scale``, ``element_references`` and ``energy_mean`` (see ``scaling``).

        The scale comes from the config, else the init checkpoint (whose weights were trained
        for it), else the training forces.  The element references (the checkpoint's, or zero)
        are then corrected by a least-squares fit to the residual ``E - E_initial_model``, which
        removes the initial network's per-element offsets and, when fine-tuning, a change of
        reference energies (another DFT code or functional).
        """
        model, data = self.model, self.train_set
        counts = data.composition_matrix(model.element_references.shape[0])
        composition_only = fit_element_references(counts, data.energies)
        label_residual = (data.energies - counts @ composition_only) / data.atom_counts
        if self.config.energy_scale is not None:
            scale, reason = self.config.energy_scale, "config"
        elif source is not None:
            scale, reason = float(source.model.energy_scale), f"kept from {source.path}"
        else:
            scale, reason = choose_energy_scale(data.forces, label_residual)
        model.energy_scale.fill_(scale)
        # A per-structure constant would bias structures by size; element references carry the offset.
        model.energy_mean.zero_()
        references = np.zeros(counts.shape[1])
        if source is not None:
            theirs = source.model.element_references.double().numpy()
            shared = min(len(theirs), len(references))
            references[:shared] = theirs[:shared]
        model.element_references.copy_(torch.as_tensor(references))
        # Fine-tuning judges and corrects the references on the new structures only (retained ones fit them).
        own = self.new_train_set if (source is not None and self.new_train_set is not None) else data
        own_counts = own.composition_matrix(counts.shape[1])
        own_error = own.energies - self._energies(model, own)
        mode = self._reference_fit(source, own_counts, own_error / own.atom_counts)
        if mode != "kept":
            columns = own_counts.sum(axis=0) > 0
            if mode == "new elements":  # the checkpoint's references stay; elements it lacks get theirs
                columns &= ~np.isin(np.arange(counts.shape[1]), list(source.elements))
            correction = np.zeros(counts.shape[1])
            if columns.any():
                correction[columns] = fit_element_references(own_counts[:, columns], own_error)
            references += correction
            model.element_references.copy_(torch.as_tensor(references))
        initial_error = data.energies - self._energies(model, data)

        scaling = {
            "element_references_fit": mode,
            "energy_scale": float(scale),
            "energy_scale_from": reason,
            "element_references_ev": {chemical_symbols[z]: float(references[z]) for z in self.elements},
            "composition_only_references_ev": {chemical_symbols[z]: float(composition_only[z]) for z in self.elements},
            "label_residual_rms_ev_per_atom": float(np.sqrt(np.mean(label_residual**2))),
            "initial_energy_rmse_ev_per_atom": float(np.sqrt(np.mean((initial_error / data.atom_counts) ** 2))),
        }
        logger.info(
            "output scaling: energy_scale %.4g (%s); energy RMS per atom beyond composition %.4g eV/atom; "
            "initial model energy RMSE %.4g eV/atom; element references (eV) %s",
            scale,
            reason,
            scaling["label_residual_rms_ev_per_atom"],
            scaling["initial_energy_rmse_ev_per_atom"],
            {k: round(v, 4) for k, v in scaling["element_references_ev"].items()},
        )
        return scaling

    def _reference_fit(self, source: LoadedModel | None, own_counts: np.ndarray, own_error_per_atom: np.ndarray) -> str:
        """Which element references to fit: ``"all"``, ``"new elements"`` (fine-tuning: the checkpoint's are
        kept, elements it lacks are fitted) or ``"kept"``.

        ``own_counts``/``own_error_per_atom``: compositions of the new training structures and the initial
        model's energy error on them (eV/atom).
        """
        choice = self.config.fit_element_references
        if source is None:
            return "all" if choice is not False else "kept"
        if choice is not None:
            return "all" if choice else "kept"
        offset = float(np.mean(np.abs(own_error_per_atom)))
        determined = references_determined(own_counts)
        if offset > ENERGY_ZERO_CHANGE_EV_PER_ATOM and determined:
            logger.info("the fine-tuning data sit %.3g eV/atom from %s's energies: refitting element references "
                        "(another energy zero, e.g. another DFT code)", offset, source.path)
            return "all"
        logger.info(
            "keeping %s's element references (the new data are %.3g eV/atom from its energies%s) and fitting "
            "only elements it lacks", source.path, offset,
            "" if determined else ", and too few or too similar compositions to determine them",
        )
        return "new elements"

    def _retained_test_metrics(self, model: ESCN) -> dict:
        return evaluate(
            model, self.retained_test_set, self.config.loss, self.config.batch_size, self.device, self.dtype
        )

    def _energies(self, model: ESCN, data: StructureSet) -> np.ndarray:
        """``(n_structures,)`` energies of ``model`` on ``data``, no gradients."""
        with torch.no_grad():
            parts = [
                model(**batch.graph.model_inputs())["energy"].double().cpu().numpy()
                for batch in data.batches(4 * self.config.batch_size, self.device, self.dtype)
            ]
        return np.concatenate(parts)

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: TrainingBatch) -> tuple[float, dict[str, float]]:
        """One optimizer step on ``batch``; returns the loss and its unweighted terms."""
        self.model.train()
        out = predict_batch(self.model, batch, compute_stress=self.config.loss.stress > 0, create_graph=True)
        loss, terms = batch_loss(out, batch, self.config.loss)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss is {float(loss)} at step {self.global_step + 1} ({terms}); "
                "lower optimizer.lr, or check the labels for outliers"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.optimizer.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optimizer.clip_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        self.ema.update(self.model)
        self.global_step += 1
        return float(loss.detach()), terms

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The shuffled order of the training structures in ``epoch`` (a function of seed and epoch)."""
        return np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train_set))

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        """Train until ``epochs``, ``max_minutes`` or ``max_steps``; evaluate; return ``metrics.json``'s content."""
        config = self.config
        self._session_start = time.monotonic()
        self._session_time_base = self.train_time_s
        last_save = self._session_start
        stopped_by = None
        if self.epoch >= config.epochs:
            logger.info("all %d epochs were already done; evaluating only", config.epochs)
        while self.epoch < config.epochs and stopped_by is None:
            order = self.epoch_order(self.epoch)
            batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
            bar = _progress_bar(len(batches), self.batch_in_epoch, f"epoch {self.epoch + 1}/{config.epochs}", config)
            while self.batch_in_epoch < len(batches):
                loss, _ = self.train_step(self.train_set.batch(batches[self.batch_in_epoch], self.device, self.dtype))
                self.batch_in_epoch += 1
                self.epoch_loss_sum += loss
                self.epoch_loss_steps += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}", lr=f"{self.schedule.lr:.3g}")
                stopped_by = self._stop_reason()
                if stopped_by is not None:
                    break
                now = time.monotonic()
                if now - last_save >= 60.0 * config.checkpoint_every_minutes and self.batch_in_epoch < len(batches):
                    self._save_last()
                    last_save = now
            if bar is not None:
                bar.close()
            complete = self.batch_in_epoch == len(batches)
            if complete:
                self.epoch += 1
                self.batch_in_epoch = 0
            self._end_of_epoch(complete, len(batches))
            last_save = time.monotonic()
            if self.epoch == 1 and complete and config.max_minutes is not None:
                self._log_budget_estimate()
        if stopped_by is not None:
            epoch = self.history[-1]["epoch"]
            logger.info("stopping: %s reached after %d steps (epoch %.2f)", stopped_by, self.global_step, epoch)
        return self._finish(stopped_by or "epochs")

    def _stop_reason(self) -> str | None:
        """``"max_steps"`` or ``"max_minutes"`` once that limit is reached, else None."""
        if self.config.max_steps is not None and self.global_step >= self.config.max_steps:
            return "max_steps"
        minutes = (time.monotonic() - self._session_start) / 60.0
        if self.config.max_minutes is not None and minutes >= self.config.max_minutes:
            return "max_minutes"
        return None

    def _end_of_epoch(self, complete: bool, n_batches: int) -> None:
        self._update_time()
        val = evaluate(self.ema.model, self.val_set, self.config.loss, self.config.batch_size, self.device, self.dtype)
        epoch_value = self.epoch if complete else self.epoch + self.batch_in_epoch / n_batches
        row = {
            "epoch": epoch_value,
            "step": self.global_step,
            "time_s": round(self.train_time_s, 2),
            "lr": self.schedule.lr,
            "train_loss": self.epoch_loss_sum / self.epoch_loss_steps if self.epoch_loss_steps else None,
        }
        if not math.isfinite(val["loss"]):
            raise FloatingPointError(
                f"the validation loss is {val['loss']} at step {self.global_step}: lower optimizer.lr"
            )
        row.update({f"val_{key}": value for key, value in val.items() if key != "n_structures"})
        self.history.append(row)
        if complete:
            self.schedule.end_epoch(val["loss"])
            self.epoch_loss_sum, self.epoch_loss_steps = 0.0, 0
        logger.info(
            "epoch %s step %d: train loss %s, val loss %.4g, energy MAE %.3g meV/atom, force MAE %.4g eV/A%s",
            f"{epoch_value:g}",
            self.global_step,
            f"{row['train_loss']:.4g}" if row["train_loss"] is not None else "-",
            val["loss"],
            val["energy_mae_mev_per_atom"],
            val["forces_mae_ev_per_a"],
            f", stress MAE {val['stress_mae_mev_per_a3']:.3g} meV/A^3" if "stress_mae_mev_per_a3" in val else "",
        )
        if val["loss"] < self.best_loss:
            self.best_loss, self.best_epoch, self.best_val_metrics = val["loss"], epoch_value, val
            self._save_best(test_metrics=None)
        self._write_log()
        self._save_last()

    def _finish(self, stopped_by: str) -> dict:
        self._update_time()
        best = load_checkpoint(self.best_path).model.to(device=self.device, dtype=self.dtype)
        test = None
        if self.test_set is not None:
            test = evaluate(
                best, self.test_set, self.config.loss, self.config.batch_size, self.device, self.dtype, by_family=True
            )
            logger.info(
                "test (best.pt, epoch %s): energy MAE %.3g meV/atom, force MAE %.4g eV/A%s",
                f"{self.best_epoch:g}",
                test["energy_mae_mev_per_atom"],
                test["forces_mae_ev_per_a"],
                f", stress MAE {test['stress_mae_mev_per_a3']:.3g} meV/A^3" if "stress_mae_mev_per_a3" in test else "",
            )
        retained = None
        if self.retained_test_set is not None:
            retained = {"before": self.retained_before, "after": self._retained_test_metrics(best)}
            logger.info(
                "retained test split: energy MAE %.3g -> %.3g meV/atom, force MAE %.4g -> %.4g eV/A (before -> after)",
                retained["before"]["energy_mae_mev_per_atom"] if retained["before"] else float("nan"),
                retained["after"]["energy_mae_mev_per_atom"],
                retained["before"]["forces_mae_ev_per_a"] if retained["before"] else float("nan"),
                retained["after"]["forces_mae_ev_per_a"],
            )
        self._save_best(test_metrics=test, model=best, stopped_by=stopped_by)
        metrics = {
            "units": {"energy": "meV/atom", "forces": "eV/A (per component)", "stress": "meV/A^3 (per component)"},
            "best_epoch": self.best_epoch,
            "val": self.best_val_metrics,
            "test": test,
            "retained_test": retained,
            "epochs_completed": self.epoch,
            "steps": self.global_step,
            "training_time_s": round(self.train_time_s, 2),
            "stopped_by": stopped_by,
            "split_counts": self.data_info["split_counts"],
        }
        (self.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        logger.info("wrote %s, %s and metrics.json in %s", self.best_path.name, self.last_path.name, self.output_dir)
        return metrics

    # ------------------------------------------------------------------ files
    def _update_time(self) -> None:
        self.train_time_s = self._session_time_base + time.monotonic() - self._session_start

    def _write_log(self) -> None:
        with open(self.output_dir / "log.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in self.history:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k, "")) for k in self.CSV_COLUMNS})
        plot_learning_curve(self.history, self.output_dir / "learning_curve.png")

    def _metadata(self, test_metrics: dict | None, stopped_by: str | None) -> dict:
        return {
            "trained_with": "escn_ase.training",
            "training_config": self.config.to_dict(),
            "data": self.data_info,
            "output_scaling": self.scaling,
            "init_checkpoint": self.init_summary,
            "best_epoch": self.best_epoch,
            "epochs_completed": self.epoch,
            "steps": self.global_step,
            "training_time_s": round(self.train_time_s, 2),
            "stopped_by": stopped_by,
            "val_metrics": self.best_val_metrics,
            "test_metrics": test_metrics,
            "hardware": _hardware(self.device),
            "versions": _versions(),
        }

    def _save_best(self, test_metrics: dict | None, model: ESCN | None = None, stopped_by: str | None = None) -> None:
        atomic_write(
            self.best_path,
            lambda path: save_checkpoint(
                path,
                model if model is not None else self.ema.model,
                self.elements,
                self._metadata(test_metrics, stopped_by),
            ),
        )

    def _save_last(self) -> None:
        self._update_time()
        state = {
            "format": TRAINING_STATE_FORMAT,
            "format_version": 1,
            "config": self.config.to_dict(),
            "model_config": self.model_config.to_dict(),
            "elements": self.elements,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_loss_steps": self.epoch_loss_steps,
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_val_metrics": self.best_val_metrics,
            "train_time_s": self.train_time_s,
            "scaling": self.scaling,
            "init_summary": self.init_summary,
            "retained_before": self.retained_before,
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        atomic_write(self.last_path, lambda path: torch.save(state, path))

    def _read_saved_state(self) -> dict:
        if not self.last_path.exists():
            raise FileNotFoundError(f"cannot resume: {self.last_path} does not exist")
        state = torch.load(self.last_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != TRAINING_STATE_FORMAT:
            raise TrainingConfigError(f"{self.last_path} is not an escn_ase training state")
        before, now = state["config"], self.config.to_dict()
        # A setting added to TrainConfig after the run started is unchanged if it still has its default.
        defaults = {f.name: _field_default(f) for f in dataclasses.fields(TrainConfig)}
        changed = sorted(
            k for k in now if now[k] != before.get(k, defaults.get(k)) and k not in _RESUMABLE_CHANGES
        )
        if changed:
            raise TrainingConfigError(
                f"cannot resume {self.last_path}: the config differs in {changed}; only "
                f"{sorted(_RESUMABLE_CHANGES)} may change between runs"
            )
        return state

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.to(device=self.device, dtype=self.dtype)
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        for key in ("epoch", "batch_in_epoch", "global_step", "epoch_loss_steps"):
            setattr(self, key, int(state[key]))
        self.epoch_loss_sum = float(state["epoch_loss_sum"])
        self.history = list(state["history"])
        self.best_loss = float(state["best_loss"])
        self.best_epoch = state["best_epoch"]
        self.best_val_metrics = state["best_val_metrics"]
        self.train_time_s = float(state["train_time_s"])
        self.scaling = state["scaling"]
        self.init_summary = state["init_summary"]
        self.retained_before = state.get("retained_before")
        torch.set_rng_state(state["rng_torch"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        logger.info("resumed %s at epoch %d, step %d", self.last_path, self.epoch, self.global_step)

    def _log_budget_estimate(self) -> None:
        seconds_per_epoch = self.train_time_s / max(self.epoch, 1)
        budget_epochs = 60.0 * self.config.max_minutes / seconds_per_epoch
        logger.info(
            "%.1f s per epoch (training and validation): the %.0f-minute budget allows about %.0f epochs; "
            "the schedule spans %d",
            seconds_per_epoch,
            self.config.max_minutes,
            budget_epochs,
            self.config.epochs,
        )


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Run a training (see ``Trainer``), logging to ``output_dir/train.log``; returns the final metrics."""
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(Path(config.output_dir) / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        return Trainer(config, resume=resume).run()
    finally:
        logger.removeHandler(handler)
        handler.close()


# ---------------------------------------------------------------------- helpers
def _field_default(field: dataclasses.Field):
    """A dataclass field's default as a plain value (``asdict`` of a dataclass default)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return None


def _progress_bar(total: int, initial: int, description: str, config: TrainConfig):
    if not config.progress_bar:
        return None
    try:
        from tqdm import tqdm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the progress bar needs tqdm: pip install 'escn-ase[train]' (or progress_bar: false)"
        ) from exc
    return tqdm(total=total, initial=initial, desc=description, leave=False, dynamic_ncols=True)


def _architecture_summary(config: ESCNConfig) -> str:
    return (
        f"lmax {config.lmax} mmax {config.mmax}, {config.num_layers} layers, {config.sphere_channels} sphere / "
        f"{config.hidden_channels} hidden / {config.edge_channels} edge channels, cutoff {config.cutoff} A"
    )


def _hardware(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _versions() -> dict:
    import ase

    from .. import __version__

    return {
        "escn_ase": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "ase": ase.__version__,
        "python": sys.version.split()[0],
    }
