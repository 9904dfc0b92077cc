"""Training data: a seeded, reproducible EMT data set generator and its loader.

See :mod:`escn_ase.data.emt_dataset` for the families, the storage convention and the split rules.
"""

from .emt_dataset import (
    FAMILIES,
    GENERATOR_VERSION,
    SIZE_PRESETS,
    SPLITS,
    Recipe,
    generate_dataset,
    load_dataset,
    make_recipe,
)

__all__ = [
    "FAMILIES",
    "GENERATOR_VERSION",
    "SIZE_PRESETS",
    "SPLITS",
    "Recipe",
    "generate_dataset",
    "load_dataset",
    "make_recipe",
]
