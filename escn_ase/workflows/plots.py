"""PNG figures of the workflows, drawn with matplotlib's object API (no pyplot, no global backend change)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ._common import optional_import

__all__ = ["plot_adsorption_minima", "plot_md_log", "plot_phonons"]


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kwargs):
    figure_module = optional_import("matplotlib.figure")
    agg = optional_import("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=(width, height), layout="constrained")
    agg.FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False, **kwargs)
    return figure, axes


def plot_md_log(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> str:
    """Energies (per atom, relative to the first row) and temperature versus time; volume if logged."""
    time_ps = np.array([r["time_fs"] for r in rows], dtype=float) / 1000.0
    n_atoms = max(int(rows[0]["n_atoms"]), 1) if rows else 1
    volumes = [r.get("volume_A3") for r in rows]
    # a volume panel only where the volume changes (NPT)
    has_volume = bool(rows) and None not in volumes and max(volumes) - min(volumes) > 1e-9
    figure, axes = _figure(7.0, 7.5 if has_volume else 5.5, nrows=3 if has_volume else 2, sharex=True)
    energy_axis, temperature_axis = axes[0, 0], axes[1, 0]
    for key, label in (("epot_eV", "E_pot"), ("ekin_eV", "E_kin"), ("etot_eV", "E_tot")):
        values = np.array([r[key] for r in rows], dtype=float)
        if len(values):
            energy_axis.plot(time_ps, (values - values[0]) / n_atoms, label=label)
    energy_axis.set_ylabel("E - E(t=0) (eV/atom)")
    energy_axis.legend(loc="best")
    temperature_axis.plot(time_ps, [r["temperature_K"] for r in rows], color="tab:red")
    temperature_axis.set_ylabel("T (K)")
    if has_volume:
        axes[2, 0].plot(time_ps, [r["volume_A3"] for r in rows], color="tab:green")
        axes[2, 0].set_ylabel("V (A^3)")
    axes[-1, 0].set_xlabel("time (ps)")
    if title:
        energy_axis.set_title(title)
    figure.savefig(path, dpi=120)
    return str(path)


def plot_adsorption_minima(minima: Sequence[dict], path: str | os.PathLike, title: str = "") -> str:
    """Grouped bars: lowest adsorption energy of each adsorbate (groups) on each surface (bars)."""
    surfaces = sorted({m["surface"] for m in minima})
    adsorbates = sorted({m["adsorbate"] for m in minima})
    values = {(m["surface"], m["adsorbate"]): m["adsorption_energy"] for m in minima}
    figure, axes = _figure(max(5.0, 1.2 * len(adsorbates) * max(1, len(surfaces)) ** 0.5 + 3), 4.0)
    axis = axes[0, 0]
    width = 0.8 / max(len(surfaces), 1)
    positions = np.arange(len(adsorbates))
    for k, surface in enumerate(surfaces):
        heights = [values.get((surface, a), np.nan) for a in adsorbates]
        axis.bar(positions + (k - (len(surfaces) - 1) / 2) * width, heights, width, label=surface)
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(positions, adsorbates)
    axis.set_ylabel("lowest E_ads (eV)")
    axis.legend(loc="best", fontsize="small")
    if title:
        axis.set_title(title)
    figure.savefig(path, dpi=120)
    return str(path)


def plot_phonons(
    distances: Sequence[np.ndarray],
    frequencies: Sequence[np.ndarray],
    tick_positions: Sequence[float],
    tick_labels: Sequence[str],
    dos_frequencies: np.ndarray | None,
    dos: np.ndarray | None,
    path: str | os.PathLike,
    title: str = "",
) -> str:
    """Phonon band structure (segments of distances/frequencies in THz) with the DOS beside it."""
    with_dos = dos is not None
    figure, axes = _figure(
        8.0 if with_dos else 6.0,
        4.5,
        ncols=2 if with_dos else 1,
        sharey=True,
        gridspec_kw={"width_ratios": [3, 1]} if with_dos else None,
    )
    band_axis = axes[0, 0]
    for segment_distance, segment_frequencies in zip(distances, frequencies):
        band_axis.plot(segment_distance, segment_frequencies, color="tab:blue", linewidth=1.0)
    for x in tick_positions:
        band_axis.axvline(x, color="grey", linewidth=0.5)
    band_axis.axhline(0.0, color="black", linewidth=0.5)
    band_axis.set_xticks(list(tick_positions), list(tick_labels))
    band_axis.set_xlim(tick_positions[0], tick_positions[-1])
    band_axis.set_ylabel("frequency (THz)")
    if with_dos:
        axes[0, 1].plot(dos, dos_frequencies, color="tab:blue")
        axes[0, 1].set_xlabel("DOS (states/THz)")
        axes[0, 1].set_xlim(left=0)
    if title:
        band_axis.set_title(title)
    figure.savefig(path, dpi=120)
    return str(path)
