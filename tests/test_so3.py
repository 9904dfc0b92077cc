"""SO(3) primitives against e3nn and against their defining identities."""

import math

import pytest
import torch
from e3nn import o3

from escn_ase.so3 import (
    coefficient_layout,
    edge_rotation_matrices,
    from_grid_matrix,
    grid_resolution,
    lm_index,
    sphere_sample_points,
    spherical_harmonics_unnormalized,
    to_grid_matrix,
    wigner_d_rows,
)


def _e3nn_wigner(rotations: torch.Tensor, lmax: int) -> torch.Tensor:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        blocks = [o3.Irrep(l, 1).D_from_matrix(rotations) for l in range(lmax + 1)]
    finally:
        torch.set_default_dtype(previous)
    return torch.stack([torch.block_diag(*[b[e] for b in blocks]) for e in range(rotations.shape[0])])


@pytest.mark.parametrize("lmax", [0, 1, 3, 6])
def test_wigner_matches_e3nn(lmax):
    torch.manual_seed(lmax)
    rotations = o3.rand_matrix(20, dtype=torch.float64)
    expected = _e3nn_wigner(rotations, lmax)
    assert torch.allclose(wigner_d_rows(rotations, lmax), expected, atol=1e-12)
    got32 = wigner_d_rows(rotations.float(), lmax)
    assert (got32.double() - expected).abs().max() < 5e-6


def test_wigner_is_a_representation_and_selects_rows():
    torch.manual_seed(1)
    r1, r2 = o3.rand_matrix(2, 5, dtype=torch.float64)
    d1, d2, d12 = wigner_d_rows(r1, 4), wigner_d_rows(r2, 4), wigner_d_rows(r1 @ r2, 4)
    assert torch.allclose(d1 @ d2, d12, atol=1e-12)
    layout = coefficient_layout(4, 2)
    rows = wigner_d_rows(r1, 4, layout.mmajor)
    assert torch.equal(rows, d1[:, layout.mmajor])


def test_spherical_harmonics_rotate_with_wigner():
    torch.manual_seed(2)
    rotation = o3.rand_matrix(1, dtype=torch.float64)
    points = torch.randn(7, 3, dtype=torch.float64)
    y = spherical_harmonics_unnormalized(3, points)
    y_rot = spherical_harmonics_unnormalized(3, points @ rotation[0].T)
    assert torch.allclose(y_rot, y @ wigner_d_rows(rotation, 3)[0].T, atol=1e-12)


def test_edge_frames_map_edges_onto_y():
    torch.manual_seed(3)
    vectors = torch.randn(50, 3, dtype=torch.float64)
    vectors[0] = torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64)  # along the polar axis
    vectors[1] = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)  # equal components: tie in the rule
    rotations = edge_rotation_matrices(vectors)
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    mapped = torch.einsum("eij,ej->ei", rotations, unit)
    assert torch.allclose(mapped, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(mapped), atol=1e-12)
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(rotations @ rotations.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(rotations), torch.ones(50, dtype=torch.float64), atol=1e-12)


def test_wigner_gradient_is_finite_for_edges_along_axes():
    vectors = torch.tensor([[0.0, 1.5, 0.0], [0.0, -2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    vectors.requires_grad_(True)
    d = wigner_d_rows(edge_rotation_matrices(vectors), 4, coefficient_layout(4, 2).mmajor)
    (grad,) = torch.autograd.grad((d * torch.arange(d.numel(), dtype=d.dtype).view_as(d).sin()).sum(), vectors)
    assert torch.isfinite(grad).all()


def test_mmajor_layout():
    layout = coefficient_layout(3, 2)
    assert layout.m_sizes == (4, 3, 2)
    expected = [lm_index(l, 0) for l in range(4)]
    expected += [lm_index(l, 1) for l in range(1, 4)] + [lm_index(l, -1) for l in range(1, 4)]
    expected += [lm_index(l, 2) for l in range(2, 4)] + [lm_index(l, -2) for l in range(2, 4)]
    assert layout.mmajor.tolist() == expected
    assert layout.n_reduced == 4 + 6 + 4
    with pytest.raises(ValueError):
        coefficient_layout(2, 3)


@pytest.mark.parametrize("lmax,mmax", [(3, 3), (4, 2), (6, 3)])
def test_grid_round_trip_is_identity(lmax, mmax):
    layout = "lmajor" if lmax == mmax else "mmajor"
    to_mat = to_grid_matrix(lmax, mmax, layout=layout, dtype=torch.float64)
    from_mat = from_grid_matrix(lmax, mmax, layout=layout, dtype=torch.float64)
    res_beta, res_alpha = grid_resolution(lmax, mmax)
    assert to_mat.shape[0] == res_beta * res_alpha
    identity = torch.eye(to_mat.shape[1], dtype=torch.float64)
    assert torch.allclose(from_mat.T @ to_mat, identity, atol=1e-10)


def test_grid_values_are_function_values():
    lmax = 3
    to_mat = to_grid_matrix(lmax, lmax, dtype=torch.float64)
    res_beta, res_alpha = grid_resolution(lmax, lmax)
    beta = (torch.arange(res_beta, dtype=torch.float64) + 0.5) * math.pi / res_beta
    alpha = torch.arange(res_alpha, dtype=torch.float64) * 2 * math.pi / res_alpha
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    # e3nn: y is the polar axis; x = sin(b) sin(a), y = cos(b), z = sin(b) cos(a).
    points = torch.stack([b.sin() * a.sin(), b.cos(), b.sin() * a.cos()], dim=-1).reshape(-1, 3)
    expected = spherical_harmonics_unnormalized(lmax, points)
    assert torch.allclose(to_mat, expected, atol=1e-10)


def test_sphere_points_are_density_weighted_fibonacci_points():
    points = sphere_sample_points(64)
    norms = points.norm(dim=1)
    assert points.shape == (64, 3)
    assert 0.9 < norms.min() < 1.0 < norms.max() < 1.1
    assert abs(norms.mean().item() - 1.0) < 0.02
    with pytest.raises(ValueError):
        sphere_sample_points(1)


def test_cached_constants_are_handed_out_as_copies():
    """Writing into a cached table or into a model buffer built from one changes no later result."""
    from escn_ase import ESCN, ESCNConfig
    from escn_ase.so3 import coefficient_layout, sphere_sample_points
    from escn_ase.so3.grid import to_grid_matrix

    layout = coefficient_layout(3, 2)
    layout.mmajor.fill_(0)
    assert coefficient_layout(3, 2).mmajor.unique().numel() > 1
    points = sphere_sample_points(16)
    points.zero_()
    assert sphere_sample_points(16).abs().sum() > 0
    grid = to_grid_matrix(2, 1, layout="mmajor")
    grid.mul_(0)
    assert to_grid_matrix(2, 1, layout="mmajor").abs().sum() > 0

    config = ESCNConfig(num_layers=1, lmax=2, mmax=1, sphere_channels=4, hidden_channels=4, edge_channels=4,
                        num_sphere_samples=16)
    first = ESCN(config)
    first.sphere_points.zero_()
    for buffer in first.buffers():
        buffer.zero_()
    second = ESCN(config)
    assert second.sphere_points.abs().sum() > 0
    assert second.layer_blocks[0].message_block.to_grid.abs().sum() > 0
