"""FLOP account of one eSCN forward pass, the achieved rate, and where the time goes.

    python benchmarks/bench_flops.py [--quick] [--threads 2] [--config L4-M2-Lay12]
                                     [--structure cu111_co_66] [--repeats 3] [--device cpu]

Model: ``random_model(published_config("L4-M2-Lay12"))`` (random weights, direct forces, as the
published OC20 checkpoints), float32, on the 66-atom Cu(111)+CO slab (1320 edges with
max_neighbors = 20).

Two analytic counts (2 FLOPs per multiply-add, matrix products only; elementwise work, gathers
and the Gaussian basis are well under 1% of the FLOPs, though not of the time):

* **reference algorithm**: what fairchem's eSCN computes: every edge rotates both of its atoms'
  coefficients into its frame, applies the first and second SO(2) layers of each order, the
  edge-frame grid SiLU and rotates back.
* **escn_ase**: the same function computed in another order.  The first SO(2) layer is applied
  once per atom and degree (``node projections``) and each edge only contracts its frame rows
  with its atom's projection (``edge contractions``, padded per atom); rotating back and summing
  is one product per target atom; the node MLP's first and last layers act on coefficients
  instead of grid points.  The first layer's input has degree 0 only, so its orders m > 0 are
  zero and skipped (gates, first and second SO(2) layers of order 0 only, the first layer a
  gather of each atom's degree-0 projection).  Counted from the actual graph (paddings included), and checked
  against ``torch.utils.flop_counter.FlopCounterMode`` on the real forward pass.

Time: the whole energy+forces call through ``ESCNCalculator.calculate`` (median of
``--repeats`` after a warm-up; direct models run under ``torch.inference_mode``), the graph
construction alone, and a ``torch.profiler`` split of one forward pass into matrix products
(mm/addmm/bmm) and everything else.  The achieved rate is given both for the FLOPs escn_ase
executes and for the reference algorithm's FLOPs (the work a reference-style implementation
would have to do in the same time), next to the rate of a large square float32 matmul measured
in the same run.

``--quick``: one timed call, a smaller matmul probe.  Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import torch
from _common import (
    PUBLISHED,
    machine_line,
    markdown_table,
    matmul_gflops,
    matmul_probe_size,
    median_seconds,
    published_config,
    random_model,
    structure,
    synchronize,
)
from ase.calculators.calculator import all_changes
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from escn_ase import ESCNCalculator, ESCNConfig, NeighborTieWarning, save_checkpoint
from escn_ase.batch import pack_structures
from escn_ase.so3 import coefficient_layout, grid_resolution

MATRIX_PRODUCTS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm"}


def _orders(config: ESCNConfig):
    """``(m, n_rows, first-layer width H_m, input degrees K_m = lmax - m + 1)`` per order."""
    h = config.hidden_channels
    for m in range(config.mmax + 1):
        yield m, (1 if m == 0 else 2), (h if m == 0 else 2 * h), config.lmax - m + 1


def shared_flops(config: ESCNConfig, n_atoms: int, n_edges: int) -> dict[str, float]:
    """Components computed the same way by both algorithms."""
    c, h, e, layers = config.sphere_channels, config.hidden_channels, config.edge_channels, config.num_layers
    layout = coefficient_layout(config.lmax, config.mmax)
    n_coeffs, n_reduced = layout.n_coeffs, layout.n_reduced
    n_probe = 2 * n_coeffs  # probe points of escn_ase.so3.wigner_d_rows
    edge_grid = grid_resolution(config.lmax, config.mmax)
    g_edge = edge_grid[0] * edge_grid[1]
    p = config.num_sphere_samples
    n_heads = 2 if config.forces == "direct" else 1
    second = sum(rows * width * k * c for _, rows, width, k in _orders(config))  # fc2 (r+i) per block, MACs
    return {
        "edge frames + Wigner-D rows (once)": n_edges * (2 * 9 * n_probe + 2 * n_reduced * n_probe * n_coeffs),
        "edge MLP (distance + elements)": layers * n_edges * (2 * config.n_basis * e + 2 * e * e),
        "SO(2) gates from edge scalars (source + target)":
            layers * n_edges * 2 * 2 * e * (h + config.mmax * 2 * h),
        "SO(2) second layers (source + target)": layers * n_edges * 2 * 2 * second,
        "edge-frame grid SiLU (to grid, from grid)": layers * n_edges * 2 * 2 * g_edge * n_reduced * c,
        "heads (sphere sampling, energy/force MLPs)": n_atoms * (
            2 * p * n_coeffs * c + n_heads * (2 * 2 * p * c * c + 2 * p * c)
        ),
    }


def reference_flops(config: ESCNConfig, n_atoms: int, n_edges: int) -> dict[str, float]:
    """Matmul FLOPs of the reference algorithm, by component."""
    c, layers = config.sphere_channels, config.num_layers
    layout = coefficient_layout(config.lmax, config.mmax)
    n_coeffs, n_reduced = layout.n_coeffs, layout.n_reduced
    node_grid = grid_resolution(config.lmax, config.lmax)
    g_node = node_grid[0] * node_grid[1]
    first = sum(rows * width * k * c for _, rows, width, k in _orders(config))
    flops = shared_flops(config, n_atoms, n_edges)
    flops.update({
        "rotations into (x2) and out of the edge frames": layers * n_edges * 3 * 2 * n_reduced * n_coeffs * c,
        "SO(2) first layers (source + target)": layers * n_edges * 2 * 2 * first,
        "node grid block (to grid, 3-layer MLP, from grid)": layers * n_atoms * 2 * g_node * (
            n_coeffs * 2 * c + 2 * c * c + c * c + n_coeffs * c
        ),
    })
    return flops


def escn_ase_flops(config: ESCNConfig, n_atoms: int, n_edges: int, widths: dict) -> dict[str, float]:
    """Matmul FLOPs of escn_ase's forward pass, by component (``widths``: paddings of the graph)."""
    c, layers = config.sphere_channels, config.num_layers
    layout = coefficient_layout(config.lmax, config.mmax)
    n_coeffs, n_reduced = layout.n_coeffs, layout.n_reduced
    node_grid = grid_resolution(config.lmax, config.lmax)
    g_node = node_grid[0] * node_grid[1]
    projection = sum(width * (n_coeffs - m * m) * c for m, _, width, _ in _orders(config))  # per atom, MACs
    contraction = sum(rows * (n_coeffs - m * m) * width for m, rows, width, _ in _orders(config))  # per slot
    slots = widths["source"] + widths["target"]  # padded edge slots of both ends
    # The first layer (degree-0 input) computes order 0 only: per atom the degree-0 columns of the
    # m = 0 first layer, no edge contractions, gates and second layers of order 0.
    _, rows_0, width_0, k_0 = next(_orders(config))
    e, h = config.edge_channels, config.hidden_channels
    flops = shared_flops(config, n_atoms, n_edges)
    flops["SO(2) gates from edge scalars (source + target)"] = n_edges * 2 * 2 * e * h + (layers - 1) * (
        n_edges * 2 * 2 * e * (h + config.mmax * 2 * h)
    )
    second = sum(rows * width * k * c for _, rows, width, k in _orders(config))
    flops["SO(2) second layers (source + target)"] = n_edges * 2 * 2 * rows_0 * width_0 * k_0 * c + (
        (layers - 1) * n_edges * 2 * 2 * second
    )
    flops.update({
        "SO(2) first layers: node projections (source + target)": n_atoms * 2 * 2 * width_0 * c
        + (layers - 1) * n_atoms * 2 * 2 * projection,
        "SO(2) first layers: edge contractions (source + target)": (layers - 1) * slots * 2 * contraction,
        "rotate back + sum per target atom": layers * widths["rotate_back"] * 2 * n_coeffs * n_reduced * c,
        "node grid block (coefficients -> grid MLP -> coefficients)": layers * n_atoms * 2 * (
            n_coeffs * 2 * c * c + g_node * n_coeffs * c + g_node * c * c + g_node * n_coeffs * c + n_coeffs * c * c
        ),
    })
    return flops


def padded_slots(model, inputs: dict) -> dict:
    """Edge slots of the padded per-atom layouts of this graph (what the products really run over)."""
    edge_index, positions = inputs["edge_index"], inputs["positions"]
    vectors = positions[edge_index[0]] - positions[edge_index[1]] + inputs["edge_shifts"]
    with torch.inference_mode():
        graph = model._edge_graph(edge_index, vectors, positions.shape[0], None)
    source, target = graph.source_rows.groups, graph.target_rows.groups
    return {
        "source": source.n_groups * source.width,
        "target": target.n_groups * target.width,
        "rotate_back": sum(chunk.groups.n_groups * chunk.groups.width for chunk in graph.chunks),
    }


def _addmm_inplace_flops(self_shape, a_shape, b_shape, out_shape=None, **kwargs) -> int:
    """FlopCounterMode has no formula for the in-place ``addmm_`` that accumulates second layers."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def counted_flops(model, inputs: dict) -> float:
    mapping = {torch.ops.aten.addmm_: _addmm_inplace_flops}
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        model(**inputs)
    return float(counter.get_total_flops())


def profiled_split(model, inputs: dict) -> tuple[float, float]:
    """Seconds of one forward pass in matrix products and in everything else (CPU self time)."""
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(**inputs)
    products = other = 0.0
    for event in prof.key_averages():
        if event.key in MATRIX_PRODUCTS:
            products += event.self_cpu_time_total
        else:
            other += event.self_cpu_time_total
    return products / 1e6, other / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one timed call, smaller matmul probe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", default="L4-M2-Lay12", choices=sorted(PUBLISHED))
    parser.add_argument("--structure", default="cu111_co_66")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 3)
    # The direct-force notice and the tied-shell warning of the published config are expected here.
    logging.getLogger("escn_ase").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", NeighborTieWarning)

    config = published_config(args.config)
    atoms = structure(args.structure)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        save_checkpoint(path, random_model(config), elements=list(range(1, 90)))
        calc = ESCNCalculator(path, device=device)
    model = calc.model
    batch = calc.prepare([atoms])
    inputs = batch.model_inputs()
    n_atoms, n_edges = batch.n_atoms, batch.n_edges

    def calculator_call() -> None:
        calc.calculate(atoms, ["energy", "forces"], all_changes)
        synchronize(device)

    call_seconds = median_seconds(calculator_call, repeats)
    graph_seconds = median_seconds(lambda: pack_structures([atoms], config, device), repeats)
    product_seconds, other_seconds = profiled_split(model, inputs) if device.type == "cpu" else (None, None)
    reference = reference_flops(config, n_atoms, n_edges)
    ours = escn_ase_flops(config, n_atoms, n_edges, padded_slots(model, inputs))
    counted = counted_flops(model, inputs)
    probe = matmul_probe_size(args.quick, device)
    peak = matmul_gflops(probe, repeats=3, device=device)

    total_ref, total_ours = sum(reference.values()), sum(ours.values())
    so2_ref = sum(v for k, v in reference.items() if k.startswith(("SO(2) first", "SO(2) second")))

    def table(flops: dict[str, float]) -> str:
        total = sum(flops.values())
        rows = [[name, f"{value / 1e9:.2f}", f"{100 * value / total:.1f}"] for name, value in flops.items()]
        rows.append(["**forward pass**", f"**{total / 1e9:.1f}**", "100"])
        return markdown_table(["component", "GFLOP", "% FLOPs"], rows)

    print(machine_line(args.threads, device))
    print(f"# {args.config} (random weights, forces={config.forces}), {args.structure}: {n_atoms} atoms, "
          f"{n_edges} edges, float32, {args.device}, median of {repeats}")
    print(f"# measured float32 matmul rate (square {probe}): {peak:.1f} GFLOP/s")
    print()
    print("Reference algorithm (fairchem eSCN):")
    print()
    print(table(reference))
    print()
    print("escn_ase (same function, first SO(2) layer per atom):")
    print()
    print(table(ours))
    print()
    summary = [
        ["reference algorithm: matmul FLOPs", f"{total_ref / 1e9:.1f} GFLOP"],
        ["  of which SO(2) linear maps (first + second layers)", f"{100 * so2_ref / total_ref:.1f}%"],
        ["escn_ase: matmul FLOPs (analytic)", f"{total_ours / 1e9:.1f} GFLOP"],
        ["escn_ase: FlopCounterMode on the real forward pass", f"{counted / 1e9:.1f} GFLOP"],
        ["energy+forces call through ESCNCalculator", f"{1000 * call_seconds:.0f} ms"],
        ["  of which graph construction + packing", f"{1000 * graph_seconds:.0f} ms"],
        ["achieved rate, escn_ase FLOPs / call time", f"{total_ours / call_seconds / 1e9:.1f} GFLOP/s"],
        ["reference-equivalent rate, reference FLOPs / call time", f"{total_ref / call_seconds / 1e9:.1f} GFLOP/s"],
        ["measured matmul rate (same run)", f"{peak:.1f} GFLOP/s"],
        ["achieved / matmul rate", f"{100 * total_ours / call_seconds / 1e9 / peak:.0f}%"],
    ]
    if product_seconds is not None:
        profiled = product_seconds + other_seconds
        summary += [
            ["profiled forward: time in matrix products (mm/addmm/bmm)",
             f"{1000 * product_seconds:.0f} ms ({100 * product_seconds / profiled:.0f}%)"],
            ["profiled forward: everything else (copies, SiLU, gathers, Python)",
             f"{1000 * other_seconds:.0f} ms ({100 * other_seconds / profiled:.0f}%)"],
            ["rate of the matrix products themselves", f"{total_ours / product_seconds / 1e9:.1f} GFLOP/s "
             f"({100 * total_ours / product_seconds / 1e9 / peak:.0f}% of the matmul rate)"],
        ]
    print(markdown_table(["quantity", "value"], summary))


if __name__ == "__main__":
    main()
