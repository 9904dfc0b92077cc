"""Short-range nuclear repulsion (ZBL) added to a conservative model's energy.

A model trained on near-equilibrium data has never seen two atoms at 1 A: its energy there is an
extrapolation and can be attractive, so a relaxation started too close (an H atom placed 1.2 A
above a metal atom) pulls the atoms together.  The Ziegler-Biersack-Littmark universal screened
Coulomb potential is the physical repulsion at those distances:

    E_ZBL(r) = k_e Z_i Z_j / r * phi(r / a),   a = 0.46850 A / (Z_i^0.23 + Z_j^0.23)
    phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}

(Ziegler, Biersack & Littmark, "The Stopping and Range of Ions in Solids", 1985).  It is switched
off between half and all of the sum of the two covalent radii (``ase.data.covalent_radii``, at most
the model's cutoff) by a
quintic switch whose value, slope and curvature vanish at both ends, so the energy stays twice
differentiable (forces, stress and phonons see no kink) and bonded distances are left to the
network, which learns the remainder during training.

``pairs="metal"`` keeps that range only for pairs with at least one metal atom (metal-metal and
metal-adsorbate).  Pairs of two non-metals (the bonds inside H2, O2, CO, H2O) are switched off
between a quarter and half of their covalent-radius sum instead: molecular bond lengths (even the
compressed ones of EMT, down to 0.59 of the sum) lie outside it and are left to the network, which
would otherwise have to cancel a large repulsion there, while two atoms driven far inside any bond
(C pushed into O at 0.4 A) still repel instead of merging.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii

__all__ = ["NON_METALS", "NON_METAL_REACH", "ZBLRepulsion", "smooth_switch", "zbl_energy"]

COULOMB_EV_A = 14.399645  # e^2 / (4 pi eps0) in eV A
ZBL_SCREENING_LENGTH_A = 0.46850
ZBL_EXPONENT = 0.23
ZBL_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_DECAYS = (3.19980, 0.94229, 0.40290, 0.20162)
SWITCH_START = 0.5  # of the covalent-radius sum: full ZBL below, none above 1.0
# pairs="metal": two non-metals' switch ends at this fraction of their covalent-radius sum (and
# starts at SWITCH_START of that, a quarter of the sum).
NON_METAL_REACH = 0.5
# Atomic numbers of the non-metals and metalloids (H, He, B, C, N, O, F, Ne, Si, P, S, Cl, Ar, As,
# Se, Br, Kr, Te, I, Xe, At, Rn): the elements that bond covalently in molecules.
NON_METALS = frozenset((1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86))
REPULSION_PAIRS = ("all", "metal")


def zbl_energy(distances: torch.Tensor, z_i: torch.Tensor, z_j: torch.Tensor) -> torch.Tensor:
    """``(n,)`` unswitched ZBL pair energies (eV) at ``distances`` (A) for atomic numbers ``z_i, z_j``."""
    z_i, z_j = z_i.to(distances.dtype), z_j.to(distances.dtype)
    screening = ZBL_SCREENING_LENGTH_A / (z_i**ZBL_EXPONENT + z_j**ZBL_EXPONENT)
    x = distances / screening
    phi = sum(c * torch.exp(-d * x) for c, d in zip(ZBL_COEFFICIENTS, ZBL_DECAYS))
    return COULOMB_EV_A * z_i * z_j / distances * phi


def smooth_switch(t: torch.Tensor) -> torch.Tensor:
    """1 for t <= 0, 0 for t >= 1, ``1 - (10 t^3 - 15 t^4 + 6 t^5)`` between (C2 at both ends)."""
    t = t.clamp(0.0, 1.0)
    return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t**2)


class ZBLRepulsion(torch.nn.Module):
    """Per-atom share of the switched ZBL energy over the edges of a graph.

    Each pair appears as two directed edges; each carries half of the pair energy to its target
    atom, so the per-atom energies sum to the pair sum.  No parameters: nothing here is trained.
    ``pairs``: ``"all"`` or ``"metal"`` (the full switch for pairs with at least one metal atom, a
    switch at half the distances for two non-metals; see the module docstring). ``reach_fraction``:
    where the full switch ends, as a fraction of the covalent-radius sum (1.0: the sum itself).
    """

    def __init__(self, max_num_elements: int, cutoff: float, pairs: str = "all", reach_fraction: float = 1.0) -> None:
        super().__init__()
        if pairs not in REPULSION_PAIRS:
            raise ValueError(f"pairs must be one of {REPULSION_PAIRS}, got {pairs!r}")
        self.cutoff = float(cutoff)
        self.pairs = pairs
        radii = torch.as_tensor(covalent_radii[:max_num_elements], dtype=torch.float64)
        is_metal = torch.tensor([z not in NON_METALS for z in range(max_num_elements)])
        self.register_buffer("is_metal", is_metal, persistent=False)
        # (Z, Z) A: where each pair's switch ends, never beyond the graph's cutoff (an edge that leaves
        # the graph must already carry zero energy); one gather per edge at run time.
        radius_sum = radii[:, None] + radii[None, :]
        reach = radius_sum * reach_fraction
        if pairs == "metal":
            non_metal = ~(is_metal[:, None] | is_metal[None, :])
            reach = torch.where(non_metal, radius_sum * NON_METAL_REACH, reach)
        reach = reach.clamp(max=self.cutoff)
        self.register_buffer("reach", reach, persistent=False)

    def forward(
        self, atomic_numbers: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor
    ) -> torch.Tensor:
        """atomic_numbers ``(n_atoms,)``, edge_index ``(2, n_edges)`` [source; target], edge_vectors
        ``(n_edges, 3)`` -> ``(n_atoms,)`` energies in eV, in the dtype of ``edge_vectors``."""
        n_atoms = atomic_numbers.shape[0]
        out = edge_vectors.new_zeros(n_atoms)
        z_source, z_target = atomic_numbers[edge_index[0]], atomic_numbers[edge_index[1]]
        reach = self.reach.to(edge_vectors.dtype)[z_source, z_target]  # (n_edges,) A
        # Only edges shorter than their reach contribute; the rest are left out of the graph (their
        # switch is exactly zero, and so are its derivatives). The selection needs no gradient.
        with torch.no_grad():
            squared = (edge_vectors * edge_vectors).sum(dim=1)
            close = torch.nonzero(squared < reach * reach).squeeze(1)
        if close.numel() == 0:
            return out
        distances = torch.linalg.norm(edge_vectors[close], dim=1)
        reach = reach[close]
        switch = smooth_switch((distances / reach - SWITCH_START) / (1.0 - SWITCH_START))
        pair = zbl_energy(distances, z_source[close], z_target[close]) * switch
        return out.index_add(0, edge_index[1, close], 0.5 * pair)
