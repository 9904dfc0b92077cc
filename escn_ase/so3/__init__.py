"""SO(3) primitives: coefficient layouts, Wigner-D matrices, edge frames, S2 grids.

Depends on torch (and e3nn for a few constant tables); imports nothing else of escn_ase.
"""

from .grid import from_grid_matrix, grid_resolution, sphere_sample_points, to_grid_matrix
from .harmonics import spherical_harmonics_unnormalized
from .layout import CoefficientLayout, coefficient_layout, lm_index
from .wigner import edge_rotation_matrices, wigner_d_rows

__all__ = [
    "CoefficientLayout",
    "coefficient_layout",
    "edge_rotation_matrices",
    "from_grid_matrix",
    "grid_resolution",
    "lm_index",
    "sphere_sample_points",
    "spherical_harmonics_unnormalized",
    "to_grid_matrix",
    "wigner_d_rows",
]
