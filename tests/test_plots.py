"""Figures say what they show: labelled axes, site names, model and references, what MD conserves."""

from __future__ import annotations

import numpy as np

from escn_ase.workflows.plots import adsorption_minima_figure, md_log_figure

MINIMA = [
    dict(surface="Cu(111)", adsorbate="O", site="hollow", site_index=0, adsorption_energy=-0.5),
    dict(surface="Pt(111)", adsorbate="O", site="hollow", site_index=1, adsorption_energy=-0.3),
    dict(surface="Cu(111)", adsorbate="H", site="ontop", site_index=0, adsorption_energy=0.1, all_sites_flagged=True),
    dict(surface="Pt(111)", adsorbate="H", site="bridge", site_index=0, adsorption_energy=-0.4),
]


def _texts(figure) -> list[str]:
    return [text.get_text() for text in figure.findobj(lambda artist: hasattr(artist, "get_text"))]


def test_adsorption_chart_names_axes_sites_model_and_references():
    references = {"H": "E(slab+H) - E(slab) - 0.5 E(H2)", "O": "E(slab+O) - E(slab) - 0.5 E(O2)"}
    figure = adsorption_minima_figure(MINIMA, "minima", references=references, model="escn-emt-small")
    axis = figure.axes[0]
    assert axis.get_xlabel().startswith("adsorbate") and "adsorption energy (eV)" in axis.get_ylabel()
    texts = " | ".join(_texts(figure))
    for site in ("hollow0", "hollow1", "bridge0", "ontop0 (flagged)"):
        assert site in texts
    assert "model: escn-emt-small" in texts and "0.5 E(O2)" in texts and "0.5 E(H2)" in texts
    legend = axis.get_legend()
    assert legend.get_title().get_text() == "surface"
    # The legend sits outside the axes, so it cannot cover a bar.
    figure.canvas.draw()
    legend_box = legend.get_window_extent()
    assert legend_box.x0 >= axis.get_window_extent().x1


def _rows(n=50):
    return [dict(time_fs=5.0 * i, n_atoms=10, epot_eV=np.sin(i / 5), ekin_eV=0.1, etot_eV=np.sin(i / 5) + 0.1,
                 temperature_K=300 + 10 * np.sin(i), volume_A3=100.0) for i in range(n)]


def test_thermostatted_md_plot_says_total_energy_is_not_conserved_and_shows_target():
    figure = md_log_figure(_rows(), "NVT", target_temperature_K=300.0, conserved=False)
    energy_axis, temperature_axis = figure.axes[:2]
    labels = [line.get_label() for line in energy_axis.lines]
    assert any("not conserved" in label for label in labels)
    assert any(np.allclose(line.get_ydata(), 300.0) and "target 300 K" in line.get_label()
               for line in temperature_axis.lines)


def test_nve_md_plot_has_no_target_line():
    figure = md_log_figure(_rows(), "NVE", conserved=True)
    labels = [line.get_label() for axis in figure.axes for line in axis.lines]
    assert any("conserved in NVE" in label for label in labels) and not any("target" in label for label in labels)
