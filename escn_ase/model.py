"""The eSCN model: architecture config, forward pass and output scaling.

Inputs of a forward pass (one or several systems packed into one graph):

    atomic_numbers  (n_atoms,)       long
    positions       (n_atoms, 3)     float, Cartesian, Angstrom
    edge_index      (2, n_edges)     long; row 0 = neighbour j (source), row 1 = centre i (target)
    edge_shifts     (n_edges, 3)     float, Cartesian periodic shift: v_ij = pos_j - pos_i + shift
    system_index    (n_atoms,)       long, system of each atom, 0..n_systems-1
    n_systems       int

Outputs (``ESCN.forward``), in eV and eV/Angstrom after output scaling:

    energy          (n_systems,)
    node_energy     (n_atoms,)       per-atom share of the energy (sums to ``energy``)
    forces          (n_atoms, 3)     only for ``forces="direct"`` (a separate head)

``ESCN.predict`` adds forces ``-dE/dx`` and stress ``(1/V) dE/d(strain)`` by autograd for
``forces="conservative"`` models.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.utils.checkpoint

from .nn import EdgeChunk, EdgeGraph, EnergyBlock, ForceBlock, GaussianBasis, LayerBlock, cosine_cutoff_envelope
from .nn.edge_groups import group_edges
from .nn.first_layer import order_rows, pad_order_rows
from .nn.repulsion import ZBLRepulsion
from .so3 import (
    coefficient_layout,
    edge_rotation_matrices,
    sphere_sample_points,
    spherical_harmonics_unnormalized,
    wigner_d_rows,
)

__all__ = ["ESCNConfig", "ESCN", "ENERGY_SCALE"]

# The reference multiplies the summed node energies by 0.001 "to balance numerical precision
# with respect to forces"; trained weights assume it, so parity needs it.
ENERGY_SCALE = 0.001


@dataclass(frozen=True)
class ESCNConfig:
    """Architecture of an eSCN model (saved inside checkpoints).

    ``forces="direct"`` is the published OC20 variant (a force head, forces are not the gradient
    of the energy, no stress).  ``forces="conservative"`` has no force head: forces and stress are
    derivatives of the energy, and ``smooth_cutoff`` makes every message vanish smoothly at the
    cutoff so that the energy is continuous when atoms cross it.

    ``activation="s2_grid"`` is the reference's: SiLUs on sampled S2 grids (edge frame and node
    update) and an energy head sampled at ``num_sphere_samples`` points.  These grids make the
    energy only approximately rotation invariant and, in the edge frame, dependent on how each
    edge frame is completed (it jumps where a frame rule switches).  ``activation="gate"``
    (conservative models only) uses the gates of ``escn_ase.nn.gate`` and an energy head on the
    degree-0 channels: the energy is then a smooth, exactly rotation-invariant function of the
    positions (up to floating point), as MD, phonons and cell relaxations need.

    ``pair_repulsion="zbl"`` (conservative models only) adds the ZBL screened nuclear repulsion,
    switched off smoothly at the sum of covalent radii (``escn_ase.nn.repulsion``): atoms pushed
    closer than anything in the training data repel instead of following the network's
    extrapolation.  ``pair_repulsion="zbl_metal"`` keeps that switch for pairs with at least one
    metal atom and moves it to half the distances for two non-metals, below any molecular bond, so
    the bonds of H2, O2 or CO are left to the network while atoms driven into each other still repel.
    ``repulsion_reach`` moves the end of the full switch to that fraction of the covalent-radius sum
    (it starts at half of it); the non-metal switch of ``"zbl_metal"`` stays where it is.
    """

    num_layers: int = 8
    lmax: int = 6
    mmax: int = 2
    sphere_channels: int = 128
    hidden_channels: int = 256
    edge_channels: int = 128
    cutoff: float = 8.0
    max_neighbors: int | None = 40
    num_sphere_samples: int = 128
    distance_resolution: float = 0.02
    basis_width_scalar: float = 1.0
    max_num_elements: int = 90
    forces: Literal["direct", "conservative"] = "direct"
    smooth_cutoff: bool = False
    activation: Literal["s2_grid", "gate"] = "s2_grid"
    pair_repulsion: Literal["none", "zbl", "zbl_metal"] = "none"
    repulsion_reach: float = 1.0

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid eSCN config:\n" + "\n".join(f"  {problem}" for problem in problems))

    @property
    def n_basis(self) -> int:
        """Number of Gaussians: ``int(cutoff / distance_resolution)`` (float division, as the reference)."""
        return int(self.cutoff / self.distance_resolution)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ESCNConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown eSCN config keys: {sorted(unknown)}")
        return cls(**values)


# Limits of what escn_ase can evaluate: beyond them a config is a mistake, not a model.
MAX_LMAX = 12
MAX_SPHERE_SAMPLES = 100_000
MAX_BASIS_FUNCTIONS = 10_000


def _config_problems(c: ESCNConfig) -> list[str]:
    """One line per field of ``c`` that has the wrong type or a value no model can have."""
    problems = []

    def integer(name: str, low: int, high: int | None = None) -> bool:
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{name}: expected an integer, got {value!r}")
            return False
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"in {low}..{high}"
            problems.append(f"{name}: {value} is outside the allowed range ({allowed})")
            return False
        return True

    def positive_number(name: str) -> bool:
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            problems.append(f"{name}: expected a positive finite number, got {value!r}")
            return False
        return True

    integer("num_layers", 1, 1000)
    lmax_ok = integer("lmax", 0, MAX_LMAX)
    if integer("mmax", 0) and lmax_ok and c.mmax > c.lmax:
        problems.append(f"mmax: need 0 <= mmax <= lmax, got lmax={c.lmax}, mmax={c.mmax}")
    for name in ("sphere_channels", "hidden_channels", "edge_channels"):
        integer(name, 1, 100_000)
    integer("num_sphere_samples", 2, MAX_SPHERE_SAMPLES)
    integer("max_num_elements", 2, 119)
    if c.max_neighbors is not None:
        integer("max_neighbors", 1)
    cutoff_ok = positive_number("cutoff")
    if positive_number("distance_resolution") and cutoff_ok:
        n_basis = int(c.cutoff / c.distance_resolution)
        if not 1 <= n_basis <= MAX_BASIS_FUNCTIONS:
            problems.append(
                f"distance_resolution: cutoff / distance_resolution = {n_basis} Gaussians "
                f"(need 1..{MAX_BASIS_FUNCTIONS})"
            )
    positive_number("basis_width_scalar")
    if c.forces not in ("direct", "conservative"):
        problems.append(f"forces: must be 'direct' or 'conservative', got {c.forces!r}")
    if not isinstance(c.smooth_cutoff, bool):
        problems.append(f"smooth_cutoff: expected true or false, got {c.smooth_cutoff!r}")
    if c.activation not in ("s2_grid", "gate"):
        problems.append(f"activation: must be 's2_grid' or 'gate', got {c.activation!r}")
    elif c.activation == "gate" and c.forces != "conservative":
        problems.append("activation: 'gate' is for conservative models (forces='conservative')")
    if c.pair_repulsion not in ("none", "zbl", "zbl_metal"):
        problems.append(f"pair_repulsion: must be 'none', 'zbl' or 'zbl_metal', got {c.pair_repulsion!r}")
    elif c.pair_repulsion != "none" and c.forces != "conservative":
        problems.append(f"pair_repulsion: {c.pair_repulsion!r} is for conservative models (forces='conservative')")
    if isinstance(c.repulsion_reach, bool) or not isinstance(c.repulsion_reach, (int, float)) or not (
        0.0 < c.repulsion_reach <= 2.0
    ):
        problems.append(f"repulsion_reach: a fraction of the covalent-radius sum in (0, 2], got {c.repulsion_reach!r}")
    return problems


def _node_ranges(first_edge: list[int], edges_per_chunk: int) -> list[slice]:
    """Consecutive ranges of target atoms covering all atoms, each with at most ``edges_per_chunk``
    incoming edges (at least one atom per range) and about as many as the others: ceil(E / limit)
    ranges of about E / that many edges, e.g. 3 x 440 for 1320 edges and a limit of 640, not
    640 + 640 + 40 (a small last chunk would run its matrix products at a fraction of the rate).
    ``first_edge[i]``: index of atom i's first edge (``first_edge[-1]`` = E)."""
    n_edges = first_edge[-1]
    if n_edges:
        n_ranges = -(-n_edges // edges_per_chunk)  # ceil division
        edges_per_chunk = -(-n_edges // n_ranges)
    n_atoms = len(first_edge) - 1
    ranges, start = [], 0
    while start < n_atoms:
        stop = start + 1
        while stop < n_atoms and first_edge[stop + 1] - first_edge[start] <= edges_per_chunk:
            stop += 1
        ranges.append(slice(start, stop))
        start = stop
    return ranges


def _apply_strain(
    strain: torch.Tensor,
    positions: torch.Tensor,
    edge_shifts: torch.Tensor,
    system_index: torch.Tensor,
    edge_index: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(n_atoms, 3)`` and periodic edge shifts ``(n_edges, 3)`` under the symmetric part of each
    system's ``strain (n_systems, 3, 3)`` (MACE/nequip style): the energy's gradient with respect to
    ``strain`` is then the virial."""
    symmetric = 0.5 * (strain + strain.transpose(1, 2))
    strained_positions = positions + torch.einsum("ni,nij->nj", positions, symmetric[system_index])
    edge_system = system_index[edge_index[1]]
    strained_shifts = edge_shifts + torch.einsum("ei,eij->ej", edge_shifts, symmetric[edge_system])
    return strained_positions, strained_shifts


class ESCN(torch.nn.Module):
    """eSCN (Passaro & Zitnick 2023), single resolution, with output scaling.

    Parameter names match the reference implementation's state dict (``sphere_embedding``,
    ``layer_blocks.<i>...``, ``energy_block``, ``force_block``).
    """

    def __init__(self, config: ESCNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.layout = coefficient_layout(c.lmax, c.mmax)
        self.sphere_embedding = torch.nn.Embedding(c.max_num_elements, c.sphere_channels)
        self.distance_expansion = GaussianBasis(c.cutoff, c.n_basis, c.basis_width_scalar)
        self.layer_blocks = torch.nn.ModuleList(
            LayerBlock(
                c.lmax,
                c.mmax,
                c.sphere_channels,
                c.hidden_channels,
                c.edge_channels,
                c.n_basis,
                c.max_num_elements,
                c.activation,
            )
            for _ in range(c.num_layers)
        )
        self.energy_block = EnergyBlock(c.sphere_channels)
        self.force_block = ForceBlock(c.sphere_channels) if c.forces == "direct" else None
        self.pair_repulsion = (
            ZBLRepulsion(
                c.max_num_elements,
                c.cutoff,
                pairs="metal" if c.pair_repulsion == "zbl_metal" else "all",
                reach_fraction=float(c.repulsion_reach),
            )
            if c.pair_repulsion != "none"
            else None
        )
        points = sphere_sample_points(c.num_sphere_samples)
        self.register_buffer("sphere_points", points)
        self.register_buffer("sphharm_weights", spherical_harmonics_unnormalized(c.lmax, points))
        self.register_buffer("mmajor_rows", self.layout.mmajor.clone(), persistent=False)
        # Output scaling: E = E_raw * energy_scale + energy_mean + sum_atoms element_references[Z];
        # F = F_raw * forces_scale + forces_mean (direct head only).
        self.register_buffer("energy_mean", torch.tensor(0.0))
        self.register_buffer("energy_scale", torch.tensor(1.0))
        self.register_buffer("forces_mean", torch.tensor(0.0))
        self.register_buffer("forces_scale", torch.tensor(1.0))
        self.register_buffer("element_references", torch.zeros(c.max_num_elements))

    # ------------------------------------------------------------------ graph-side helpers
    def _edge_graph(
        self,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        n_atoms: int,
        edge_chunk_size: int | None,
    ) -> EdgeGraph:
        """Edge frames and chunks; edges must be sorted by target atom (row 1 of ``edge_index``)."""
        n_edges = edge_index.shape[1]
        size = max(n_edges, 1) if not edge_chunk_size else max(1, edge_chunk_size)
        first_edge = torch.zeros(n_atoms + 1, dtype=torch.long)
        first_edge[1:] = torch.cumsum(torch.bincount(edge_index[1].cpu(), minlength=n_atoms), 0)
        chunks = []
        rows_per_chunk = []
        first = first_edge.tolist()
        node_ranges = _node_ranges(first, size) if n_edges else []
        parts = [slice(first[nodes.start], first[nodes.stop]) for nodes in node_ranges]
        # split, not slicing: under autograd its backward is one concatenation, not a zero tensor of
        # all edges per chunk.
        vectors_per_chunk = edge_vectors.split([part.stop - part.start for part in parts])
        for nodes, part, vectors in zip(node_ranges, parts, vectors_per_chunk):
            distances = torch.linalg.norm(vectors, dim=1)
            wigner = wigner_d_rows(edge_rotation_matrices(vectors), self.config.lmax, self.mmajor_rows)
            rows_per_chunk.append(order_rows(wigner, self.layout))
            target = edge_index[1, part].contiguous()
            groups = group_edges(target - nodes.start, nodes.stop - nodes.start)
            inverse = wigner.transpose(1, 2)  # (n_chunk, n_coeffs, n_reduced)
            if self.config.smooth_cutoff:
                inverse = inverse * cosine_cutoff_envelope(distances, self.config.cutoff)[:, None, None]
            rotate_back = groups.pad(inverse).permute(0, 2, 1, 3).reshape(groups.n_groups, self.layout.n_coeffs, -1)
            chunks.append(
                EdgeChunk(
                    source=edge_index[0, part].contiguous(),
                    target=target,
                    radial_basis=self.distance_expansion(distances),
                    groups=groups,
                    rotate_back=rotate_back,
                )
            )
        if rows_per_chunk:
            rows = [[torch.cat(parts, dim=0) for parts in zip(*orders)] for orders in zip(*rows_per_chunk)]
        else:
            rows = order_rows(edge_vectors.new_zeros(0, self.layout.n_reduced, self.layout.n_coeffs), self.layout)
        return EdgeGraph(
            chunks=chunks,
            source_rows=pad_order_rows(rows, group_edges(edge_index[0], n_atoms)),
            target_rows=pad_order_rows(rows, group_edges(edge_index[1], n_atoms)),
        )

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        atomic_numbers: torch.Tensor,
        positions: torch.Tensor,
        edge_index: torch.Tensor,
        edge_shifts: torch.Tensor,
        system_index: torch.Tensor,
        n_systems: int,
        edge_chunk_size: int | None = None,
        checkpoint_layers: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Energies (and direct forces); see the module docstring for shapes.

        ``edge_chunk_size`` processes the edges in even slices of at most that many (whole target
        atoms each), bounding the memory of the per-edge tensors (results are the same up to float
        summation order).
        ``checkpoint_layers``: when a graph is recorded, keep only each layer's input and recompute
        the layer during the backward pass (activation checkpointing): the per-edge memory of
        autograd drops from all layers to about one, for one extra forward pass of time.
        """
        c = self.config
        n_atoms = atomic_numbers.shape[0]
        if edge_index.shape[1] and bool((edge_index[1, 1:] < edge_index[1, :-1]).any()):
            order = torch.argsort(edge_index[1], stable=True)  # chunks are ranges of target atoms
            edge_index, edge_shifts = edge_index[:, order], edge_shifts[order]
        edge_vectors = positions[edge_index[0]] - positions[edge_index[1]] + edge_shifts
        edges = self._edge_graph(edge_index, edge_vectors, n_atoms, edge_chunk_size)

        x = positions.new_zeros(n_atoms, self.layout.n_coeffs, c.sphere_channels)
        x[:, 0, :] = self.sphere_embedding(atomic_numbers)
        recompute = checkpoint_layers and torch.is_grad_enabled()
        for i, layer in enumerate(self.layer_blocks):
            # The first layer's input is the embedding, degree 0 only: its orders m > 0 are skipped.
            if recompute:
                update = torch.utils.checkpoint.checkpoint(
                    layer, x, atomic_numbers, edges, scalar_input=i == 0, use_reentrant=False
                )
            else:
                update = layer(x, atomic_numbers, edges, scalar_input=i == 0)
            x = update if i == 0 else x + update  # no residual into the first layer

        if c.activation == "gate":
            x_points = x[:, :1]  # the invariant degree-0 channels: (n_atoms, 1, C)
        else:
            # Sample each atom's channels at the sphere points: (n_atoms, n_points, C).
            x_points = torch.einsum("pi,nic->npc", self.sphharm_weights, x)
        node_energy = self.energy_block(x_points) * ENERGY_SCALE * self.energy_scale
        atoms_per_system = torch.bincount(system_index, minlength=n_systems).to(node_energy.dtype)
        node_energy = (
            node_energy
            + self.energy_mean / atoms_per_system[system_index]
            + self.element_references[atomic_numbers]
        )
        if self.pair_repulsion is not None:
            node_energy = node_energy + self.pair_repulsion(atomic_numbers, edge_index, edge_vectors)
        energy = node_energy.new_zeros(n_systems).index_add(0, system_index, node_energy)
        out = {"energy": energy, "node_energy": node_energy}
        if self.force_block is not None:
            forces = self.force_block(x_points, self.sphere_points)
            out["forces"] = forces * self.forces_scale + self.forces_mean
        return out

    def predict(
        self,
        atomic_numbers: torch.Tensor,
        positions: torch.Tensor,
        edge_index: torch.Tensor,
        edge_shifts: torch.Tensor,
        system_index: torch.Tensor,
        n_systems: int,
        cells: torch.Tensor | None = None,
        compute_stress: bool = False,
        edge_chunk_size: int | None = None,
        create_graph: bool = False,
        checkpoint_layers: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Forward pass plus, for conservative models, forces and stress by autograd.

        Args:
            cells: ``(n_systems, 3, 3)`` lattice vectors (rows); needed for stress.
            compute_stress: return ``stress (n_systems, 3, 3)`` = (1/V) dE/d(strain), eV/A^3.
            create_graph: keep the graph of the derivatives (for training on forces).
            checkpoint_layers: recompute each layer in the backward pass instead of keeping its
                tensors (see ``forward``); for structures whose autograd graph would not fit.
        """
        if self.config.forces == "direct":
            if compute_stress:
                raise ValueError("a direct-force eSCN model has no stress")
            return self.forward(
                atomic_numbers, positions, edge_index, edge_shifts, system_index, n_systems, edge_chunk_size
            )
        if compute_stress and cells is None:
            raise ValueError("stress needs the cells of the systems")
        with torch.enable_grad():
            positions = positions.detach().requires_grad_(True)
            inputs = [positions]
            if compute_stress:
                strain = positions.new_zeros(n_systems, 3, 3, requires_grad=True)
                positions_strained, shifts_strained = _apply_strain(
                    strain, positions, edge_shifts, system_index, edge_index
                )
                inputs.append(strain)
            else:
                positions_strained, shifts_strained = positions, edge_shifts
            out = self.forward(
                atomic_numbers,
                positions_strained,
                edge_index,
                shifts_strained,
                system_index,
                n_systems,
                edge_chunk_size,
                checkpoint_layers,
            )
            if out["energy"].requires_grad:
                grads = torch.autograd.grad(
                    out["energy"].sum(), inputs, create_graph=create_graph, allow_unused=True
                )
            else:  # no edges: the energy does not depend on the geometry
                grads = (None,) * len(inputs)
        forces = -grads[0] if grads[0] is not None else torch.zeros_like(positions)
        out["forces"] = forces
        if compute_stress:
            volume = torch.linalg.det(cells).abs()
            strain_grad = grads[1] if grads[1] is not None else positions.new_zeros(n_systems, 3, 3)
            out["stress"] = strain_grad / volume[:, None, None]
        if not create_graph:
            out = {k: v.detach() for k, v in out.items()}
        return out
