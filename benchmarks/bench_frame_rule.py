"""How much the fixed edge-frame rule matters for direct-force checkpoints (fairchem-escn-small fixture).

    python benchmarks/bench_frame_rule.py [--edges 6] [--draws 20] [--fixture DIR]

eSCN completes each edge frame (edge direction -> +y) with a helper vector; the roll of the frame about
the edge is not a symmetry of the published direct-force models (their grid SiLU acts on each edge's
S2 grid). fairchem draws a random helper per edge on every call; escn_ase uses the Cartesian axis least
aligned with the edge (escn_ase.so3.wigner.edge_rotation_matrices), which switches where the two
smallest components of an edge direction have equal magnitude. For every fixture structure, in float64
and float32, this script measures:

* jump: the ``--edges`` edges nearest a switch plane |v_a| = |v_b| (a, b the two smallest components,
  one edge per atom pair). The whole structure is rotated rigidly about the third axis so that the
  edge lies exactly on its plane (graph and distances unchanged), then the edge's source atom is moved
  by -delta and by +delta along axis a, across the plane. Reported: the largest |dE| and max |dF| over
  those edges. delta is 1e-7 A, or the smallest step of a ladder up to 3e-5 A that switches the helper
  axis in the model's own arithmetic (float32 needs a few ulps of the coordinates). Checked for each
  plane: that edge switches helper, and no edge outside its atom pair does.
* smooth: the same +-delta step of the same atom along the same axis at the unmoved structure, where
  no helper switches: the ordinary change of E and F for a step of that size.
* roll: N = ``--draws`` evaluations with a random helper per edge (fairchem's construction, seeded
  torch generator); the largest deviation of E and F from escn_ase's fixed-rule value. Next to it,
  fairchem's own run-to-run spread from references.json (float32, 8 RNG seeds, deviation from seed 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from _common import REPO, fixture_checkpoint, machine_line, markdown_table
from ase import Atoms

import escn_ase.model
from escn_ase import ESCNCalculator
from escn_ase.so3 import wigner

STEPS = (1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5)  # A; the smallest that flips the helper axis is used


def fixture_structures(directory: Path) -> list[tuple[Atoms, dict]]:
    """The reference structures at full precision, with their reference records."""
    references = json.loads((directory / "references.json").read_text())
    out = []
    for record in references["structures"]:
        pbc = record["pbc"]
        cell = record["cell"] if any(pbc) else None
        atoms = Atoms(numbers=record["numbers"], positions=record["positions"], cell=cell, pbc=pbc)
        out.append((atoms, record))
    return out


def edge_data(calc: ESCNCalculator, atoms: Atoms):
    """Edge keys (source, target, integer shift) and edge vectors computed in the model's dtype, as the model does."""
    graph = calc._graphs([atoms])[0]
    batch = calc.prepare([atoms])
    src, tgt = batch.edge_index
    vectors = batch.positions[src] - batch.positions[tgt] + batch.edge_shifts
    keys = np.concatenate([graph.edge_index.T, graph.shifts], axis=1)
    return keys, vectors.double().numpy()


def helper_axes(vectors: np.ndarray) -> np.ndarray:
    """The fixed rule's helper axis per edge (argmin |component|, first on ties), as in wigner.py."""
    return np.abs(vectors).argmin(axis=1)


def edge_set(keys: np.ndarray) -> set:
    return {tuple(k) for k in keys.tolist()}


def evaluate(calc: ESCNCalculator, atoms: Atoms) -> tuple[float, np.ndarray]:
    result = calc.evaluate([atoms])[0]
    return result["energy"], result["forces"]


def displaced(atoms: Atoms, atom: int, axis: int, amount: float) -> Atoms:
    moved = atoms.copy()
    moved.positions[atom, axis] += amount
    return moved


def rotated(atoms: Atoms, rotation: np.ndarray) -> Atoms:
    """Rigid rotation r -> R r of positions and cell: the same graph and distances, edge vectors R v."""
    out = atoms.copy()
    out.positions = atoms.positions @ rotation.T
    if atoms.cell.rank:
        out.set_cell(np.asarray(atoms.cell) @ rotation.T)
    return out


def plane_rotation(vector: np.ndarray, a: int, b: int) -> np.ndarray:
    """Rotation about the third axis that brings ``vector``'s (a, b) part onto the nearest |v_a| = |v_b| line."""
    phi = np.arctan2(vector[b], vector[a])
    target = np.pi / 4 + np.pi / 2 * np.round((phi - np.pi / 4) / (np.pi / 2))
    theta = target - phi
    rotation = np.eye(3)
    rotation[a, a] = rotation[b, b] = np.cos(theta)
    rotation[a, b], rotation[b, a] = -np.sin(theta), np.sin(theta)
    return rotation


def switch_candidates(calc: ESCNCalculator, atoms: Atoms, n_edges: int) -> list[tuple[tuple, int, int, np.ndarray]]:
    """(edge key, axis a, axis b, rotation) for the ``n_edges`` edges needing the smallest rotation onto a plane.

    The switch plane of an edge v is |v_a| = |v_b| with a, b its two smallest components; a rotation about
    the third axis c puts v there as long as |v_a| = |v_b| then stays below |v_c|. One edge per atom pair;
    edges from an atom to its own periodic image are skipped (moving the atom does not change them).
    """
    keys, vectors = edge_data(calc, atoms)
    magnitudes = np.abs(vectors)
    order = np.argsort(magnitudes, axis=1)
    rows = np.arange(len(vectors))
    a, b, c = order[:, 0], order[:, 1], order[:, 2]
    in_plane = np.hypot(vectors[rows, a], vectors[rows, b])
    angle = np.abs(np.arctan2(magnitudes[rows, b], magnitudes[rows, a]) - np.pi / 4)
    usable = (in_plane / np.sqrt(2) < 0.99 * magnitudes[rows, c]) & (keys[:, 0] != keys[:, 1])
    chosen, pairs = [], set()
    for edge in np.argsort(np.where(usable, angle, np.inf)):
        if not usable[edge]:
            break
        pair = (min(keys[edge, :2]), max(keys[edge, :2]))
        if pair in pairs:
            continue
        pairs.add(pair)
        rotation = plane_rotation(vectors[edge], int(a[edge]), int(b[edge]))
        chosen.append((tuple(keys[edge].tolist()), int(a[edge]), int(b[edge]), rotation))
        if len(chosen) == n_edges:
            break
    return chosen


def flipped_edges(calc: ESCNCalculator, minus: Atoms, plus: Atoms):
    """Keys of the edges whose helper axis differs between two structures (None if the graphs differ)."""
    keys_m, vectors_m = edge_data(calc, minus)
    keys_p, vectors_p = edge_data(calc, plus)
    if not np.array_equal(keys_m, keys_p):
        return None
    changed = helper_axes(vectors_m) != helper_axes(vectors_p)
    return edge_set(keys_m[changed])


def frame_jumps(calc: ESCNCalculator, atoms: Atoms, n_edges: int) -> dict:
    """Largest |dE|, max |dF| across switch planes and for the same step away from any plane."""
    keys, _ = edge_data(calc, atoms)
    jump_e = jump_f = smooth_e = smooth_f = 0.0
    tested, steps = 0, []
    for key, axis, _, rotation in switch_candidates(calc, atoms, n_edges):
        atom, pair = key[0], {key[0], key[1]}
        on_plane = rotated(atoms, rotation)
        if not np.array_equal(edge_data(calc, on_plane)[0], keys):
            continue
        # Cross the plane: the source atom steps by -delta / +delta along axis a. A clean crossing
        # switches the helper of this edge and of no edge outside its atom pair (its reverse edge and
        # periodic images of the pair with the same small components switch with it).
        for step in STEPS:
            minus, plus = displaced(on_plane, atom, axis, -step), displaced(on_plane, atom, axis, step)
            flips = flipped_edges(calc, minus, plus)
            if flips is None or (flips and (key not in flips or any({f[0], f[1]} != pair for f in flips))):
                flips = None
                break
            if flips:
                break
        if not flips:
            continue
        base_minus, base_plus = displaced(atoms, atom, axis, -step), displaced(atoms, atom, axis, step)
        if flipped_edges(calc, base_minus, base_plus) != set():
            continue
        (e_m, f_m), (e_p, f_p) = evaluate(calc, minus), evaluate(calc, plus)
        (b_m, g_m), (b_p, g_p) = evaluate(calc, base_minus), evaluate(calc, base_plus)
        jump_e, jump_f = max(jump_e, abs(e_p - e_m)), max(jump_f, float(np.abs(f_p - f_m).max()))
        smooth_e, smooth_f = max(smooth_e, abs(b_p - b_m)), max(smooth_f, float(np.abs(g_p - g_m).max()))
        tested += 1
        steps.append(step)
    return dict(tested=tested, step=max(steps) if steps else float("nan"), jump_e=jump_e, jump_f=jump_f,
                smooth_e=smooth_e, smooth_f=smooth_f)


def random_helper_rotations(generator: torch.Generator):
    """``edge_rotation_matrices`` with fairchem's random helper per edge (eSCN ``_init_edge_rot_mat``)."""

    def rotations(edge_vectors: torch.Tensor) -> torch.Tensor:
        x_axis = edge_vectors / torch.linalg.norm(edge_vectors, dim=1, keepdim=True)
        helper = torch.rand(edge_vectors.shape, generator=generator, dtype=torch.float64) - 0.5
        helper = (helper / torch.linalg.norm(helper, dim=1, keepdim=True)).to(x_axis)
        # fairchem swaps components when the random vector is too aligned with the edge.
        helper_b, helper_c = helper.clone(), helper.clone()
        helper_b[:, 0], helper_b[:, 1] = -helper[:, 1], helper[:, 0]
        helper_c[:, 1], helper_c[:, 2] = -helper[:, 2], helper[:, 1]

        def dot(u):
            return (u * x_axis.detach()).sum(dim=1, keepdim=True).abs()

        helper = torch.where(dot(helper) > dot(helper_b), helper_b, helper)
        helper = torch.where(dot(helper) > dot(helper_c), helper_c, helper)
        z_axis = torch.linalg.cross(x_axis, helper, dim=1)
        z_axis = z_axis / torch.linalg.norm(z_axis, dim=1, keepdim=True)
        y_axis = torch.linalg.cross(x_axis, z_axis, dim=1)
        y_axis = y_axis / torch.linalg.norm(y_axis, dim=1, keepdim=True)
        return torch.stack([z_axis, x_axis, -y_axis], dim=1)

    return rotations


def roll_spread(calc: ESCNCalculator, atoms: Atoms, draws: int, seed: int = 0) -> tuple[float, float]:
    """Largest |E - E_rule| and |F - F_rule| over ``draws`` evaluations with random helpers."""
    energy, forces = evaluate(calc, atoms)
    generator = torch.Generator().manual_seed(seed)
    fixed_rule = escn_ase.model.edge_rotation_matrices
    escn_ase.model.edge_rotation_matrices = random_helper_rotations(generator)
    try:
        dev_e = dev_f = 0.0
        for _ in range(draws):
            e, f = evaluate(calc, atoms)
            dev_e, dev_f = max(dev_e, abs(e - energy)), max(dev_f, float(np.abs(f - forces).max()))
    finally:
        escn_ase.model.edge_rotation_matrices = fixed_rule
    assert escn_ase.model.edge_rotation_matrices is wigner.edge_rotation_matrices
    return dev_e, dev_f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, default=6, help="switch planes tested per structure")
    parser.add_argument("--draws", type=int, default=20, help="random-helper evaluations per structure")
    parser.add_argument("--fixture", type=Path, default=None,
                        help="a fixture folder (default: tests/fixtures/fairchem-escn-small, or the one in "
                             "$ESCN_ASE_FIXTURES when set)")
    args = parser.parse_args()
    logging.getLogger("escn_ase").setLevel(logging.ERROR)
    if args.fixture:
        checkpoint = args.fixture / "checkpoint.pt"
    elif os.environ.get("ESCN_ASE_FIXTURES"):
        checkpoint = fixture_checkpoint()
    else:
        checkpoint = REPO / "tests" / "fixtures" / "fairchem-escn-small" / "checkpoint.pt"
    if checkpoint is None or not checkpoint.exists():
        raise SystemExit("fixture not found: pass --fixture, set ESCN_ASE_FIXTURES, or restore tests/fixtures")
    structures = fixture_structures(checkpoint.parent)

    start = time.perf_counter()
    rows = []
    for dtype in ("float64", "float32"):
        calc = ESCNCalculator(checkpoint, device="cpu", dtype=dtype)
        for atoms, record in structures:
            jumps = frame_jumps(calc, atoms, args.edges)
            roll_e, roll_f = roll_spread(calc, atoms, args.draws)
            rows.append([
                record["name"], dtype, jumps["tested"], f"{jumps['step']:.0e}",
                f"{jumps['jump_e']:.1e}", f"{jumps['jump_f']:.1e}",
                f"{jumps['smooth_e']:.1e}", f"{jumps['smooth_f']:.1e}",
                f"{roll_e:.1e}", f"{roll_f:.1e}",
                f"{record['energy_seed_maxabsdev_from_seed0']:.1e}",
                f"{record['forces_seed_maxabsdev_from_seed0']:.1e}",
            ])
    elapsed = time.perf_counter() - start

    print(f"{machine_line(torch.get_num_threads())}")
    print(f"# {checkpoint}; {args.edges} switch planes and {args.draws} random-helper draws per structure; "
          f"{elapsed:.0f} s")
    print()
    print(markdown_table(
        ["structure", "dtype", "planes", "step δ (Å)", "jump \\|ΔE\\| (eV)", "jump max \\|ΔF\\| (eV/Å)",
         "smooth \\|ΔE\\| (eV)", "smooth max \\|ΔF\\| (eV/Å)", f"random roll \\|ΔE\\| (eV), N={args.draws}",
         "random roll max \\|ΔF\\| (eV/Å)", "fairchem seed spread \\|ΔE\\| (eV)",
         "fairchem seed spread max \\|ΔF\\| (eV/Å)"],
        rows,
    ))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
