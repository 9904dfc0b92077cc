"""The SO(2) convolution commutes with rotations about the edge (polar) axis: the paper's reduction."""

import math

import pytest
import torch

from escn_ase.nn import SO2Convolution
from escn_ase.so3 import coefficient_layout, wigner_d_rows


def _rotation_about_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


@pytest.mark.parametrize("lmax,mmax", [(2, 1), (4, 2), (6, 3)])
def test_so2_convolution_is_equivariant_to_rolls(lmax, mmax):
    torch.manual_seed(lmax)
    layout = coefficient_layout(lmax, mmax)
    conv = SO2Convolution(lmax, mmax, sphere_channels=5, hidden_channels=7, edge_channels=3).double()
    x = torch.randn(4, layout.n_reduced, 5, dtype=torch.float64)
    edge_scalars = torch.randn(4, 3, dtype=torch.float64)
    roll = wigner_d_rows(_rotation_about_y(0.7)[None], lmax)[0][layout.mmajor][:, layout.mmajor]
    # A roll about the polar axis never mixes orders: the reduced block is itself orthogonal.
    assert torch.allclose(roll @ roll.T, torch.eye(layout.n_reduced, dtype=torch.float64), atol=1e-12)
    rolled_then_conv = conv(torch.einsum("ij,ejc->eic", roll, x), edge_scalars)
    conv_then_rolled = torch.einsum("ij,ejc->eic", roll, conv(x, edge_scalars))
    assert torch.allclose(rolled_then_conv, conv_then_rolled, atol=1e-10)


def test_so2_convolution_mixes_degrees_within_an_order():
    torch.manual_seed(0)
    layout = coefficient_layout(3, 2)
    conv = SO2Convolution(3, 2, sphere_channels=2, hidden_channels=4, edge_channels=2).double()
    x = torch.zeros(1, layout.n_reduced, 2, dtype=torch.float64)
    x[0, 1, 0] = 1.0  # (l=1, m=0) only
    out = conv(x, torch.randn(1, 2, dtype=torch.float64))
    m0 = layout.m_sizes[0]
    assert out[0, :m0].abs().sum() > 0  # other degrees of m = 0 are reached
    assert out[0, m0:].abs().max() == 0  # no other order is
