"""The gated blocks (``activation="gate"``): exactly equivariant, independent of how edge frames are completed.

The edge frame of eSCN is fixed only up to a roll about the edge.  A block between the two SO(2)
convolutions must commute with every such roll, or the energy depends on the frame rule and jumps
where the rule switches.  These tests roll the frame by random angles; the reference grid SiLU is
the negative control (it does not commute), so the tests can fail.
"""

import math

import numpy as np
import pytest
import torch
from ase.build import molecule
from scipy.spatial.transform import Rotation

import escn_ase.model as model_module
from escn_ase import ESCN, ESCNConfig
from escn_ase.nn.gate import EdgeFrameGate, NodeGate
from escn_ase.nn.grid_silu import grid_silu
from escn_ase.so3 import coefficient_layout, from_grid_matrix, to_grid_matrix, wigner_d_rows
from escn_ase.training.initial_weights import lecun_initialise


def _about_polar_axis(angle: float) -> torch.Tensor:
    """Rotation about e3nn's polar axis (y), the axis every edge is rotated onto."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


def _roll(lmax: int, mmax: int, angle: float) -> torch.Tensor:
    """The roll's action on the kept edge-frame coefficients (m-major), ``(n_reduced, n_reduced)``."""
    layout = coefficient_layout(lmax, mmax)
    full = wigner_d_rows(_about_polar_axis(angle)[None], lmax)[0]
    kept = full[layout.mmajor][:, layout.mmajor]
    # A roll never mixes orders: rows |m| <= mmax only draw on columns |m| <= mmax.
    assert torch.allclose(kept.abs().sum(1), full[layout.mmajor].abs().sum(1), atol=1e-12)
    return kept


@pytest.mark.parametrize("lmax, mmax", [(2, 1), (4, 2), (3, 3), (6, 2)])
def test_edge_frame_gate_commutes_with_random_rolls(lmax, mmax):
    torch.manual_seed(lmax * 10 + mmax)
    gate = EdgeFrameGate(lmax, mmax, channels=5).double()
    with torch.no_grad():
        for parameter in gate.parameters():
            parameter.normal_()
    n_reduced = coefficient_layout(lmax, mmax).n_reduced
    x = torch.randn(7, n_reduced, 5, dtype=torch.float64)
    for angle in np.random.default_rng(lmax).uniform(0, 2 * math.pi, size=5):
        roll = _roll(lmax, mmax, float(angle))
        torch.testing.assert_close(gate(roll @ x), roll @ gate(x), rtol=0, atol=1e-12)


def test_grid_silu_of_the_reference_does_not_commute_with_rolls():
    """Negative control: with 3 azimuths (mmax = 1) the edge grid SiLU changes under a roll."""
    lmax, mmax = 2, 1
    to_grid = to_grid_matrix(lmax, mmax, layout="mmajor", dtype=torch.float64)
    from_grid = from_grid_matrix(lmax, mmax, layout="mmajor", dtype=torch.float64)
    torch.manual_seed(0)
    x = torch.randn(7, to_grid.shape[1], 5, dtype=torch.float64)
    roll = _roll(lmax, mmax, 0.7)
    difference = (grid_silu(roll @ x, to_grid, from_grid) - roll @ grid_silu(x, to_grid, from_grid)).abs().max()
    assert difference > 1e-3


@pytest.mark.parametrize("lmax", [1, 2, 4])
def test_node_gate_is_rotation_equivariant(lmax):
    torch.manual_seed(lmax)
    gate = NodeGate(lmax, channels=6).double()
    x = torch.randn(4, (lmax + 1) ** 2, 6, dtype=torch.float64)
    rotation = torch.tensor(Rotation.random(random_state=lmax).as_matrix())
    wigner = wigner_d_rows(rotation[None], lmax)[0]
    torch.testing.assert_close(gate(wigner @ x), wigner @ gate(x), rtol=0, atol=1e-12)


def _random_helper_frames(edge_vectors: torch.Tensor) -> torch.Tensor:
    """Edge frames completed with a random helper vector per edge (as the reference draws them)."""
    x_axis = edge_vectors / torch.linalg.norm(edge_vectors, dim=1, keepdim=True)
    helper = torch.randn(edge_vectors.shape, dtype=edge_vectors.dtype, generator=_GENERATOR)
    z_axis = torch.linalg.cross(x_axis, helper, dim=1)
    z_axis = z_axis / torch.linalg.norm(z_axis, dim=1, keepdim=True)
    y_axis = torch.linalg.cross(x_axis, z_axis, dim=1)
    return torch.stack([z_axis, x_axis, -y_axis], dim=1)


_GENERATOR = torch.Generator().manual_seed(5)


def _energy_and_forces(model: ESCN, atoms) -> tuple[float, np.ndarray]:
    from escn_ase.batch import pack_structures

    batch = pack_structures([atoms], model.config, dtype=torch.float64, device=torch.device("cpu"))
    out = model.predict(**batch.model_inputs())
    return float(out["energy"][0]), out["forces"].numpy()


@pytest.mark.parametrize("activation, frame_independent", [("gate", True), ("s2_grid", False)])
def test_model_energy_does_not_depend_on_how_edge_frames_are_completed(monkeypatch, activation, frame_independent):
    torch.manual_seed(3)
    config = ESCNConfig(
        num_layers=2, lmax=3, mmax=1, sphere_channels=8, hidden_channels=16, edge_channels=8, cutoff=4.0,
        max_neighbors=None, num_sphere_samples=24, distance_resolution=0.1, forces="conservative",
        smooth_cutoff=True, activation=activation,
    )
    model = ESCN(config)
    lecun_initialise(model)  # torch's default initialisation makes the energy nearly flat
    model = model.double()
    with torch.no_grad():
        model.energy_scale.fill_(1e5)
    atoms = molecule("CH3CHO")
    atoms.rattle(0.05, seed=1)
    energy, forces = _energy_and_forces(model, atoms)
    assert np.abs(forces).max() > 1e-2  # the energy varies visibly with the geometry
    monkeypatch.setattr(model_module, "edge_rotation_matrices", _random_helper_frames)
    rolled_energy, rolled_forces = _energy_and_forces(model, atoms)
    change = max(abs(rolled_energy - energy), np.abs(rolled_forces - forces).max())
    if frame_independent:
        assert change < 1e-12
    else:
        assert change > 1e-8


def test_gate_blocks_need_a_conservative_model():
    with pytest.raises(ValueError, match="conservative"):
        ESCNConfig(activation="gate", forces="direct")
    with pytest.raises(ValueError, match="activation"):
        ESCNConfig(activation="relu", forces="conservative")
