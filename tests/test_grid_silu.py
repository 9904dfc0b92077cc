"""The tiled edge-major grid SiLU, with its recomputing backward pass, against the plain expression."""

import pytest
import torch

import escn_ase.nn.grid_silu as grid_module
from escn_ase.nn.grid_silu import grid_silu
from escn_ase.so3 import from_grid_matrix, to_grid_matrix


def _plain(x, to_grid, from_grid):
    """X (n_edges, n_coeffs, C)."""
    return from_grid.t() @ torch.nn.functional.silu(to_grid @ x)


@pytest.fixture()
def matrices():
    return to_grid_matrix(3, 2, layout="mmajor").double(), from_grid_matrix(3, 2, layout="mmajor").double()


@pytest.mark.parametrize("edges_per_tile", [1, 3, 1000])
def test_values_gradients_and_second_derivatives_match_the_plain_expression(matrices, monkeypatch, edges_per_tile):
    to_grid, from_grid = matrices
    monkeypatch.setattr(grid_module, "GRID_TILE_ELEMENTS", edges_per_tile * to_grid.shape[0] * 4)
    torch.manual_seed(0)
    x = torch.randn(37, to_grid.shape[1], 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(37, to_grid.shape[1], 4, dtype=torch.float64)

    with torch.no_grad():
        torch.testing.assert_close(grid_silu(x, to_grid, from_grid), _plain(x, to_grid, from_grid), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad((grid_silu(x, to_grid, from_grid) * weights).sum(), x)
    (grad_plain,) = torch.autograd.grad((_plain(x, to_grid, from_grid) * weights).sum(), x)
    torch.testing.assert_close(grad, grad_plain, rtol=0, atol=1e-12)

    # Second derivatives (training on forces differentiates the backward pass).
    (grad,) = torch.autograd.grad((grid_silu(x, to_grid, from_grid) * weights).sum(), x, create_graph=True)
    (grad_plain,) = torch.autograd.grad((_plain(x, to_grid, from_grid) * weights).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad((grad**2).sum(), x)
    (second_plain,) = torch.autograd.grad((grad_plain**2).sum(), x)
    torch.testing.assert_close(second, second_plain, rtol=0, atol=1e-10)


def test_gradcheck(matrices):
    to_grid, from_grid = matrices
    x = torch.randn(3, to_grid.shape[1], 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: grid_silu(v, to_grid, from_grid), (x,))
    assert torch.autograd.gradgradcheck(lambda v: grid_silu(v, to_grid, from_grid), (x,))


def test_the_coefficient_major_route_of_accelerators_gives_the_same_values(matrices, monkeypatch):
    """GPUs take two large products on transposed messages; checked on the CPU by forcing that route."""
    to_grid, from_grid = matrices
    x = torch.randn(9, to_grid.shape[1], 3, dtype=torch.float64)
    tiled = grid_module._forward(x, to_grid, from_grid)

    class FakeDevice:
        type = "cuda"

    class OnFakeDevice(torch.Tensor):
        @property
        def device(self):
            return FakeDevice()

    calls = []
    transpose = grid_module._coefficient_major
    monkeypatch.setattr(grid_module, "_coefficient_major", lambda t: calls.append(t.shape) or transpose(t))
    routed = grid_module._forward(x.as_subclass(OnFakeDevice), to_grid, from_grid)
    assert calls == [x.shape]  # the accelerator route was taken
    torch.testing.assert_close(routed.as_subclass(torch.Tensor), tiled, rtol=0, atol=1e-12)
