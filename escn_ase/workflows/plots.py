"""PNG figures of the workflows, drawn with matplotlib's object API (no pyplot, no global backend change)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ._common import optional_import

__all__ = ["adsorption_minima_figure", "md_log_figure", "plot_adsorption_minima", "plot_md_log", "plot_phonons"]


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kwargs):
    figure_module = optional_import("matplotlib.figure")
    agg = optional_import("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=(width, height), layout="constrained")
    agg.FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False, **kwargs)
    return figure, axes


def plot_md_log(
    rows: Sequence[dict],
    path: str | os.PathLike,
    title: str = "",
    target_temperature_K: float | None = None,
    conserved: bool = True,
) -> str:
    """Write ``md_log_figure(...)`` to ``path`` (PNG); returns the path."""
    md_log_figure(rows, title, target_temperature_K, conserved).savefig(path, dpi=120)
    return str(path)


def md_log_figure(
    rows: Sequence[dict],
    title: str = "",
    target_temperature_K: float | None = None,
    conserved: bool = True,
):
    """Energies (per atom, relative to the first row) and temperature versus time; volume if logged.

    ``target_temperature_K`` draws the thermostat's target; ``conserved=False`` (a thermostat or
    barostat is coupled) labels the total energy as not conserved, since there it need not be.
    """
    time_ps = np.array([r["time_fs"] for r in rows], dtype=float) / 1000.0
    n_atoms = max(int(rows[0]["n_atoms"]), 1) if rows else 1
    volumes = [r.get("volume_A3") for r in rows]
    # a volume panel only where the volume changes (NPT)
    has_volume = bool(rows) and None not in volumes and max(volumes) - min(volumes) > 1e-9
    figure, axes = _figure(7.0, 7.5 if has_volume else 5.5, nrows=3 if has_volume else 2, sharex=True)
    energy_axis, temperature_axis = axes[0, 0], axes[1, 0]
    total_label = "E_tot (conserved in NVE)" if conserved else "E_tot (not conserved: thermostat/barostat)"
    for key, label in (("epot_eV", "E_pot"), ("ekin_eV", "E_kin"), ("etot_eV", total_label)):
        values = np.array([r[key] for r in rows], dtype=float)
        if len(values):
            energy_axis.plot(time_ps, (values - values[0]) / n_atoms, label=label)
    energy_axis.set_ylabel("E - E(t=0) (eV/atom)")
    energy_axis.legend(loc="best")
    temperature_axis.plot(time_ps, [r["temperature_K"] for r in rows], color="tab:red", label="T")
    if target_temperature_K is not None:
        temperature_axis.axhline(
            target_temperature_K,
            color="black",
            linestyle="--",
            linewidth=1.0,
            label=f"target {target_temperature_K:g} K",
        )
        temperature_axis.legend(loc="best", fontsize="small")
    temperature_axis.set_ylabel("T (K)")
    if has_volume:
        axes[2, 0].plot(time_ps, [r["volume_A3"] for r in rows], color="tab:green")
        axes[2, 0].set_ylabel("V (A^3)")
    axes[-1, 0].set_xlabel("time (ps)")
    if title:
        energy_axis.set_title(title)
    return figure


def plot_adsorption_minima(
    minima: Sequence[dict],
    path: str | os.PathLike,
    title: str = "",
    references: dict[str, str] | None = None,
    model: str | None = None,
) -> str:
    """Write ``adsorption_minima_figure(...)`` to ``path`` (PNG); returns the path."""
    adsorption_minima_figure(minima, title, references, model).savefig(path, dpi=120)
    return str(path)


def adsorption_minima_figure(
    minima: Sequence[dict],
    title: str = "",
    references: dict[str, str] | None = None,
    model: str | None = None,
):
    """Grouped bars: lowest adsorption energy of each adsorbate (groups) on each surface (bars), each
    bar labelled with its site; ``references`` (adsorbate -> formula) and ``model`` go under the axes."""
    surfaces = sorted({m["surface"] for m in minima})
    adsorbates = sorted({m["adsorbate"] for m in minima})
    by_key = {(m["surface"], m["adsorbate"]): m for m in minima}
    figure, axes = _figure(max(6.0, 1.4 * len(adsorbates) * max(1, len(surfaces)) ** 0.5 + 3.5), 4.8)
    axis = axes[0, 0]
    width = 0.8 / max(len(surfaces), 1)
    positions = np.arange(len(adsorbates))
    for k, surface in enumerate(surfaces):
        x = positions + (k - (len(surfaces) - 1) / 2) * width
        found = [by_key.get((surface, a)) for a in adsorbates]
        heights = [m["adsorption_energy"] if m else np.nan for m in found]
        bars = axis.bar(x, heights, width, label=surface)
        for bar, minimum in zip(bars, found):
            if minimum is None:
                continue
            site = f"{minimum['site']}{minimum.get('site_index', '')}" + (
                " (flagged)" if minimum.get("all_sites_flagged") else ""
            )
            height = bar.get_height()
            axis.annotate(
                site,
                (bar.get_x() + bar.get_width() / 2, height),
                xytext=(0, -3 if height < 0 else 3),
                textcoords="offset points",
                ha="center",
                va="top" if height < 0 else "bottom",
                fontsize="x-small",
                rotation=90,
            )
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(positions, adsorbates)
    axis.set_xlabel("adsorbate (bar label: site of the lowest energy)")
    axis.set_ylabel("lowest adsorption energy (eV)")
    axis.margins(y=0.4)  # room for the site labels
    axis.legend(title="surface", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    notes = []
    if model:
        notes.append(f"model: {model}")
    if references:
        notes.append("E_ads = " + "; ".join(f"{formula}" for formula in references.values()))
    if notes:
        figure.text(0.01, 0.0, "\n".join(notes), fontsize="x-small", va="bottom", ha="left")
        figure.get_layout_engine().set(rect=(0, 0.04 * len(notes), 1, 1 - 0.04 * len(notes)))
    if title:
        axis.set_title(title)
    return figure


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
