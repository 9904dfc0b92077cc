"""Learning-curve figure of a training run (matplotlib, no display needed)."""

from __future__ import annotations

import os

__all__ = ["plot_learning_curve"]

_PANELS = (
    ("loss", "loss (weighted MSE)", ("train_loss", "val_loss")),
    ("energy", "energy MAE (meV/atom)", ("val_energy_mae_mev_per_atom",)),
    ("forces", "force MAE (eV/A)", ("val_forces_mae_ev_per_a",)),
    ("stress", "stress MAE (meV/A^3)", ("val_stress_mae_mev_per_a3",)),
)


def plot_learning_curve(history: list[dict], path: str | os.PathLike) -> None:
    """Write a PNG of the losses and validation errors against epoch (log scale).

    ``history`` holds one dict per row of the training CSV (keys as in ``Trainer.CSV_COLUMNS``).
    """
    try:
        from matplotlib import ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("learning curves need matplotlib: pip install 'escn-ase[train]'") from exc

    figure = Figure(figsize=(10, 7), constrained_layout=True)
    FigureCanvasAgg(figure)  # attaches an Agg canvas; no pyplot, no global backend change
    axes = figure.subplots(2, 2).ravel()
    epochs = [row["epoch"] for row in history]
    for axis, (_, title, keys) in zip(axes, _PANELS):
        for key in keys:
            points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) not in (None, "")]
            positive = [(e, v) for e, v in points if v > 0]
            if positive:
                axis.plot(*zip(*positive), marker="o", markersize=3, label=key.split("_", 1)[0])
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.set_ylabel(title)
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        if axis.lines:
            axis.set_yscale("log")
            # Plain numbers at 1, 2 and 5 per decade (0.05, 0.1, 0.2 ...) instead of bare powers of ten.
            axis.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            axis.yaxis.set_minor_formatter(ticker.NullFormatter())
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
        axis.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=100)
