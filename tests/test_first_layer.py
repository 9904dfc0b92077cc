"""The first SO(2) layer computed per atom equals rotating every edge and applying it there."""

import pytest
import torch

from escn_ase import ESCN, ESCNConfig
from escn_ase.nn import SO2Convolution
from escn_ase.nn.edge_groups import group_edges
from escn_ase.nn.first_layer import first_layer_on_edges, order_rows, pad_order_rows
from escn_ase.so3 import coefficient_layout, edge_rotation_matrices, wigner_d_rows


def test_grouping_pads_and_restores_edges():
    torch.manual_seed(0)
    node_of_edge = torch.tensor([3, 0, 3, 1, 3, 0])  # atom 2 has no edges
    groups = group_edges(node_of_edge, n_nodes=4)
    assert (groups.n_groups, groups.width, groups.identity) == (4, 3, False)
    values = torch.randn(6, 2, 5)
    padded = groups.pad(values)
    assert padded.shape == (4, 3, 2, 5)
    # Each atom's row holds its own edges, in edge order, then zeros.
    assert torch.equal(padded[3, :3], values[[0, 2, 4]])
    assert torch.equal(padded[0, :2], values[[1, 5]]) and torch.all(padded[0, 2] == 0)
    assert torch.all(padded[2] == 0)
    assert torch.equal(groups.unpad(padded), values)


def test_grouping_of_sorted_uniform_edges_is_a_view():
    groups = group_edges(torch.arange(5).repeat_interleave(4), n_nodes=5)
    assert groups.identity and groups.width == 4
    values = torch.randn(20, 3)
    assert groups.pad(values).data_ptr() == values.data_ptr()
    assert torch.equal(groups.unpad(groups.pad(values)), values)


def test_grouping_without_edges():
    groups = group_edges(torch.zeros(0, dtype=torch.long), n_nodes=3)
    assert groups.width == 0 and groups.pad(torch.zeros(0, 4)).shape == (3, 0, 4)


@pytest.mark.parametrize("lmax,mmax", [(2, 1), (4, 2), (3, 3)])
def test_per_atom_first_layer_equals_rotate_then_apply(lmax, mmax):
    torch.manual_seed(lmax + mmax)
    n_atoms, n_edges, channels = 7, 30, 4
    layout = coefficient_layout(lmax, mmax)
    blocks = [
        SO2Convolution(lmax, mmax, channels, hidden_channels=6, edge_channels=3).double() for _ in range(2)
    ]
    x = torch.randn(n_atoms, layout.n_coeffs, channels, dtype=torch.float64)
    edge_index = torch.randint(0, n_atoms, (2, n_edges))  # uneven degrees, unsorted
    vectors = torch.randn(n_edges, 3, dtype=torch.float64)
    wigner = wigner_d_rows(edge_rotation_matrices(vectors), lmax, layout.mmajor)
    rows = order_rows(wigner, layout)
    padded = [pad_order_rows(rows, group_edges(edge_index[end], n_atoms)) for end in (0, 1)]
    per_atom = first_layer_on_edges(x, blocks, padded, layout)
    for end, block in enumerate(blocks):
        rotated = torch.bmm(wigner, x[edge_index[end]])  # the reference's route
        per_edge = block.first_layer(rotated)
        for m in range(mmax + 1):
            for ours, theirs in zip(per_atom[end][m], per_edge[m]):
                assert ours.shape == theirs.shape
                assert torch.allclose(ours, theirs, atol=1e-12)


def test_model_does_not_depend_on_edge_order():
    torch.manual_seed(1)
    config = ESCNConfig(num_layers=2, lmax=3, mmax=2, sphere_channels=8, hidden_channels=8, edge_channels=8,
                        cutoff=4.0, max_neighbors=None, num_sphere_samples=16, distance_resolution=0.2,
                        forces="conservative", smooth_cutoff=True)
    model = ESCN(config).double().eval()
    n_atoms = 6
    positions = torch.randn(n_atoms, 3, dtype=torch.float64) * 1.5
    pairs = [(j, i) for i in range(n_atoms) for j in range(n_atoms) if i != j]
    edge_index = torch.tensor(pairs).t()
    inputs = dict(atomic_numbers=torch.tensor([29, 29, 8, 6, 1, 29]), positions=positions,
                  edge_shifts=torch.zeros(len(pairs), 3, dtype=torch.float64),
                  system_index=torch.zeros(n_atoms, dtype=torch.long), n_systems=1)
    ordered = model.predict(edge_index=edge_index, **inputs)
    shuffle = torch.randperm(len(pairs))
    shuffled = model.predict(edge_index=edge_index[:, shuffle], **inputs)
    chunked = model.predict(edge_index=edge_index[:, shuffle], edge_chunk_size=7, **inputs)
    for other in (shuffled, chunked):
        assert torch.allclose(ordered["energy"], other["energy"], atol=1e-12)
        assert torch.allclose(ordered["forces"], other["forces"], atol=1e-10)


@pytest.mark.parametrize("grad", [False, True])
def test_first_layer_skips_orders_that_are_zero_for_degree_zero_input(grad):
    """With only degree-0 coefficients (the embedding fed to the first layer) the orders m > 0 are
    exactly zero: the shortcut gives the layer's full result, with and without autograd, and a
    non-scalar input would not (so the comparison can fail)."""
    torch.manual_seed(3)
    config = ESCNConfig(num_layers=1, lmax=3, mmax=2, sphere_channels=8, hidden_channels=8, edge_channels=8,
                        cutoff=4.0, max_neighbors=None, num_sphere_samples=16, distance_resolution=0.2)
    model = ESCN(config).double().eval()
    n_atoms = 6
    positions = torch.randn(n_atoms, 3, dtype=torch.float64) * 1.5
    edge_index = torch.tensor([(j, i) for i in range(n_atoms) for j in range(n_atoms) if i != j]).t()
    vectors = positions[edge_index[0]] - positions[edge_index[1]]
    graph = model._edge_graph(edge_index, vectors, n_atoms, edge_chunk_size=9)
    numbers = torch.tensor([29, 29, 8, 6, 1, 29])
    layer = model.layer_blocks[0]
    scalar = torch.zeros(n_atoms, config.lmax**2 + 2 * config.lmax + 1, 8, dtype=torch.float64)
    scalar[:, 0] = torch.randn(n_atoms, 8, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        x = scalar.clone().requires_grad_(grad)
        full, short = layer(x, numbers, graph), layer(x, numbers, graph, scalar_input=True)
        assert torch.allclose(short, full, atol=1e-12) and full.abs().max() > 1e-3
        if grad:
            weights = torch.randn_like(full)
            (g_full,) = torch.autograd.grad((full * weights).sum(), x)
            (g_short,) = torch.autograd.grad((short * weights).sum(), x)
            assert torch.allclose(g_short[:, 0], g_full[:, 0], atol=1e-12)
        general = scalar.clone()
        general[:, 1:] = 0.1 * torch.randn_like(general[:, 1:])
        assert not torch.allclose(layer(general, numbers, graph, scalar_input=True), layer(general, numbers, graph))
