"""Loss of a batch and error metrics of a data set.

Units of the metrics (named in their keys): energy per atom in meV/atom, forces in eV/A (per
Cartesian component), stress in meV/A^3 (per tensor component; 1 meV/A^3 = 0.1602 GPa).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ..model import ESCN
from .config import LossConfig
from .data import StructureSet, TrainingBatch

__all__ = ["predict_batch", "batch_loss", "ErrorAccumulator", "evaluate"]


def predict_batch(model: ESCN, batch: TrainingBatch, compute_stress: bool, create_graph: bool) -> dict:
    """Energies, forces (and stress) of a batch; ``create_graph`` to train on the derivatives."""
    return model.predict(
        **batch.graph.model_inputs(),
        cells=batch.graph.cells,
        compute_stress=compute_stress and batch.has_stress,
        create_graph=create_graph,
    )


def batch_loss(out: dict, batch: TrainingBatch, weights: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of mean squared errors (see ``LossConfig``) and its terms as floats."""
    energy_error = (out["energy"] - batch.energy) / batch.n_atoms
    terms = {
        "energy_per_atom": energy_error.pow(2).mean(),
        "forces": (out["forces"] - batch.forces).pow(2).mean(),
    }
    if "stress" in out and batch.has_stress:
        terms["stress"] = (out["stress"] - batch.stress)[batch.stress_mask].pow(2).mean()
    loss = sum(getattr(weights, name) * value for name, value in terms.items())
    return loss, {name: float(value.detach()) for name, value in terms.items()}


class ErrorAccumulator:
    """Sums of absolute and squared errors over batches, turned into MAE/RMSE and the loss."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)

    def add(self, out: dict, batch: TrainingBatch, mask: torch.Tensor | None = None) -> None:
        """Add the errors of ``batch`` (only its structures where ``mask (n_systems,)`` is True)."""
        systems = torch.ones_like(batch.energy, dtype=torch.bool) if mask is None else mask
        atoms = systems[batch.graph.system_index]
        energy_error = ((out["energy"] - batch.energy) / batch.n_atoms)[systems].detach().double()
        force_error = (out["forces"] - batch.forces)[atoms].detach().double()
        self._add("energy", energy_error)
        self._add("forces", force_error)
        if "stress" in out:
            self._add("stress", (out["stress"] - batch.stress)[systems & batch.stress_mask].detach().double())
        self.sums["n_structures"] += float(systems.sum())

    def _add(self, name: str, error: torch.Tensor) -> None:
        self.sums[f"{name}_abs"] += float(error.abs().sum())
        self.sums[f"{name}_sq"] += float(error.pow(2).sum())
        self.sums[f"{name}_n"] += error.numel()

    def metrics(self, weights: LossConfig) -> dict[str, float]:
        """MAE/RMSE per quantity (units in the key names) and the weighted loss on the whole set."""
        result: dict[str, float] = {"n_structures": int(self.sums["n_structures"])}
        loss = 0.0
        for name, weight, unit, factor in (
            ("energy", weights.energy_per_atom, "mev_per_atom", 1000.0),
            ("forces", weights.forces, "ev_per_a", 1.0),
            ("stress", weights.stress, "mev_per_a3", 1000.0),
        ):
            n = self.sums[f"{name}_n"]
            if n == 0:
                continue
            mse = self.sums[f"{name}_sq"] / n
            result[f"{name}_mae_{unit}"] = factor * self.sums[f"{name}_abs"] / n
            result[f"{name}_rmse_{unit}"] = factor * float(np.sqrt(mse))
            loss += weight * mse
        result["loss"] = loss
        return result


def evaluate(
    model: ESCN,
    data: StructureSet,
    weights: LossConfig,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype,
    by_family: bool = False,
) -> dict:
    """Metrics of ``model`` on ``data`` (see ``ErrorAccumulator.metrics``).

    With ``by_family``, adds ``"by_family": {family: metrics}`` for structures carrying
    ``info["family"]``.
    """
    families = np.array([str(atoms.info.get("family", "")) for atoms in data.structures])
    names = sorted({str(name) for name in families} - {""}) if by_family else []  # str, not numpy.str_
    total = ErrorAccumulator()
    per_family = {name: ErrorAccumulator() for name in names}
    order = np.arange(len(data))
    for start in range(0, len(data), batch_size):
        indices = order[start : start + batch_size]
        batch = data.batch(indices, device, dtype)
        out = predict_batch(model, batch, compute_stress=True, create_graph=False)
        total.add(out, batch)
        for name in names:
            mask = torch.as_tensor(families[indices] == name, device=batch.energy.device)
            if mask.any():
                per_family[name].add(out, batch, mask)
    result = total.metrics(weights)
    if names:
        result["by_family"] = {name: acc.metrics(weights) for name, acc in per_family.items()}
    return result
