"""Learning-rate schedule: linear warmup, then cosine decay, plateau reduction or a constant rate.

One small class instead of chained torch schedulers: warmup and plateau reduction both scale the
rate, and torch's ``LambdaLR`` would overwrite ``ReduceLROnPlateau``'s changes.  Its whole state is
a few numbers (``state_dict``), so a resumed run continues with the same rates.
"""

from __future__ import annotations

import math

import torch

from .config import ScheduleConfig

__all__ = ["LearningRateSchedule"]


class LearningRateSchedule:
    """Sets ``optimizer``'s learning rate before every step.

    Args:
        optimizer: its ``param_groups``' ``lr`` is overwritten (base rate ``base_lr``).
        config: kind, warmup, floor and plateau settings.
        base_lr: the peak rate.
        total_steps: optimizer steps of the whole run (the cosine reaches its floor there).
        warmup_steps: steps of linear increase from ``base_lr / warmup_steps``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        config: ScheduleConfig,
        base_lr: float,
        total_steps: int,
        warmup_steps: int,
    ) -> None:
        self.optimizer = optimizer
        self.config = config
        self.base_lr = base_lr
        self.total_steps = max(1, total_steps)
        self.warmup_steps = max(0, warmup_steps)
        self.step_count = 0
        self.plateau_scale = 1.0
        self.best_loss = math.inf
        self.epochs_without_improvement = 0
        self._apply()

    def factor(self, step: int) -> float:
        """Rate of step ``step`` relative to ``base_lr``."""
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        floor = self.config.min_lr_ratio
        if self.config.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, max(0.0, (step - self.warmup_steps) / span))
            decay = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        elif self.config.kind == "plateau":
            decay = max(floor, self.plateau_scale)
        else:
            decay = 1.0
        return warmup * decay

    @property
    def lr(self) -> float:
        return self.base_lr * self.factor(self.step_count)

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step(self) -> None:
        """Call after each optimizer step."""
        self.step_count += 1
        self._apply()

    def end_epoch(self, val_loss: float) -> None:
        """Call after each epoch's validation (drives the plateau reduction)."""
        if val_loss < self.best_loss * (1.0 - 1e-4):
            self.best_loss = val_loss
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
            if self.config.kind == "plateau" and self.epochs_without_improvement > self.config.plateau_patience:
                self.plateau_scale *= self.config.plateau_factor
                self.epochs_without_improvement = 0
        self._apply()

    def state_dict(self) -> dict:
        return {
            "step_count": self.step_count,
            "plateau_scale": self.plateau_scale,
            "best_loss": self.best_loss,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self.plateau_scale = float(state["plateau_scale"])
        self.best_loss = float(state["best_loss"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self._apply()
