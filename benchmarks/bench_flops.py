"""FLOP account of one eSCN forward pass, per component, with the achieved rate and a time breakdown.

    python benchmarks/bench_flops.py [--quick] [--threads 2] [--config L4-M2-Lay12]
                                     [--structure cu111_co_66] [--repeats 3] [--device cpu]

Model: ``random_model(published_config("L4-M2-Lay12"))`` (random weights, direct forces, as the
published OC20 checkpoints), float32, on the 66-atom Cu(111)+CO slab (1320 edges with
max_neighbors = 20).

* Analytic FLOPs (2 per multiply-add) of every matrix product of the forward pass, by component:
  edge frames and Wigner-D rows (once per pass), the edge MLP, the rotations into and out of the
  edge frames, the SO(2) linear maps of each order m for the source and target convolutions
  (their gates from the edge scalars on a row of their own), the edge-frame grid nonlinearity,
  the node grid block and the output heads.  Elementwise work (SiLU, Gaussians, spherical-
  harmonic polynomials, gathers and scatters) is left out: it is well under 1% of the FLOPs,
  though not of the time.
* The same products counted by ``torch.utils.flop_counter.FlopCounterMode`` per module, as a
  check of the analytic count (the rotations and the grid are told apart by the operator torch
  lowers them to: bmm for the rotations, mm for the grid einsums).
* Time of the whole energy+forces call through ``ESCNCalculator.calculate`` (median of
  ``--repeats`` after a warm-up; direct models run under ``torch.inference_mode``), of the graph
  construction alone, and of the model's forward pass split into components by forward hooks on
  its modules (exclusive times; the Wigner-D construction is timed on its own and the rest of the
  model-level work is charged to the heads).  Hooks add a few microseconds per call.  The rows
  are differences of timings, so on a busy machine some can come out negative: read them on a
  quiet one.
* Achieved GFLOP/s of the forward pass next to the rate of a large square float32 matmul measured
  in the same run.

``--quick``: one timed call, a smaller matmul probe.  Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import (
    PUBLISHED, machine_line, markdown_table, matmul_gflops, matmul_probe_size, median_seconds, published_config,
    random_model, structure, synchronize,
)
from ase.calculators.calculator import all_changes

from escn_ase import ESCN, ESCNCalculator, ESCNConfig, NeighborTieWarning, save_checkpoint
from escn_ase.batch import pack_structures
from escn_ase.so3 import coefficient_layout, grid_resolution


@dataclass
class Row:
    """One component: analytic FLOPs, FlopCounterMode FLOPs and measured seconds (None: not separable)."""

    name: str
    flops: float
    counted: float | None = None
    seconds: float | None = None


def so2_order_flops(config: ESCNConfig, m: int) -> float:
    """Per-edge matmul FLOPs of order ``m`` in one SO(2) convolution (fc1 and fc2, no gate)."""
    c, h = config.sphere_channels, config.hidden_channels
    if m == 0:
        return 2 * 2 * (config.lmax + 1) * c * h
    k = (config.lmax - m + 1) * c
    return 2 * 2 * k * 2 * h + 2 * (2 * 2 * h * k)  # (2 x K) @ (K x 2H), then fc2_r and fc2_i on 2 rows


def analytic_flops(config: ESCNConfig, n_atoms: int, n_edges: int) -> dict[str, float]:
    """Matmul FLOPs of one forward pass, by component (keys are the table's rows)."""
    c, h, e, layers = config.sphere_channels, config.hidden_channels, config.edge_channels, config.num_layers
    layout = coefficient_layout(config.lmax, config.mmax)
    n_coeffs, n_reduced = layout.n_coeffs, layout.n_reduced
    n_probe = 2 * n_coeffs  # probe points of escn_ase.so3.wigner_d_rows
    edge_grid = grid_resolution(config.lmax, config.mmax)
    node_grid = grid_resolution(config.lmax, config.lmax)
    g_edge, g_node = edge_grid[0] * edge_grid[1], node_grid[0] * node_grid[1]
    p = config.num_sphere_samples
    flops = {
        # R p_k for every probe point, then the dense contraction with the block pseudo-inverse.
        "edge frames + Wigner-D rows (once)": n_edges * (2 * 9 * n_probe + 2 * n_reduced * n_probe * n_coeffs),
        "edge MLP (distance + elements)": layers * n_edges * (2 * config.n_basis * e + 2 * e * e),
        "rotations into (x2) and out of the edge frame": layers * n_edges * 3 * 2 * n_reduced * n_coeffs * c,
        "edge-frame grid nonlinearity": layers * n_edges * 2 * 2 * g_edge * n_reduced * c,
        "SO(2) gates from edge scalars (source + target)":
            layers * n_edges * 2 * (2 * e * h + config.mmax * 2 * e * 2 * h),
    }
    for side in ("source", "target"):
        for m in range(config.mmax + 1):
            flops[f"SO(2) maps m={m} {side}"] = layers * n_edges * so2_order_flops(config, m)
    flops["node grid block (to grid, 3-layer MLP, from grid)"] = layers * n_atoms * (
        2 * g_node * n_coeffs * 2 * c + 2 * g_node * 2 * c * c + 2 * 2 * g_node * c * c + 2 * g_node * n_coeffs * c
    )
    n_heads = 2 if config.forces == "direct" else 1
    flops["heads (sphere sampling, energy/force MLPs)"] = n_atoms * (
        2 * p * n_coeffs * c + n_heads * (2 * 2 * p * c * c + 2 * p * c)
    )
    return flops


# ---------------------------------------------------------------------------------------------- attribution
# Components are attributed through the modules that the model *calls* (forward hooks and
# FlopCounterMode's module tracking only see ``module(...)`` calls): the edge MLP, the gate Linears
# ``fc1_dist0`` / ``fc1_dist``, ``fc1_m0`` / ``fc2_m0`` (order 0) and the per-order ``SO2OrderMap``s.
# The rest of each message block (rotations, grid nonlinearity, gathers, scatter) is what is left.
def so2_leaves(model: ESCN):
    """``(label, module, gate_inside, nested)`` for every SO(2) part of every layer.

    ``gate_inside``: a gate Linear called inside ``module`` (listed on its own, so subtracted);
    ``nested``: the module runs inside another listed one (not to be added to the SO(2) total).
    """
    for layer in model.layer_blocks:
        for side in ("source", "target"):
            block = getattr(layer.message_block, f"so2_block_{side}")
            yield "SO(2) gates from edge scalars (source + target)", block.fc1_dist0, None, False
            yield f"SO(2) maps m=0 {side}", block.fc1_m0, None, False
            yield f"SO(2) maps m=0 {side}", block.fc2_m0, None, False
            for m, order in enumerate(block.so2_conv, start=1):
                yield f"SO(2) maps m={m} {side}", order, order.fc1_dist, False
                yield "SO(2) gates from edge scalars (source + target)", order.fc1_dist, None, True


def _module_names(model: ESCN) -> dict[int, str]:
    return {id(module): ("ESCN." + name if name else "ESCN") for name, module in model.named_modules()}


def counted_flops(model: ESCN, inputs: dict, chunk_args: tuple) -> dict[str, float]:
    """FlopCounterMode's matmul FLOPs grouped into the analytic rows (see the module docstring)."""
    with torch.inference_mode(), FlopCounterMode(display=False, depth=None) as counter:
        model._edge_chunks(*chunk_args)
    wigner = float(counter.get_total_flops())
    with torch.inference_mode(), FlopCounterMode(display=False, depth=None) as counter:
        model(**inputs)
    per_module = {name: {str(op).removeprefix("aten."): n for op, n in ops.items()}
                  for name, ops in counter.get_flop_counts().items()}
    names = _module_names(model)

    def flops(module: torch.nn.Module, op: str | None = None) -> float:
        ops = per_module.get(names[id(module)], {})
        return float(sum(n for o, n in ops.items() if op is None or o == op))

    groups: dict[str, float] = defaultdict(float)
    groups["edge frames + Wigner-D rows (once)"] = wigner
    leaves_by_op: dict[str, float] = defaultdict(float)
    for label, module, gate, nested in so2_leaves(model):
        groups[label] += flops(module) - (flops(gate) if gate is not None else 0.0)
        if not nested:
            for op in ("bmm", "mm", "addmm"):
                leaves_by_op[op] += flops(module, op)
    layers = 0.0
    rest_by_op: dict[str, float] = defaultdict(float)
    for layer in model.layer_blocks:
        message = layer.message_block
        layers += flops(layer)
        groups["edge MLP (distance + elements)"] += flops(message.edge_block)
        groups["node grid block (to grid, 3-layer MLP, from grid)"] += flops(layer) - flops(message)
        for op in ("bmm", "mm", "addmm"):
            rest_by_op[op] += flops(message, op) - flops(message.edge_block, op)
    for op in rest_by_op:
        rest_by_op[op] -= leaves_by_op[op]
    # Rotations are batched products (bmm); the grid transforms are plain products (mm).
    groups["rotations into (x2) and out of the edge frame"] = rest_by_op["bmm"]
    groups["edge-frame grid nonlinearity"] = rest_by_op["mm"] + rest_by_op["addmm"]
    groups["heads (sphere sampling, energy/force MLPs)"] = flops(model) - layers - wigner
    groups["total"] = float(counter.get_total_flops())
    return dict(groups)


# ---------------------------------------------------------------------------------------------- hook timing
class HookTimer:
    """Inclusive wall time and call count of chosen modules, accumulated by label."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.handles = []

    def watch(self, module: torch.nn.Module, label: str) -> None:
        starts: list[float] = []

        def before(*_):
            synchronize(self.device)
            starts.append(time.perf_counter())

        def after(*_):
            synchronize(self.device)
            self.seconds[label] += time.perf_counter() - starts.pop()
            self.calls[label] += 1

        self.handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def timed_components(model: ESCN, inputs: dict, chunk_args: tuple, repeats: int,
                     device: torch.device) -> dict[str, float | None]:
    """Exclusive seconds per row (median over ``repeats`` hooked forward passes; None: hook never ran)."""
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        timer = HookTimer(device)
        timer.watch(model, "model")
        timer.watch(model.energy_block, "heads")
        if model.force_block is not None:
            timer.watch(model.force_block, "heads")
        for layer in model.layer_blocks:
            timer.watch(layer, "layer")
            timer.watch(layer.message_block, "message")
            timer.watch(layer.message_block.edge_block, "edge MLP (distance + elements)")
        for index, leaf in enumerate(so2_leaves(model)):
            timer.watch(leaf[1], f"leaf {index}")
        with torch.inference_mode():
            model(**inputs)
        synchronize(device)
        timer.remove()
        s = timer.seconds
        rows: dict[str, float] = defaultdict(float)
        rows["edge MLP (distance + elements)"] = s["edge MLP (distance + elements)"]
        so2_total = 0.0
        leaves = list(so2_leaves(model))
        gate_index = {id(leaf[1]): index for index, leaf in enumerate(leaves)}
        for index, (label, module, gate, nested) in enumerate(leaves):
            if not nested:
                so2_total += s[f"leaf {index}"]
            if not timer.calls[f"leaf {index}"]:
                rows[label] = float("nan")
                continue
            rows[label] += s[f"leaf {index}"]
            if gate is not None:  # an order map's time includes its gate Linear, listed on its own
                rows[label] -= s[f"leaf {gate_index[id(gate)]}"]
        rows["rotations, grid nonlinearity, gathers, scatter (rest of message block)"] = (
            s["message"] - s["edge MLP (distance + elements)"] - so2_total
        )
        rows["node grid block (to grid, 3-layer MLP, from grid)"] = s["layer"] - s["message"]
        rows["model-level (edge frames, Wigner-D, sampling, embedding)"] = s["model"] - s["layer"] - s["heads"]
        rows["heads (energy/force MLPs)"] = s["heads"]
        rows["forward pass"] = s["model"]
        for key, value in rows.items():
            samples[key].append(value)

    def frames() -> None:
        with torch.inference_mode():
            model._edge_chunks(*chunk_args)
        synchronize(device)

    result = {key: (None if any(v != v for v in values) else statistics.median(values))
              for key, values in samples.items()}
    result["edge frames + Wigner-D rows (once)"] = median_seconds(frames, repeats)
    return result


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
    model = random_model(config)
    atoms = structure(args.structure)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        save_checkpoint(path, model, elements=list(range(1, 90)))
        calc = ESCNCalculator(path, device=device)
    model = calc.model
    batch = calc.prepare([atoms])
    inputs = batch.model_inputs()
    n_atoms, n_edges = batch.n_atoms, batch.n_edges
    positions = inputs["positions"]
    edge_vectors = positions[batch.edge_index[0]] - positions[batch.edge_index[1]] + batch.edge_shifts
    chunk_args = (batch.edge_index, edge_vectors, None)

    def calculator_call() -> None:
        calc.calculate(atoms, ["energy", "forces"], all_changes)
        synchronize(device)

    call_seconds = median_seconds(calculator_call, repeats)
    graph_seconds = median_seconds(lambda: pack_structures([atoms], config, device), repeats)
    seconds = timed_components(model, inputs, chunk_args, repeats, device)
    counted = counted_flops(model, inputs, chunk_args)
    analytic = analytic_flops(config, n_atoms, n_edges)
    probe = matmul_probe_size(args.quick, device)
    peak = matmul_gflops(probe, repeats=3, device=device)

    total = sum(analytic.values())
    so2_products = sum(v for k, v in analytic.items() if k.startswith("SO(2) maps"))
    so2_gates = analytic["SO(2) gates from edge scalars (source + target)"]
    forward = seconds["forward pass"]

    def gf(value: float | None) -> str:
        return "-" if value is None else f"{value / 1e9:.2f}"

    table = []
    time_rows = {
        "rotations into (x2) and out of the edge frame":
            "rotations, grid nonlinearity, gathers, scatter (rest of message block)",
        "heads (sphere sampling, energy/force MLPs)": "heads (energy/force MLPs)",
    }
    for name, value in analytic.items():
        t = seconds.get(time_rows.get(name, name))
        if name == "edge-frame grid nonlinearity":
            t_text, rate = "(in row above)", "-"
        elif t is None:
            t_text, rate = "-", "-"
        else:
            t_text = f"{1000 * t:.0f}" + (" (with grid, gathers, scatter)" if name.startswith("rotations") else "")
            flops_in_time = value + (analytic["edge-frame grid nonlinearity"] if name in time_rows and
                                     name.startswith("rotations") else 0.0)
            rate = f"{flops_in_time / t / 1e9:.1f}" if t > 0 else "-"
        table.append([name, gf(value), f"{100 * value / total:.1f}", gf(counted.get(name)), t_text,
                      "-" if t is None else f"{100 * t / forward:.1f}", rate])
    model_level = seconds["model-level (edge frames, Wigner-D, sampling, embedding)"]
    table.append(["(model-level rest: sampling einsum, embedding, scaling)", "-", "-", "-",
                  f"{1000 * (model_level - seconds['edge frames + Wigner-D rows (once)']):.0f}",
                  f"{100 * (model_level - seconds['edge frames + Wigner-D rows (once)']) / forward:.1f}", "-"])
    table.append(["**forward pass**", gf(total), "100", gf(counted["total"]), f"{1000 * forward:.0f}", "100",
                  f"{total / forward / 1e9:.1f}"])

    print(machine_line(args.threads, device))
    print(f"# {args.config} (random weights, forces={config.forces}), {args.structure}: {n_atoms} atoms, "
          f"{n_edges} edges, float32, {args.device}, median of {repeats}")
    print(f"# measured float32 matmul rate (square {probe}): {peak:.1f} GFLOP/s")
    print()
    print(markdown_table(["component", "analytic GFLOP", "% FLOPs", "FlopCounterMode GFLOP", "ms (hooks)",
                          "% time", "GFLOP/s"], table))
    print()
    print(markdown_table(
        ["quantity", "value"],
        [["analytic matmul FLOPs of the forward pass", f"{total / 1e9:.1f} GFLOP"],
         ["FlopCounterMode total", f"{counted['total'] / 1e9:.1f} GFLOP"],
         ["share in SO(2) linear maps (fc1/fc2)", f"{100 * so2_products / total:.1f}%"],
         ["share in SO(2) maps + their gates", f"{100 * (so2_products + so2_gates) / total:.1f}%"],
         ["energy+forces call through ESCNCalculator", f"{1000 * call_seconds:.0f} ms"],
         ["  of which graph construction + packing", f"{1000 * graph_seconds:.0f} ms"],
         ["achieved rate, whole call", f"{total / call_seconds / 1e9:.1f} GFLOP/s"],
         ["achieved rate, forward pass (hooked run)", f"{total / forward / 1e9:.1f} GFLOP/s"],
         ["measured matmul rate (same run)", f"{peak:.1f} GFLOP/s"],
         ["whole call / matmul rate", f"{100 * total / call_seconds / 1e9 / peak:.0f}%"]],
    ))


if __name__ == "__main__":
    main()
