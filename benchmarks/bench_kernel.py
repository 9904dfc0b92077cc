"""The eSCN kernel against a full SO(3) tensor product, for L = 1..8: time, scaling exponent, FLOP rate.

    python benchmarks/bench_kernel.py [--quick] [--threads 2] [--edges 512] [--channels 16]
                                      [--lmax-values 1 2 ... 8] [--repeats 5] [--device cpu]

Both routes do the same job on ``M`` edges with ``C`` channels: combine each edge's features
``x`` (C x degrees l = 0..L) with the spherical harmonics of the edge direction and return C x
(l = 0..L).  Inputs are random features and random edge vectors (seeded); the timings start from
these (the harmonics, or the edge frames and Wigner matrices, are built inside the timed call).

* SO(3): ``e3nn.o3.FullyConnectedTensorProduct(C x (l, parity (-1)^l), 1 x Y_l, C x (l, parity
  (-1)^l))`` for l = 0..L with **internal, shared weights** (one weight per path and channel pair,
  the same for all edges).  Shared weights are the like-for-like choice: the SO(2) convolution's
  linear maps are shared by all edges too (edge scalars only gate its hidden layer); per-edge
  weights would add ``M x weight_numel`` floats of memory and a different cost.  Parity keeps only
  the paths with l1 + l2 + l3 even, about half of them; eSCN's SO(2) maps have no parity
  restriction, so the SO(3) column is if anything a lower bound on a truly equivalent product.
* SO(2) (eSCN): rotate the features into each edge's frame with the Wigner-D rows of
  ``escn_ase.so3.wigner_d_rows`` (m-major, mmax = L: nothing truncated), apply
  ``escn_ase.nn.SO2Convolution(L, L, C, hidden_channels=C, edge_channels=8)`` and rotate back
  with the transpose.  Reported twice: the SO(2) linear maps alone (input already in the edge
  frame) and the whole route (edge frames + Wigner construction + both rotations + maps); the
  Wigner construction alone is a column too.

"fwd" runs under ``torch.no_grad``; "fwd+bwd" also back-propagates a random output gradient to
the features and the weights (not to the edge vectors).  Times are medians of ``--repeats``
calls after a warm-up call.

The exponents are least-squares slopes of log(time) against log(L) over L = 3..8 (the measured
part of it); the eSCN paper's claim is O(L^6) for the SO(3) product and O(L^3) for the SO(2)
route.  Note that with a fixed hidden width H the FLOPs of the SO(2) maps grow only as
(L+1)(2L+1) ~ L^2 (analytic count, printed); the paper's O(L^3) is for maps without a bottleneck.

The FLOPs of the SO(2) linear maps are counted analytically (fc1 and fc2 products of every order
m; the small gates from the edge scalars are left out) and divided by the measured time; the
machine's single-precision matmul rate, measured in the same run on a large square matmul, is
printed beside it (fwd+bwd counts 3x the forward FLOPs).  ``--quick`` runs L = 1..5, 2 repeats
and a smaller matmul probe.  Not a test: nothing is asserted.

At the default size (512 edges, 16 channels) the SO(2) maps are a few MFLOP: on a GPU (``--device
cuda``) every column is kernel-launch latency and the exponents say little, and on a CPU the maps
below L ~ 4 are dominated by per-operator overhead; ``--edges 16384`` (or more, on a GPU) measures
the arithmetic.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from _common import (
    machine_line,
    markdown_table,
    matmul_gflops,
    matmul_probe_size,
    median_seconds,
    synchronize,
)
from e3nn import o3

from escn_ase.nn import SO2Convolution
from escn_ase.so3 import coefficient_layout, edge_rotation_matrices, wigner_d_rows

EDGE_CHANNELS = 8
FIT_RANGE = (3, 8)


def so2_map_flops(lmax: int, mmax: int, channels: int, hidden: int, n_edges: int) -> float:
    """Matmul FLOPs of one ``SO2Convolution`` forward (fc1 and fc2 of every order, no gates).

    m = 0: ``(L+1) C -> H -> (L+1) C``, real.  m > 0 with ``K = (L-m+1) C``: the (+m, -m) rows
    times the stacked (W1_r, W1_i) (2 x K -> 2H), then fc2_r and fc2_i on both rows (2 x H -> K each).
    """
    per_edge = 2 * 2 * (lmax + 1) * channels * hidden
    for m in range(1, mmax + 1):
        k = (lmax - m + 1) * channels
        per_edge += 2 * 2 * k * 2 * hidden + 2 * (2 * 2 * hidden * k)
    return float(per_edge * n_edges)


def fit_exponent(lmax_values: list[int], seconds: list[float]) -> float | None:
    """Slope of log(seconds) against log(L) over ``FIT_RANGE``; None with fewer than two points."""
    points = [(l, t) for l, t in zip(lmax_values, seconds) if FIT_RANGE[0] <= l <= FIT_RANGE[1]]
    if len(points) < 2:
        return None
    slope, _ = np.polyfit(np.log([p[0] for p in points]), np.log([p[1] for p in points]), 1)
    return float(slope)


class Routes:
    """The two routes at one L, with their inputs, ready to be timed."""

    def __init__(self, lmax: int, n_edges: int, channels: int, device: torch.device, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.lmax, self.device = lmax, device
        self.irreps = o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])
        self.sh_irreps = o3.Irreps.spherical_harmonics(lmax)
        self.tensor_product = o3.FullyConnectedTensorProduct(
            self.irreps, self.sh_irreps, self.irreps, shared_weights=True, internal_weights=True
        ).to(device)
        self.convolution = SO2Convolution(lmax, lmax, channels, hidden_channels=channels,
                                          edge_channels=EDGE_CHANNELS).to(device)
        self.rows = coefficient_layout(lmax, lmax).mmajor.to(device)
        n_coeffs = (lmax + 1) ** 2
        self.vectors = torch.randn(n_edges, 3, device=device)
        self.edge_scalars = torch.randn(n_edges, EDGE_CHANNELS, device=device)
        # The same random features for both routes: e3nn's (M, irreps.dim) is l-major with the
        # channel index outer inside each l; ours is (M, n_coeffs, C).
        self.x = torch.randn(n_edges, n_coeffs, channels, device=device)
        self.x_e3nn = self._to_e3nn(self.x)
        wigner = wigner_d_rows(edge_rotation_matrices(self.vectors), lmax, self.rows)
        self.x_edge_frame = torch.bmm(wigner, self.x)
        self.grad_e3nn = torch.randn(n_edges, self.irreps.dim, device=device)
        self.grad_ours = torch.randn(n_edges, n_coeffs, channels, device=device)

    def _to_e3nn(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, l * l:(l + 1) ** 2, :].transpose(1, 2).reshape(x.shape[0], -1) for l in range(self.lmax + 1)]
        return torch.cat(parts, dim=1).contiguous()

    # -- the timed calls ---------------------------------------------------------------------------
    def so3(self, x: torch.Tensor) -> torch.Tensor:
        sh = o3.spherical_harmonics(self.sh_irreps, self.vectors, normalize=True, normalization="component")
        return self.tensor_product(x, sh)

    def wigner(self) -> torch.Tensor:
        return wigner_d_rows(edge_rotation_matrices(self.vectors), self.lmax, self.rows)

    def so2_maps(self, x_edge_frame: torch.Tensor) -> torch.Tensor:
        return self.convolution(x_edge_frame, self.edge_scalars)

    def so2_route(self, x: torch.Tensor) -> torch.Tensor:
        wigner = self.wigner()
        message = self.convolution(torch.bmm(wigner, x), self.edge_scalars)
        return torch.bmm(wigner.transpose(1, 2), message)


def time_forward(function, argument, repeats: int, device: torch.device) -> float:
    def call() -> None:
        with torch.no_grad():
            function(argument) if argument is not None else function()
        synchronize(device)

    return median_seconds(call, repeats)


def time_forward_backward(function, argument: torch.Tensor, grad: torch.Tensor, repeats: int,
                          device: torch.device) -> float:
    leaf = argument.detach().requires_grad_(True)

    def call() -> None:
        function(leaf).backward(grad)
        synchronize(device)

    return median_seconds(call, repeats)


def route_equivariance_error(lmax: int, channels: int) -> float:
    """Max |f(D(R) x, R v) - D(R) f(x, v)| / max |f| of the SO(2) route (float64): checks the wiring."""
    torch.manual_seed(1)
    routes = Routes(lmax, 16, channels, torch.device("cpu"))
    routes.convolution.double()
    routes.vectors, routes.edge_scalars = routes.vectors.double(), routes.edge_scalars.double()
    x = routes.x.double()
    rotation = o3.rand_matrix(dtype=torch.float64)
    d_global = wigner_d_rows(rotation[None], lmax)[0]
    with torch.no_grad():
        out = routes.so2_route(x)
        routes.vectors = routes.vectors @ rotation.T
        out_rotated = routes.so2_route(torch.einsum("ij,ejc->eic", d_global, x))
    expected = torch.einsum("ij,ejc->eic", d_global, out)
    return float((out_rotated - expected).abs().max() / out.abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="L = 1..5, 2 repeats, smaller matmul probe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--edges", type=int, default=512)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--lmax-values", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    lmax_values = args.lmax_values or (list(range(1, 6)) if args.quick else list(range(1, 9)))
    repeats = args.repeats or (2 if args.quick else 5)
    probe = matmul_probe_size(args.quick, device)
    peak = matmul_gflops(probe, repeats=3, device=device)

    rows, so3_f, so3_fb, maps_f, maps_fb, route_f, route_fb, wig_f, flops = ([] for _ in range(9))
    for lmax in lmax_values:
        routes = Routes(lmax, args.edges, args.channels, device)
        times = dict(
            so3_f=time_forward(routes.so3, routes.x_e3nn, repeats, device),
            so3_fb=time_forward_backward(routes.so3, routes.x_e3nn, routes.grad_e3nn, repeats, device),
            maps_f=time_forward(routes.so2_maps, routes.x_edge_frame, repeats, device),
            maps_fb=time_forward_backward(routes.so2_maps, routes.x_edge_frame, routes.grad_ours, repeats, device),
            route_f=time_forward(routes.so2_route, routes.x, repeats, device),
            route_fb=time_forward_backward(routes.so2_route, routes.x, routes.grad_ours, repeats, device),
            wig_f=time_forward(routes.wigner, None, repeats, device),
        )
        map_flops = so2_map_flops(lmax, lmax, args.channels, args.channels, args.edges)
        for store, key in ((so3_f, "so3_f"), (so3_fb, "so3_fb"), (maps_f, "maps_f"), (maps_fb, "maps_fb"),
                           (route_f, "route_f"), (route_fb, "route_fb"), (wig_f, "wig_f")):
            store.append(times[key])
        flops.append(map_flops)
        ms = {k: f"{1000 * v:.2f}" for k, v in times.items()}
        rows.append([
            lmax, len(routes.tensor_product.instructions), ms["so3_f"], ms["so3_fb"], ms["maps_f"], ms["maps_fb"],
            ms["wig_f"], ms["route_f"], ms["route_fb"],
            f"{times['so3_f'] / times['route_f']:.1f}x", f"{times['so3_fb'] / times['route_fb']:.1f}x",
            f"{map_flops / 1e6:.1f}", f"{map_flops / times['maps_f'] / 1e9:.1f}",
            f"{3 * map_flops / times['maps_fb'] / 1e9:.1f}",
        ])
        print(f"L={lmax} done", file=sys.stderr)

    print(machine_line(args.threads, device))
    print(f"# M = {args.edges} edges, C = {args.channels} channels, SO(2) hidden H = {args.channels}, "
          f"edge scalars {EDGE_CHANNELS}, float32, {args.device}, median of {repeats}")
    print(f"# measured float32 matmul rate (square {probe}): {peak:.1f} GFLOP/s")
    print()
    print(markdown_table(
        ["L", "SO(3) paths", "SO(3) TP fwd ms", "SO(3) TP fwd+bwd ms", "SO(2) maps fwd ms", "SO(2) maps fwd+bwd ms",
         "Wigner build fwd ms", "SO(2) route fwd ms", "SO(2) route fwd+bwd ms", "route speed-up fwd",
         "route speed-up fwd+bwd", "SO(2) maps MFLOP fwd", "SO(2) maps GFLOP/s fwd", "SO(2) maps GFLOP/s fwd+bwd"],
        rows,
    ))
    print()
    analytic = fit_exponent(lmax_values, flops)

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    print(f"Exponents: slope of log(time) vs log(L) over L = {FIT_RANGE[0]}..{min(FIT_RANGE[1], max(lmax_values))}")
    print()
    print(markdown_table(
        ["kernel", "fwd exponent", "fwd+bwd exponent"],
        [["SO(3) tensor product (e3nn)", fmt(fit_exponent(lmax_values, so3_f)), fmt(fit_exponent(lmax_values, so3_fb))],
         ["SO(2) linear maps", fmt(fit_exponent(lmax_values, maps_f)), fmt(fit_exponent(lmax_values, maps_fb))],
         ["SO(2) route (Wigner + rotations + maps)", fmt(fit_exponent(lmax_values, route_f)),
          fmt(fit_exponent(lmax_values, route_fb))],
         ["Wigner construction", fmt(fit_exponent(lmax_values, wig_f)), "-"],
         ["SO(2) maps, analytic FLOPs", fmt(analytic), fmt(analytic)]],
    ))
    best = max(3 * f / t for f, t in zip(flops, maps_fb)) / 1e9
    print()
    print(f"SO(2) maps reach at best {100 * best / peak:.1f}% of the measured matmul rate "
          f"({best:.1f} of {peak:.1f} GFLOP/s).")
    check_l = min(3, max(lmax_values))
    print(f"SO(2) route equivariance check (L={check_l}, float64): relative error "
          f"{route_equivariance_error(check_l, 4):.1e}")


if __name__ == "__main__":
    main()
