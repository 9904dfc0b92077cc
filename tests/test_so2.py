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


# ---------------------------------------------------------------------- fast path against the oracle
def _message_inputs(activation: str, lmax: int, mmax: int, chunk: int | None):
    """A small model, a rattled slab's graph, random node coefficients (all degrees), float64."""
    from ase.build import fcc111

    from escn_ase import ESCN, ESCNConfig
    from escn_ase.batch import pack_structures
    from escn_ase.nn import cosine_cutoff_envelope
    from escn_ase.so3 import edge_rotation_matrices

    torch.manual_seed(5)
    config = ESCNConfig(num_layers=1, lmax=lmax, mmax=mmax, sphere_channels=4, hidden_channels=6, edge_channels=5,
                        cutoff=4.0, max_neighbors=None, distance_resolution=0.25, num_sphere_samples=30,
                        forces="conservative", smooth_cutoff=True, activation=activation)
    model = ESCN(config).double()
    atoms = fcc111("Cu", (2, 2, 2), vacuum=4.0, periodic=True)
    atoms.rattle(0.1, seed=1)
    inputs = pack_structures([atoms], config, torch.device("cpu"), torch.float64).model_inputs()
    order = torch.argsort(inputs["edge_index"][1], stable=True)
    edge_index = inputs["edge_index"][:, order]
    positions = inputs["positions"].clone().requires_grad_(True)
    vectors = positions[edge_index[0]] - positions[edge_index[1]] + inputs["edge_shifts"][order]
    x = torch.randn(len(atoms), (lmax + 1) ** 2, 4, dtype=torch.float64, requires_grad=True)
    graph = model._edge_graph(edge_index, vectors, len(atoms), chunk)
    distances = torch.linalg.norm(vectors, dim=1)
    oracle_args = dict(
        edge_index=edge_index,
        frame_rows=wigner_d_rows(edge_rotation_matrices(vectors), lmax, model.mmajor_rows),
        radial_basis=model.distance_expansion(distances),
        envelope=cosine_cutoff_envelope(distances, config.cutoff),
    )
    return model, inputs["atomic_numbers"], x, positions, graph, oracle_args


@pytest.mark.parametrize("activation", ["gate", "s2_grid"])
@pytest.mark.parametrize("lmax,mmax,chunk", [(2, 1, None), (3, 2, 40), (2, 2, None)])
def test_fast_message_path_matches_the_oracle_in_values_and_gradients(activation, lmax, mmax, chunk):
    from escn_ase.nn.oracle import message_oracle

    model, numbers, x, positions, graph, oracle_args = _message_inputs(activation, lmax, mmax, chunk)
    block = model.layer_blocks[0].message_block
    fast = block(x, numbers, graph)
    oracle = message_oracle(block, x, numbers, **oracle_args)
    assert fast.abs().max() > 1e-3  # a real signal
    torch.testing.assert_close(fast, oracle, rtol=1e-10, atol=1e-11)
    probe = torch.randn_like(fast)
    weights = [p for p in block.parameters()]
    fast_grads = torch.autograd.grad((fast * probe).sum(), [x, positions, *weights], retain_graph=True)
    oracle_grads = torch.autograd.grad((oracle * probe).sum(), [x, positions, *weights])
    for fast_grad, oracle_grad in zip(fast_grads, oracle_grads):
        torch.testing.assert_close(fast_grad, oracle_grad, rtol=1e-9, atol=1e-10)


def test_fast_first_layer_shortcut_for_scalar_input_matches_the_oracle():
    """The first layer's input has only degree-0 coefficients; the fast path skips orders m > 0 there."""
    from escn_ase.nn.oracle import message_oracle

    model, numbers, x, _, graph, oracle_args = _message_inputs("gate", 3, 2, None)
    scalar = torch.zeros_like(x)
    scalar[:, 0] = x[:, 0]
    block = model.layer_blocks[0].message_block
    torch.testing.assert_close(block(scalar, numbers, graph, scalar_input=True),
                               message_oracle(block, scalar, numbers, **oracle_args), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("lmax,mmax", [(2, 1), (4, 2), (3, 3)])
def test_so2_convolution_module_matches_the_complex_oracle(lmax, mmax):
    from escn_ase.nn.oracle import so2_convolution_oracle

    torch.manual_seed(1)
    layout = coefficient_layout(lmax, mmax)
    conv = SO2Convolution(lmax, mmax, sphere_channels=3, hidden_channels=5, edge_channels=4).double()
    x = torch.randn(6, layout.n_reduced, 3, dtype=torch.float64)
    edge_scalars = torch.randn(6, 4, dtype=torch.float64)
    torch.testing.assert_close(conv(x, edge_scalars), so2_convolution_oracle(conv, x, edge_scalars))
