"""Training conservative eSCN models on labelled structures (``escn-ase train CONFIG.yaml``).

Layers: ``config`` (what to do) -> ``data`` (labelled structures, cached graphs, batches) ->
``scaling`` / ``metrics`` / ``schedule`` / ``ema`` / ``initial_weights`` (pieces of a run) -> ``trainer``
(the loop and its files) -> ``plots``.
"""

from .config import (
    DataConfig,
    LossConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    TrainingConfigError,
    load_config,
    save_config,
)
from .data import LabelError, StructureSet, TrainingBatch, read_labelled_structures
from .metrics import evaluate
from .plots import plot_learning_curve
from .scaling import choose_energy_scale, fit_element_references
from .trainer import Trainer, train

__all__ = [
    "DataConfig",
    "LabelError",
    "LossConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "StructureSet",
    "TrainConfig",
    "Trainer",
    "TrainingBatch",
    "TrainingConfigError",
    "choose_energy_scale",
    "evaluate",
    "fit_element_references",
    "load_config",
    "plot_learning_curve",
    "read_labelled_structures",
    "save_config",
    "train",
]
