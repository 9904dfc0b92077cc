"""``TrainConfig``: every setting of a training run, typed, read from and written to YAML.

A config file mirrors the dataclasses below section by section; keys left out take the defaults.
Example (see ``configs/default_model.yaml`` for a complete one)::

    model: {lmax: 3, mmax: 2, sphere_channels: 32, num_layers: 2, cutoff: 5.0}
    data: {train: data/train.extxyz, val: data/val.extxyz, test: data/test.extxyz}
    loss: {energy_per_atom: 10.0, forces: 1.0, stress: 100.0}
    optimizer: {lr: 2.0e-3, weight_decay: 1.0e-3}
    epochs: 200
    max_minutes: 120

Paths are used as written (relative paths are relative to the working directory).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ESCNError
from ..model import ESCNConfig

__all__ = [
    "TrainConfig",
    "DataConfig",
    "LossConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainingConfigError",
    "TRAINING_MODEL_DEFAULTS",
    "load_config",
    "save_config",
]

# A trained-from-scratch model is conservative by default: forces and stress are derivatives of one
# smooth energy (no neighbour cap, whose truncation would make the energy jump).
TRAINING_MODEL_DEFAULTS: dict[str, Any] = {"forces": "conservative", "smooth_cutoff": True, "max_neighbors": None}
# A model trained from scratch also uses the exactly equivariant gated blocks (escn_ase.nn.gate): its energy
# does not depend on how edge frames are completed, and the ZBL repulsion (escn_ase.nn.repulsion) keeps atoms
# pushed closer than the training data apart. Fine-tuning keeps the init checkpoint's blocks.
FROM_SCRATCH_MODEL_DEFAULTS: dict[str, Any] = {"activation": "gate", "pair_repulsion": "zbl"}


class TrainingConfigError(ESCNError, ValueError):
    """A training config has an unknown key, a value of the wrong type, or an invalid value."""


@dataclass
class DataConfig:
    """Where the labelled structures are (extxyz or any file ase.io reads, with energies and forces).

    Attributes:
        train: training structures.
        val: validation structures; if None, ``val_fraction`` of ``train`` is held out (seeded).
        test: test structures, evaluated once at the end (optional).
        val_fraction: share of ``train`` held out for validation when ``val`` is None.
        energy_key / forces_key / stress_key: label names in ``atoms.info`` / ``atoms.arrays`` or in
            the results of a calculator attached by ase.io (how ase writes DFT results).
        manifest: JSON file describing how the data were made (recorded in the checkpoint); default:
            ``manifest.json`` beside the training file, if there is one.
    """

    train: str = ""
    val: str | None = None
    test: str | None = None
    val_fraction: float = 0.1
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    manifest: str | None = None


@dataclass
class LossConfig:
    """Weights of the mean squared errors summed into the loss.

    ``energy_per_atom`` multiplies mean((dE/N)^2) in (eV/atom)^2, ``forces`` mean(dF^2) over all
    Cartesian components in (eV/A)^2, ``stress`` mean(dS^2) over the 9 components in (eV/A^3)^2
    (structures without a stress label or not periodic in 3D are left out).  With the defaults,
    errors of 10 meV/atom, 0.1 eV/A and 0.01 eV/A^3 (1.6 GPa) contribute 1e-3, 1e-2 and 1e-2.
    """

    energy_per_atom: float = 10.0
    forces: float = 1.0
    stress: float = 100.0


@dataclass
class OptimizerConfig:
    """AdamW and gradient clipping (``clip_grad_norm`` None: no clipping)."""

    lr: float = 2.0e-3
    weight_decay: float = 1.0e-3
    clip_grad_norm: float | None = 10.0


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped every optimizer step.

    ``kind="cosine"``: linear warmup over ``warmup_epochs`` then cosine decay to
    ``min_lr_ratio * lr`` at the last epoch.  ``kind="plateau"``: warmup, then the rate is
    multiplied by ``plateau_factor`` whenever the validation loss has not improved for
    ``plateau_patience`` epochs (down to ``min_lr_ratio * lr``).  ``kind="constant"``: warmup only.
    """

    kind: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    plateau_factor: float = 0.5
    plateau_patience: int = 5


@dataclass
class TrainConfig:
    """A training run.

    Attributes:
        model: ``ESCNConfig`` fields.  Unset fields come from ``init_checkpoint``'s architecture if
            there is one, else from ``ESCNConfig``'s defaults, except ``forces``, ``smooth_cutoff``
            and ``max_neighbors``, which default to conservative / True / None, and (without an
            init checkpoint) ``activation`` and ``pair_repulsion``, which default to ``"gate"``
            and ``"zbl"``.
        epochs: passes over the training set (the schedule spans them).
        max_minutes: wall-time budget of one invocation; training stops cleanly when it is spent
            (checkpoint, validation, test).  None: no limit.
        max_steps: stop cleanly after this many optimizer steps in all (None: no limit).
        batch_size: structures packed into one graph per optimizer step.
        ema_decay: decay of the exponential moving average of the weights that is validated and
            saved (0: no averaging).
        dtype: ``float32`` or ``float64`` for the weights and the data.
        init_checkpoint: start from this escn_ase or fairchem eSCN checkpoint (fine-tuning); weights
            whose names and shapes match are reused.
        weight_init: initialisation of the weights not taken from ``init_checkpoint``: ``lecun``
            (variance 1/fan_in, see ``initial_weights.lecun_initialise``) or ``torch`` (its defaults).
        energy_scale: the model's ``energy_scale`` buffer; None: the force RMS of the training set
            over ``ENERGY_SCALE`` (see ``escn_ase.training.scaling``), or the init checkpoint's value.
        fit_element_references: fit per-element energies by least squares before training.
        checkpoint_every_minutes: also write ``last.pt`` this often within an epoch.
        progress_bar: show a tqdm bar per epoch.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    epochs: int = 100
    max_minutes: float | None = None
    max_steps: int | None = None
    batch_size: int = 8
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    output_dir: str = "runs/escn"
    init_checkpoint: str | None = None
    weight_init: Literal["lecun", "torch"] = "lecun"
    energy_scale: float | None = None
    fit_element_references: bool = True
    checkpoint_every_minutes: float = 10.0
    progress_bar: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``TrainingConfigError`` for values no run could use."""
        problems = []
        if not self.data.train:
            problems.append("data.train (the training file) is required")
        if not 0.0 <= self.data.val_fraction < 1.0:
            problems.append(f"data.val_fraction must be in [0, 1), got {self.data.val_fraction}")
        if self.data.val is None and self.data.val_fraction == 0.0:
            problems.append("no validation data: set data.val or a positive data.val_fraction")
        for name in ("energy_per_atom", "forces", "stress"):
            if getattr(self.loss, name) < 0:
                problems.append(f"loss.{name} must be >= 0, got {getattr(self.loss, name)}")
        if self.loss.energy_per_atom == self.loss.forces == self.loss.stress == 0:
            problems.append("all loss weights are zero")
        if self.optimizer.lr <= 0:
            problems.append(f"optimizer.lr must be positive, got {self.optimizer.lr}")
        if self.optimizer.weight_decay < 0:
            problems.append(f"optimizer.weight_decay must be >= 0, got {self.optimizer.weight_decay}")
        if self.optimizer.clip_grad_norm is not None and self.optimizer.clip_grad_norm <= 0:
            problems.append(f"optimizer.clip_grad_norm must be positive or null, got {self.optimizer.clip_grad_norm}")
        if self.schedule.warmup_epochs < 0:
            problems.append(f"schedule.warmup_epochs must be >= 0, got {self.schedule.warmup_epochs}")
        if not 0.0 <= self.schedule.min_lr_ratio <= 1.0:
            problems.append(f"schedule.min_lr_ratio must be in [0, 1], got {self.schedule.min_lr_ratio}")
        if not 0.0 < self.schedule.plateau_factor < 1.0:
            problems.append(f"schedule.plateau_factor must be in (0, 1), got {self.schedule.plateau_factor}")
        if self.schedule.plateau_patience < 0:
            problems.append(f"schedule.plateau_patience must be >= 0, got {self.schedule.plateau_patience}")
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1, got {self.epochs}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"max_minutes must be positive or null, got {self.max_minutes}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be at least 1 or null, got {self.max_steps}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.energy_scale is not None and self.energy_scale <= 0:
            problems.append(f"energy_scale must be positive or null, got {self.energy_scale}")
        if self.checkpoint_every_minutes <= 0:
            problems.append(f"checkpoint_every_minutes must be positive, got {self.checkpoint_every_minutes}")
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda", "mps")):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.model.get("forces", "conservative") != "conservative":
            problems.append("model.forces: the trainer trains conservative models (forces = -dE/dx)")
        try:
            self.model_config()
        except TrainingConfigError as exc:
            problems.append(str(exc))
        except (TypeError, ValueError) as exc:
            problems.append(f"model: {exc}")
        if problems:
            raise TrainingConfigError("invalid training config: " + "; ".join(problems))

    # ------------------------------------------------------------------ derived
    def model_config(self, base: ESCNConfig | None = None) -> ESCNConfig:
        """The architecture: ``base`` (an init checkpoint's) or the defaults, overridden by ``model``."""
        values = dict(base.to_dict()) if base is not None else dict(FROM_SCRATCH_MODEL_DEFAULTS)
        values.update(TRAINING_MODEL_DEFAULTS)
        hints = typing.get_type_hints(ESCNConfig)
        values.update({k: _coerce(v, hints[k], f"model.{k}") if k in hints else v for k, v in self.model.items()})
        return ESCNConfig.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from plain values (parsed YAML), naming every unknown key and mistyped value."""
        return _build_dataclass(cls, values, "")


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a ``TrainConfig`` from a YAML file."""
    yaml = _import_yaml()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TrainingConfigError(f"{path}: not valid YAML: {exc}") from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise TrainingConfigError(
            f"{path}: expected a mapping of settings at the top level, found {type(values).__name__}"
        )
    try:
        return TrainConfig.from_dict(values)
    except TrainingConfigError as exc:
        raise TrainingConfigError(f"{path}: {exc}") from exc


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML (every field, defaults included)."""
    yaml = _import_yaml()
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def _import_yaml():
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("training configs need PyYAML: pip install 'escn-ase[train]'") from exc
    return yaml


# ---------------------------------------------------------------------- typed construction
def _build_dataclass(cls, values: Any, where: str):
    section = where.rstrip(".") or "the top level"
    if not isinstance(values, dict):
        raise TrainingConfigError(f"{section}: expected a mapping, got {type(values).__name__} {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise TrainingConfigError(
            f"unknown key(s) {unknown} in {section}; known keys: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{where}{name}") for name, value in values.items()}
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` checked against the type ``hint`` (ints accepted as floats, '1e-3' strings as floats)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, f"{name}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, name)
            except TrainingConfigError as exc:
                errors.append(str(exc))
        raise TrainingConfigError(errors[0] if len(errors) == 1 else f"{name}: {value!r} fits none of {options}")
    if origin is Literal:
        if value not in args:
            raise TrainingConfigError(f"{name}: must be one of {list(args)}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TrainingConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrainingConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if hint is float:
        # YAML 1.1 reads 1e-3 (no dot) as a string; accept it as the number it plainly is.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrainingConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TrainingConfigError(f"{name}: expected a string, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise TrainingConfigError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"no conversion for {name} of type {hint}")  # a field type this module does not handle
