"""Workflows on top of any ASE calculator: relaxation and MD (one or many at once), adsorption screening, phonons.

Submodules import their optional dependencies (pymatgen, phonopy, matplotlib, tqdm, dask) only
when used; the names below are loaded lazily.
"""

from __future__ import annotations

import importlib

# Eager (cheap: ase and numpy only). ``relax`` is both a submodule and a function: importing the
# function here, after the submodule, makes ``escn_ase.workflows.relax`` the function for good.
from ._common import CalculatorFactory, default_calculator, is_direct_force
from .relax import RelaxResult, relax

__all__ = [
    "ADSORBATES",
    "Adsorbate",
    "CalculatorFactory",
    "MDSummary",
    "PhononResult",
    "RelaxResult",
    "ScreeningResult",
    "build_slab",
    "compute_phonons",
    "default_calculator",
    "find_sites",
    "is_direct_force",
    "iter_relax_batch",
    "relax",
    "relax_batch",
    "run_md",
    "run_md_batch",
    "screen_adsorption",
]

_WHERE = {
    "ADSORBATES": "adsorbates",
    "Adsorbate": "adsorbates",
    "MDSummary": "md",
    "run_md": "md",
    "relax_batch": "batch_relax",
    "iter_relax_batch": "batch_relax",
    "run_md_batch": "md_batch",
    "PhononResult": "phonons",
    "compute_phonons": "phonons",
    "ScreeningResult": "adsorption",
    "screen_adsorption": "adsorption",
    "build_slab": "surfaces",
    "find_sites": "surfaces",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
