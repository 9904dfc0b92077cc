"""Reusable checks for conservative interatomic potentials (energy, forces = -dE/dx, stress = dE/dstrain / V).

In the spirit of the consistency checks of nequip, MACE and ASE: every function takes an ASE calculator and
returns the measured violation (a number), so that tests can assert it is below a tolerance and a negative
control can assert that a model known to be broken exceeds it.  Nothing here is specific to eSCN, except
``old_frame_rule_flips`` (the edge-frame completion rule the s2_grid eSCN used) and the random-model builder.

Structures are small on purpose: each check must run in seconds on one CPU core with a tiny model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import add_adsorbate, bulk, fcc100, fcc111, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list
from scipy.spatial.transform import Rotation

try:  # ASE >= 3.29 (MaxwellBoltzmannDistribution is deprecated there)
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def thermalize_momenta(atoms, temperature_K, *, rng=None):
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)

# ---------------------------------------------------------------------------------------------- structures
# Elements: Cu, Pt, O, C, H (covered by the default model and by the random test models).


def rattled_bulk() -> Atoms:
    """Cu7Pt fcc 2x2x2 (primitive) with an O at an octahedral site, rattled 0.05 A, sheared cell (9 atoms)."""
    atoms = bulk("Cu", "fcc", a=3.61) * (2, 2, 2)
    atoms.symbols[3] = "Pt"
    octahedral = atoms.cell.cartesian_positions([0.25, 0.25, 0.25])  # centre of the first primitive cell
    atoms += Atoms("O", positions=[octahedral])
    cell = atoms.cell.array.copy()
    cell[1] += 0.08 * cell[0]
    cell[2] -= 0.05 * cell[1]
    atoms.set_cell(cell, scale_atoms=True)
    atoms.rattle(0.05, seed=2)  # seed 1 happened to put a Pt-O pair 2e-5 A from r = 4 A, a cutoff under test
    return atoms


def slab_with_adsorbate() -> Atoms:
    """Cu(111) 2x2x3 with O in the fcc hollow, rattled 0.05 A, 3D periodic (13 atoms, 6 A vacuum each side)."""
    atoms = fcc111("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0)
    add_adsorbate(atoms, "O", 1.3, "fcc")
    atoms.pbc = True
    atoms.rattle(0.05, seed=2)
    return atoms


def _molecule_in_cubic_box(name: str, length: float) -> Atoms:
    atoms = molecule(name)
    atoms.cell = [length, length, length]
    atoms.center()
    atoms.pbc = True
    return atoms


def acetaldehyde_in_box() -> Atoms:
    """CH3CHO centred in a 10 A cubic box, pbc=True (7 atoms; the molecule sees its images only weakly)."""
    return _molecule_in_cubic_box("CH3CHO", 10.0)


def water_in_small_box() -> Atoms:
    """H2O in an axis-aligned 4 A cubic box, pbc=True (3 atoms, dense images: every atom sees many images
    along the axes; its shear stress is the case that broke with the old frame rule).  The axis images are
    4 A away, inside the cutoff of every model of the kit (4.5 A for the random ones, 5 A for the default);
    a model with a 4 A cutoff would have them exactly at its C^1 envelope's edge."""
    return _molecule_in_cubic_box("H2O", 4.0)


def acetaldehyde_in_vacuum() -> Atoms:
    atoms = molecule("CH3CHO")
    atoms.pbc = False
    return atoms


def slab_with_co() -> Atoms:
    """Cu(111) 2x2x3 + CO on top, pbc=(True, True, False) (14 atoms), for dynamics."""
    atoms = fcc111("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0)
    co = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]])
    add_adsorbate(atoms, co, 1.9, "ontop")
    atoms.pbc = (True, True, False)
    return atoms


PERIODIC_STRUCTURES = {
    "bulk": rattled_bulk,
    "slab": slab_with_adsorbate,
    "CH3CHO_box": acetaldehyde_in_box,
    "H2O_4A_box": water_in_small_box,
}


def closest_pair_to_cutoff(atoms: Atoms, cutoff: float) -> float:
    """Min over pairs (periodic images included) of |r - cutoff| (A): for failure messages, because an
    envelope that is only C^1 at the cutoff gives O(eps) finite-difference errors for a pair sitting there."""
    distances = neighbor_list("d", atoms, cutoff + 1.0)
    return float(np.abs(distances - cutoff).min()) if len(distances) else np.inf


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(calc, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Energy, forces and (3D-periodic only) the 3x3 stress of a copy of ``atoms``."""
    atoms = atoms.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False) if atoms.pbc.all() else None
    return energy, forces, stress


# ---------------------------------------------------------------------------------------------- (a) frame planes
def old_frame_rule_flips(plus: Atoms, minus: Atoms, cutoff: float) -> int:
    """How many edges change their frame between ``minus`` and ``plus`` under the old eSCN rule (complete the
    frame with the Cartesian axis least aligned with the edge, i.e. argmin |component|).  The two structures
    must differ by a tiny displacement so that their neighbour lists match pair for pair."""
    i_p, j_p, d_p = neighbor_list("ijD", plus, cutoff)
    i_m, j_m, d_m = neighbor_list("ijD", minus, cutoff)
    assert np.array_equal(i_p, i_m) and np.array_equal(j_p, j_m), "neighbour lists differ"
    return int((np.abs(d_p).argmin(axis=1) != np.abs(d_m).argmin(axis=1)).sum())


def frame_switch_geometries(cutoff: float) -> dict[str, tuple[Atoms, int, np.ndarray]]:
    """Structures with an edge exactly on a plane where the old frame rule switches, the index of the atom
    to move and the plane's normal.

    * ``Cu-O-Cu |x|=|y|`` ... : an O between two Cu; the O-Cu1 edge has two equal smallest |components|
      (the others are generic); moving O along the normal swaps which axis completes that frame.
    * ``O hollow Cu(100)``: O in the four-fold hollow of an axis-aligned Cu(100) slab, higher than half the
      surface spacing: the four O-Cu edges are (+-s, +-s, -h) with s < h, all on |x|=|y|.  A real
      adsorption geometry, not a contrived one.
    """
    geometries = {}
    tie_edges = {  # edge vector O - Cu1 with a tie between its two smallest |components|
        "Cu-O-Cu |x|=|y|": (np.array([1.05, 1.05, 1.55]), np.array([1.0, -1.0, 0.0])),
        "Cu-O-Cu |y|=|z|": (np.array([-1.65, 0.95, -0.95]), np.array([0.0, 1.0, 1.0])),
        "Cu-O-Cu |x|=|z|": (np.array([-0.9, 1.6, 0.9]), np.array([1.0, 0.0, 1.0])),
    }
    for name, (edge, normal) in tie_edges.items():
        o = np.array([0.0, 0.0, 0.0])
        cu1 = o - edge
        cu2 = o + np.array([1.37, -0.61, 0.29]) * 1.1  # generic direction, about 1.7 A
        atoms = Atoms("CuOCu", positions=[cu1, o, cu2])
        assert atoms.get_distance(0, 2) < cutoff
        geometries[name] = (atoms, 1, normal)

    slab = fcc100("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0)
    add_adsorbate(slab, "O", 1.6, "hollow")
    slab.pbc = (True, True, False)
    geometries["O hollow Cu(100)"] = (slab, len(slab) - 1, np.array([1.0, -1.0, 0.0]))
    return geometries


def frame_switch_violation(calc, atoms: Atoms, index: int, normal, step: float = 1e-8) -> tuple[float, float, int]:
    """Move atom ``index`` by +-``step`` along ``normal`` (across a plane where a frame rule switches) and
    compare the energy change with the work of the force at the midpoint:
    ``|E(+) - E(-) + F(mid) . (dr+ - dr-)|`` (central difference: exact to O(step^3)).

    Returns (violation eV, |F(mid) . dr| eV, number of edges whose old-rule frame flips).
    """
    normal = np.asarray(normal, dtype=float) / np.linalg.norm(normal)
    _, forces, _ = evaluate(calc, atoms)
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[index] += step * normal
    minus.positions[index] -= step * normal
    e_plus, _, _ = evaluate(calc, plus)
    e_minus, _, _ = evaluate(calc, minus)
    work = float(forces[index] @ (2 * step * normal))
    flips = old_frame_rule_flips(plus, minus, calc.config.cutoff)
    return abs(e_plus - e_minus + work), abs(work), flips


# ---------------------------------------------------------------------------------------------- (b, c) FD
def force_fd_error(calc, atoms: Atoms, eps: float) -> tuple[float, float]:
    """Max |F - F_central_difference(eps)| (eV/A) and max |F|."""
    _, forces, _ = evaluate(calc, atoms)
    atoms = atoms.copy()
    atoms.calc = calc
    numerical = calculate_numerical_forces(atoms, eps=eps)
    return float(np.abs(forces - numerical).max()), float(np.abs(forces).max())


def stress_fd_error(calc, atoms: Atoms, eps: float = 1e-6) -> tuple[float, float]:
    """Max |sigma - sigma_central_difference(strain eps)| (eV/A^3, Voigt) and max |sigma|."""
    atoms = atoms.copy()
    atoms.calc = calc
    stress = atoms.get_stress(voigt=True)
    numerical = calculate_numerical_stress(atoms, eps=eps, voigt=True)
    return float(np.abs(stress - numerical).max()), float(np.abs(stress).max())


# ---------------------------------------------------------------------------------------------- (d) NVE
class HarmonicRestraint(Calculator):
    """``model`` plus harmonic springs (``spring`` eV/A^2) on every pair closer than ``radius`` in
    ``reference``, at their reference lengths (fixed periodic images; the cell must not change).

    A random-init network has no short-range repulsion: in a few tens of fs atoms collide and the
    integration error at the collision, not the network's smoothness, dominates the energy drift. The
    springs are smooth and exactly conservative, so a spike in the energy of the sum is the network's.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, model, reference: Atoms, spring: float, radius: float) -> None:
        super().__init__()
        self.model, self.spring = model, spring
        i, j, shifts = neighbor_list("ijS", reference, radius)
        keep = i < j
        self.i, self.j = i[keep], j[keep]
        self.shifts = shifts[keep] @ reference.cell.array
        vectors = reference.positions[self.j] - reference.positions[self.i] + self.shifts
        self.rest = np.linalg.norm(vectors, axis=1)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        energy, forces, _ = evaluate(self.model, self.atoms)
        vectors = self.atoms.positions[self.j] - self.atoms.positions[self.i] + self.shifts
        lengths = np.linalg.norm(vectors, axis=1)
        stretch = lengths - self.rest
        pull = (self.spring * stretch / lengths)[:, None] * vectors  # force on i towards j
        forces = forces.copy()
        np.add.at(forces, self.i, pull)
        np.add.at(forces, self.j, -pull)
        self.results = {"energy": energy + 0.5 * self.spring * float(stretch @ stretch), "forces": forces}


def nve_energy_steps(
    calc,
    atoms: Atoms,
    timestep_fs: float,
    steps: int,
    temperature_K: float = 300.0,
    seed: int = 0,
    restraint: tuple[float, float] | None = None,
) -> tuple[np.ndarray, float]:
    """Velocity-Verlet NVE from Maxwell-Boltzmann velocities; returns the per-step |change of total energy|
    and the smallest interatomic distance seen (to tell a collapse apart from a non-smooth potential).
    ``restraint``: (spring eV/A^2, radius A) of a ``HarmonicRestraint`` added to the model (random models)."""
    atoms = atoms.copy()
    atoms.calc = calc if restraint is None else HarmonicRestraint(calc, atoms, *restraint)
    thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    energies = [atoms.get_total_energy()]
    closest = [np.inf]

    def record():
        energies.append(atoms.get_total_energy())
        distances = atoms.get_all_distances(mic=atoms.pbc.any())
        closest.append(distances[np.triu_indices(len(atoms), 1)].min())

    dyn = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    dyn.attach(record, interval=1)
    dyn.run(steps)
    return np.abs(np.diff(energies)), float(min(closest))


def nve_refinement_factor(
    calc, atoms: Atoms, steps_at_dt: np.ndarray, timestep_fs: float, window_fs: float, **nve_options
) -> float:
    """How much the largest per-step energy change over the first ``window_fs`` falls when the time step is
    halved (same initial velocities).  Velocity Verlet on a smooth potential: each step changes the total
    energy by O(dt^3), so the factor is ~8; a jump of the energy (frame switch, hard cutoff) does not shrink
    with dt, so the factor is ~1.  ``steps_at_dt``: output of ``nve_energy_steps`` at ``timestep_fs``."""
    n = int(round(window_fs / timestep_fs))
    half, _ = nve_energy_steps(calc, atoms, timestep_fs / 2, 2 * n, **nve_options)
    return float(steps_at_dt[:n].max() / half.max())


# ---------------------------------------------------------------------------------------------- (e) O(3)
def random_orthogonal_matrices(n: int, seed: int, improper: bool) -> list[np.ndarray]:
    """``n`` random rotations (det +1) or, with ``improper``, rotation-reflections (det -1)."""
    matrices = Rotation.random(n, random_state=seed).as_matrix()
    if improper:
        matrices = matrices @ np.diag([1.0, 1.0, -1.0])  # a mirror, then a rotation
    return list(matrices)


def transform_error(calc, atoms: Atoms, matrices) -> tuple[float, float, float]:
    """Apply each orthogonal ``Q`` to positions and cell (x -> Q x); returns the largest |dE| (eV), the largest
    |F(Qx) - Q F(x)| (eV/A) and, for 3D-periodic cells, the largest |sigma(Qx) - Q sigma Q^T| (eV/A^3)."""
    energy, forces, stress = evaluate(calc, atoms)
    d_energy = d_forces = d_stress = 0.0
    for q in matrices:
        moved = atoms.copy()
        moved.positions = atoms.positions @ q.T
        moved.set_cell(atoms.cell.array @ q.T, scale_atoms=False)
        e_q, f_q, s_q = evaluate(calc, moved)
        d_energy = max(d_energy, abs(e_q - energy))
        d_forces = max(d_forces, float(np.abs(f_q - forces @ q.T).max()))
        if stress is not None:
            d_stress = max(d_stress, float(np.abs(s_q - q @ stress @ q.T).max()))
    return d_energy, d_forces, d_stress


# ---------------------------------------------------------------------------------------------- (g) cutoff
def cutoff_crossing_scan(calc, cutoff: float, step: float = 1e-3, n_each_side: int = 20) -> dict[str, float]:
    """An O moves on a straight line through distance ``cutoff`` from Cu1 while it stays well inside the
    cutoff of Cu2 (so the energy keeps varying).  For every step i of size h along u:

    * energy mismatch ``|E_{i+1} - E_i + (F_i + F_{i+1})/2 . h u|`` against its bound ``h |F_{i+1} - F_i|``
      (trapezoid rule on a force that is monotone over one step) plus float noise;
    * force change at the step that straddles the cutoff against the largest change of the other steps.

    Returns the worst ratios (<= 1 means pass) and the scan's force scale.
    """
    u = np.array([1.0, 0.37, -0.21])
    u /= np.linalg.norm(u)
    w = np.cross(u, [0.0, 0.0, 1.0])
    w /= np.linalg.norm(w)
    cu1 = np.zeros(3)
    cu2 = 0.55 * cutoff * u + 0.4 * cutoff * w
    distances = cutoff + step * np.arange(-n_each_side, n_each_side + 1)
    energies, forces = [], []
    for distance in distances:
        atoms = Atoms("CuCuO", positions=[cu1, cu2, distance * u])
        energy, f, _ = evaluate(calc, atoms)
        energies.append(energy)
        forces.append(f)
    energies, forces = np.array(energies), np.array(forces)
    assert np.linalg.norm(distances[-1] * u - cu2) < 0.8 * cutoff
    work = 0.5 * (forces[1:, 2] + forces[:-1, 2]) @ (step * u)  # moving atom is index 2
    mismatch = np.abs(np.diff(energies) + work)
    force_steps = np.abs(np.diff(forces, axis=0)).max(axis=(1, 2))
    bound = step * np.abs(np.diff(forces[:, 2], axis=0)).max(axis=1) + 1e-11
    crossing = [n_each_side - 1, n_each_side]  # the two steps that end or start at r = cutoff
    others = np.delete(force_steps, crossing)
    return {
        "energy_ratio": float((mismatch / bound).max()),
        "worst_energy_mismatch": float(mismatch.max()),
        "force_jump_ratio": float(force_steps[crossing].max() / (2 * others.max() + 1e-12)),
        "force_scale": float(np.abs(forces[:, 2]).max()),
        "energy_span": float(np.ptp(energies)),
    }


# ---------------------------------------------------------------------------------------------- test models
RANDOM_MODEL_ELEMENTS = (1, 6, 8, 29, 78)
# isolated-atom energies (eV) the random models are shifted to, so that total energies look sensible
_ISOLATED_ATOM_ENERGY = {1: -1.1, 6: -7.4, 8: -4.9, 29: -3.7, 78: -6.0}


def random_conservative_calculator(
    path: str | Path,
    *,
    lmax: int,
    mmax: int,
    activation: str,
    seed: int,
    num_layers: int = 2,
    weight_gain: float = 2.5,
    force_rms: float = 1.0,
    cutoff: float = 4.5,
    pair_repulsion: str = "none",
):
    """A tiny random-init conservative eSCN, saved as an escn_ase checkpoint and loaded in float64.

    The weights (not the element embeddings) are multiplied by ``weight_gain`` so the network is visibly
    non-linear; ``energy_scale`` is then set so that the RMS force on ``rattled_bulk()`` is ``force_rms``
    eV/A, and ``element_references`` so that isolated atoms have the energies above.
    """
    import dataclasses

    import torch

    from escn_ase import ESCN, ESCNCalculator, ESCNConfig, save_checkpoint

    torch.manual_seed(seed)
    config = ESCNConfig(
        num_layers=num_layers, lmax=lmax, mmax=mmax, sphere_channels=8, hidden_channels=16, edge_channels=8,
        cutoff=cutoff, max_neighbors=None, num_sphere_samples=24, distance_resolution=0.1, forces="conservative",
        smooth_cutoff=True, activation=activation,
    )
    # The network's scale is set without the pair term (it has no weights), which is added at the end.
    model = ESCN(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embedding" not in name:
                parameter.mul_(weight_gain)
    save_checkpoint(path, model, elements=list(RANDOM_MODEL_ELEMENTS))
    raw = ESCNCalculator(path, device="cpu", dtype="float64")
    _, forces, _ = evaluate(raw, rattled_bulk())
    scale = force_rms / float(np.sqrt((forces**2).mean()))
    with torch.no_grad():
        model.energy_scale.fill_(scale)
        for z in RANDOM_MODEL_ELEMENTS:
            isolated, _, _ = evaluate(raw, Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]]))
            model.element_references[z] = _ISOLATED_ATOM_ENERGY[z] - scale * isolated
    final = ESCN(dataclasses.replace(config, pair_repulsion=pair_repulsion))
    final.load_state_dict(model.state_dict())
    save_checkpoint(path, final, elements=list(RANDOM_MODEL_ELEMENTS))
    return ESCNCalculator(path, device="cpu", dtype="float64")
