"""Many relaxations at once: every optimiser step evaluates all unfinished structures in one packed graph.

``relax_batch`` keeps a batch of structures in flight. After each evaluation a structure whose
largest force (constraints applied, as ASE applies them) is below ``fmax``, or that has taken
``steps`` steps, leaves the batch with its ``RelaxResult`` and the next queued structure takes its
place, so the batch stays full while the queue lasts. FIRE is ASE's ``ase.optimize.FIRE`` with its
default parameters, written with numpy over all structures of the batch at once (one structure
relaxed alone takes ASE's path step for step); LBFGS is ASE's ``ase.optimize.LBFGS`` per structure.

With an ``ESCNCalculator`` (anything with ``evaluate(list_of_atoms)``) the structures of a step are
evaluated together; any other ASE calculator is called once per structure, which gives the same
results without the speed-up.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

from ._common import evaluate_isolating, optional_import
from .relax import RelaxResult
from .relax import fix_bottom_layers as _fix_layers

__all__ = ["BATCH_OPTIMIZERS", "FIRE_PARAMETERS", "LBFGS_PARAMETERS", "BatchItem", "iter_relax_batch", "relax_batch"]

BATCH_OPTIMIZERS = ("fire", "lbfgs")

# ase.optimize.FIRE's defaults (``a`` starts at 0.1, as ASE's ``a=0.1``).
FIRE_PARAMETERS = {
    "dt": 0.1,
    "maxstep": 0.2,
    "dtmax": 1.0,
    "Nmin": 5,
    "finc": 1.1,
    "fdec": 0.5,
    "astart": 0.1,
    "fa": 0.99,
    "a": 0.1,
}
# ase.optimize.LBFGS's defaults.
LBFGS_PARAMETERS = {"maxstep": 0.2, "memory": 100, "damping": 1.0, "alpha": 70.0}


@dataclass
class _Job:
    """One structure in the queue or in flight: its working copy, last results and optimiser state."""

    index: int
    atoms: Atoms
    trajectory: Path | None = None
    n_edges: int | None = None  # neighbour-graph size at entry, for the memory estimate
    energy: float = math.nan  # constraint-adjusted, as atoms.get_potential_energy()
    forces: np.ndarray | None = None  # constraint-adjusted, as atoms.get_forces()
    initial_energy: float = math.nan
    nsteps: int = 0
    entered: float = 0.0  # time.perf_counter() when the job joined the batch
    # FIRE
    vel: np.ndarray | None = None
    dt: float = FIRE_PARAMETERS["dt"]
    a: float = FIRE_PARAMETERS["a"]
    n_positive: int = 0  # ASE's FIRE.Nsteps: steps since P = F.v was last negative
    # LBFGS
    lbfgs: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- input checks
def _check_arguments(structures, calc, fmax, steps, optimizer, max_batch_atoms, fix_bottom_layers) -> list[int]:
    """Refuse input that cannot work, naming it; returns the number of bottom layers to fix per structure."""
    if isinstance(structures, Atoms) or not isinstance(structures, Sequence):
        raise TypeError(
            f"structures must be a list of ase.Atoms, got {type(structures).__name__}"
            + (" (for one structure pass [atoms], or use relax())" if isinstance(structures, Atoms) else "")
        )
    if len(structures) == 0:
        raise ValueError("relax_batch() needs at least one structure (got an empty list)")
    for index, atoms in enumerate(structures):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"structures[{index}] is a {type(atoms).__name__}, not an ase.Atoms")
        if len(atoms) == 0:
            raise ValueError(f"structures[{index}] has no atoms")
    if not callable(getattr(calc, "get_forces", None)):
        raise TypeError(f"calc must be an ASE calculator (with get_forces), got {type(calc).__name__}")
    if isinstance(fmax, bool) or not isinstance(fmax, (int, float, np.integer, np.floating)):
        raise TypeError(f"fmax must be a number (eV/A), got {fmax!r}")
    if not (math.isfinite(fmax) and fmax > 0):
        raise ValueError(f"fmax must be a positive finite force in eV/A, got {fmax}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not isinstance(optimizer, str) or optimizer.lower() not in BATCH_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(BATCH_OPTIMIZERS)}, got {optimizer!r}")
    if max_batch_atoms is not None and (
        isinstance(max_batch_atoms, bool) or not isinstance(max_batch_atoms, (int, np.integer)) or max_batch_atoms < 1
    ):
        raise ValueError(f"max_batch_atoms must be a positive integer or None (memory estimate), got {max_batch_atoms}")
    if isinstance(fix_bottom_layers, (int, np.integer)) and not isinstance(fix_bottom_layers, bool):
        layers = [int(fix_bottom_layers)] * len(structures)
    elif isinstance(fix_bottom_layers, Sequence) and not isinstance(fix_bottom_layers, str):
        layers = list(fix_bottom_layers)
        if len(layers) != len(structures):
            raise ValueError(
                f"fix_bottom_layers has {len(layers)} entries for {len(structures)} structures; "
                "pass one integer for all or one per structure"
            )
        if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in layers):
            raise ValueError(f"fix_bottom_layers entries must be integers, got {layers!r}")
        layers = [int(n) for n in layers]
    else:
        raise ValueError(f"fix_bottom_layers must be an integer or one per structure, got {fix_bottom_layers!r}")
    if any(n < 0 for n in layers):
        raise ValueError(f"fix_bottom_layers must be >= 0, got {fix_bottom_layers!r}")
    return layers


# ---------------------------------------------------------------------------------------------- evaluation
def _is_batched(calc: Calculator) -> bool:
    return callable(getattr(calc, "evaluate", None))


def _raw_results(calc: Calculator, structures: list[Atoms]) -> list[tuple[float, np.ndarray] | Exception]:
    """(energy, forces) without constraints for each structure, or the exception that structure
    raised: one packed graph when the calculator has ``evaluate``, otherwise one ordinary ASE call
    per structure (``evaluate_isolating`` splits a batch that raises until the failing structure is alone)."""

    def evaluate(batch: list[Atoms]) -> list[tuple[float, np.ndarray]]:
        if _is_batched(calc):
            return [(float(r["energy"]), np.array(r["forces"], dtype=float)) for r in calc.evaluate(batch)]
        return [
            (float(calc.get_potential_energy(atoms)), np.array(calc.get_forces(atoms), dtype=float)) for atoms in batch
        ]

    return evaluate_isolating(evaluate, structures)


def _take_results(job: _Job, energy: float, forces: np.ndarray) -> None:
    """Attach the raw results and read them back through ASE, which applies the constraints."""
    job.atoms.calc = SinglePointCalculator(job.atoms, energy=energy, free_energy=energy, forces=forces)
    job.energy = float(job.atoms.get_potential_energy())
    job.forces = job.atoms.get_forces()


def _max_force(job: _Job) -> float:
    return float(np.sqrt((job.forces**2).sum(axis=1)).max())


def _write_frame(job: _Job, first: bool) -> None:
    from ase.io.trajectory import Trajectory

    with Trajectory(str(job.trajectory), mode="w" if first else "a") as trajectory:
        trajectory.write(job.atoms)


class _Admission:
    """Decides how many queued structures join the batch: ``max_batch_atoms`` and, for calculators with
    a memory estimate (``ESCNCalculator``), whether the packed graph fits, as ``calculate_batch`` decides."""

    def __init__(self, calc: Calculator, max_batch_atoms: int | None) -> None:
        self.calc = calc
        self.max_atoms = max_batch_atoms
        self.estimates = (
            _is_batched(calc)
            and hasattr(calc, "config")
            and all(callable(getattr(calc, name, None)) for name in ("_fits", "_memory_budget"))
        )
        # Without an explicit limit, the calculator's preferred graph size (a CPU runs smaller batches faster).
        preferred = getattr(calc, "preferred_batch_edges", None)
        self.max_edges = preferred() if max_batch_atoms is None and self.estimates and callable(preferred) else None

    def _edges(self, job: _Job) -> int:
        if job.n_edges is None:
            from ..batch import structure_graph

            keep_shell = getattr(self.calc, "neighbor_ties", "reference") == "keep_shell"
            job.n_edges = int(structure_graph(job.atoms, self.calc.config, keep_shell).n_edges)
        return job.n_edges

    def admit(self, active: list[_Job], queue: deque[_Job]) -> None:
        """Move queued jobs into ``active`` while they fit (at least one when ``active`` is empty)."""
        n_atoms = sum(len(job.atoms) for job in active)
        n_edges = sum(self._edges(job) for job in active) if self.estimates and queue else 0
        budget = self.calc._memory_budget() if self.estimates and queue else 0
        while queue:
            job = queue[0]
            atoms_after = n_atoms + len(job.atoms)
            if active and self.max_atoms is not None and atoms_after > self.max_atoms:
                break
            if self.estimates:
                edges_after = n_edges + self._edges(job)
                if active and self.max_edges is not None and edges_after > self.max_edges:
                    break
                if active and not self.calc._fits(atoms_after, edges_after, budget):
                    break
                n_edges = edges_after
            n_atoms = atoms_after
            job.entered = time.perf_counter()
            active.append(queue.popleft())


# ---------------------------------------------------------------------------------------------- optimisers
def _fire_step(jobs: list[_Job]) -> None:
    """One step of ase.optimize.FIRE for every job at once (structures packed along the atom axis).

    Per structure this is ``FIRE.step`` term for term, with the same order of operations: the first
    step starts from zero velocity; later steps mix the velocity towards the force when P = F.v > 0
    (growing dt and shrinking a after ``Nmin`` such steps) or stop and halve dt otherwise; then
    v += dt F, dr = dt v, capped at ``maxstep`` in norm over the whole structure.
    """
    p = FIRE_PARAMETERS
    sizes = np.array([len(job.atoms) for job in jobs])
    segment = np.repeat(np.arange(len(jobs)), sizes)
    n = len(jobs)

    def per_structure(values: np.ndarray) -> np.ndarray:
        return np.bincount(segment, weights=values.sum(axis=1), minlength=n)

    force = np.concatenate([job.forces for job in jobs])  # -gradient
    started = np.array([job.vel is not None for job in jobs])
    vel = np.concatenate([job.vel if job.vel is not None else np.zeros((len(job.atoms), 3)) for job in jobs])
    dt = np.array([job.dt for job in jobs])
    a = np.array([job.a for job in jobs])
    n_positive = np.array([job.n_positive for job in jobs])

    vf = per_structure(force * vel)
    grad2 = per_structure(force * force)
    vv = per_structure(vel * vel)
    downhill = started & (vf > 0.0)
    uphill = started & ~(vf > 0.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = (1.0 - a)[segment, None] * vel + a[segment, None] * force / np.sqrt(grad2)[segment, None] * np.sqrt(
            vv
        )[segment, None]
    vel = np.where(downhill[segment, None], mixed, vel)
    grow = downhill & (n_positive > p["Nmin"])
    dt = np.where(grow, np.minimum(dt * p["finc"], p["dtmax"]), dt)
    a = np.where(grow, a * p["fa"], a)
    n_positive = np.where(downhill, n_positive + 1, n_positive)

    vel = np.where(uphill[segment, None], vel * 0.0, vel)
    a = np.where(uphill, p["astart"], a)
    dt = np.where(uphill, dt * p["fdec"], dt)
    n_positive = np.where(uphill, 0, n_positive)

    vel = vel + dt[segment, None] * force
    dr = dt[segment, None] * vel
    norm_dr = np.sqrt(per_structure(dr * dr))
    too_long = norm_dr > p["maxstep"]
    with np.errstate(divide="ignore", invalid="ignore"):
        dr = np.where(too_long[segment, None], p["maxstep"] * dr / norm_dr[segment, None], dr)

    start = 0
    for index, job in enumerate(jobs):
        stop = start + sizes[index]
        job.vel = vel[start:stop].copy()
        job.dt, job.a, job.n_positive = float(dt[index]), float(a[index]), int(n_positive[index])
        job.atoms.set_positions(job.atoms.get_positions() + dr[start:stop])  # constraints adjust the step
        start = stop


def _lbfgs_step(job: _Job) -> None:
    """One step of ase.optimize.LBFGS (no line search) for one structure, term for term."""
    p = LBFGS_PARAMETERS
    state = job.lbfgs
    if not state:
        state.update(iteration=0, s=[], y=[], rho=[], r0=None, f0=None)
    forces = job.forces.ravel()
    pos = job.atoms.get_positions().ravel()
    if state["iteration"] > 0:
        s0 = pos - state["r0"]
        y0 = -forces - -state["f0"]
        state["s"].append(s0)
        state["y"].append(y0)
        state["rho"].append(1.0 / np.dot(y0, s0))
        if state["iteration"] > p["memory"]:
            for name in ("s", "y", "rho"):
                state[name].pop(0)
    loopmax = min(p["memory"], state["iteration"])
    alphas = np.empty(loopmax, dtype=np.float64)
    q = (-forces).copy()
    for i in range(loopmax - 1, -1, -1):
        alphas[i] = state["rho"][i] * np.dot(state["s"][i], q)
        q -= alphas[i] * state["y"][i]
    z = np.full(len(q), 1.0 / p["alpha"]) * q
    for i in range(loopmax):
        b = state["rho"][i] * np.dot(state["y"][i], z)
        z += state["s"][i] * (alphas[i] - b)
    state["iteration"] += 1
    dr = -z
    longest = np.linalg.norm(dr.reshape(-1, 3), axis=1).max()
    if longest >= p["maxstep"]:
        dr *= p["maxstep"] / longest
    dr = dr * p["damping"]
    job.atoms.set_positions((pos + dr).reshape(-1, 3))
    state["r0"] = pos
    state["f0"] = forces


# ---------------------------------------------------------------------------------------------- driver
@dataclass
class BatchItem:
    """One finished structure of ``iter_relax_batch``: its index, and its result or its error."""

    index: int
    result: RelaxResult | None
    error: Exception | None = None
    wall_s: float = 0.0  # time from entering the batch to leaving it


def relax_batch(
    structures: Sequence[Atoms],
    calc: Calculator,
    fmax: float = 0.05,
    steps: int = 500,
    optimizer: str = "fire",
    max_batch_atoms: int | None = None,
    fix_bottom_layers: int | Sequence[int] = 0,
    trajectory_dir: str | os.PathLike | None = None,
    progress: bool = False,
    layer_tolerance: float = 0.3,
) -> list[RelaxResult]:
    """Relax many structures together; returns one ``RelaxResult`` per structure, in input order.

    Every step evaluates all unfinished structures at once (``calc.evaluate``: one packed graph;
    calculators without ``evaluate``, such as EMT, are called once per structure). A structure
    leaves the batch when its largest force is below ``fmax`` (ASE's test: the force norm of each
    atom with the constraints applied, so fixed atoms do not count) or after ``steps`` steps, and
    the next queued structure enters.

    Args:
        optimizer: ``"fire"`` (ase.optimize.FIRE with its defaults, vectorised over the batch; one
            structure follows ASE's path) or ``"lbfgs"`` (ase.optimize.LBFGS, per structure).
        max_batch_atoms: most atoms evaluated together. None: as many as the calculator's memory
            estimate allows (as ``calculate_batch`` decides; no limit for calculators without one)
            and, on a CPU, at most ``calc.preferred_batch_edges()`` edges (larger packed graphs cost
            more per structure there). A structure larger than the limit is relaxed alone.
        fix_bottom_layers: fix the lowest n layers along z of each structure (one integer for all,
            or one per structure; see ``relax.layer_indices``), merged with each structure's own
            ``FixAtoms``. Constraints are applied as ASE applies them (``adjust_positions`` on
            every move, ``adjust_forces`` and ``adjust_potential_energy`` on every result).
        trajectory_dir: write each relaxation to ``trajectory_dir/NNNN.traj`` (NNNN: the index of
            the structure), one frame per evaluation as ASE's optimisers write them.
        progress: show a tqdm bar of finished relaxations.
        layer_tolerance: gap along z (A) that starts a new layer for ``fix_bottom_layers``.

    The inputs are not modified. ``result.atoms`` is the relaxed copy with its constraints and a
    ``SinglePointCalculator`` holding the final energy and forces; ``energy``, ``converged``,
    ``steps``, ``fmax`` (largest constrained force reached) and ``initial_energy`` are as ``relax``
    reports them. A structure the calculator refuses (an unknown element, atoms pushed together)
    raises its error; ``iter_relax_batch`` reports such errors per structure instead.
    """
    results: list[RelaxResult | None] = [None] * len(structures) if isinstance(structures, Sequence) else []
    for item in iter_relax_batch(
        structures, calc, fmax, steps, optimizer, max_batch_atoms, fix_bottom_layers, trajectory_dir, progress,
        layer_tolerance,
    ):
        if item.error is not None:
            raise item.error
        results[item.index] = item.result
    return results  # type: ignore[return-value]


def iter_relax_batch(
    structures: Sequence[Atoms],
    calc: Calculator,
    fmax: float = 0.05,
    steps: int = 500,
    optimizer: str = "fire",
    max_batch_atoms: int | None = None,
    fix_bottom_layers: int | Sequence[int] = 0,
    trajectory_dir: str | os.PathLike | None = None,
    progress: bool = False,
    layer_tolerance: float = 0.3,
) -> Iterator[BatchItem]:
    """``relax_batch`` as a generator: yields a ``BatchItem`` as each structure finishes (in the order
    they finish), so a caller can store results while the rest of the batch runs.

    A structure whose evaluation raises (the batch is split until the culprit is alone) is yielded
    with ``error`` set and leaves the batch; the others go on.
    """
    layers = _check_arguments(structures, calc, fmax, steps, optimizer, max_batch_atoms, fix_bottom_layers)
    optimizer = optimizer.lower()
    directory = None if trajectory_dir is None else Path(trajectory_dir)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(len(structures) - 1)))

    queue: deque[_Job] = deque()
    for index, (atoms, n_layers) in enumerate(zip(structures, layers)):
        work = atoms.copy()
        work.calc = None
        if n_layers:
            try:
                _fix_layers(work, n_layers, layer_tolerance)
            except ValueError as exc:
                raise ValueError(f"structures[{index}]: {exc}") from None
        path = None if directory is None else directory / f"{index:0{width}d}.traj"
        queue.append(_Job(index=index, atoms=work, trajectory=path))

    bar = optional_import("tqdm").tqdm(total=len(queue), desc="relaxations", unit="structure") if progress else None
    admission = _Admission(calc, max_batch_atoms)
    active: list[_Job] = []
    admission.admit(active, queue)
    try:
        while active:
            raw = _raw_results(calc, [job.atoms for job in active])
            running = []
            finished: list[BatchItem] = []
            for job, outcome in zip(active, raw):
                if isinstance(outcome, Exception):
                    finished.append(BatchItem(job.index, None, outcome, time.perf_counter() - job.entered))
                    continue
                _take_results(job, *outcome)
                first = job.nsteps == 0 and math.isnan(job.initial_energy)
                if first:
                    job.initial_energy = job.energy
                if job.trajectory is not None:
                    _write_frame(job, first)
                reached = _max_force(job)
                converged = reached < fmax
                if converged or job.nsteps >= steps:
                    result = RelaxResult(
                        atoms=job.atoms,
                        energy=job.energy,
                        converged=bool(converged),
                        steps=job.nsteps,
                        fmax=reached,
                        initial_energy=job.initial_energy,
                        trajectory=None if job.trajectory is None else str(job.trajectory),
                    )
                    job.vel = job.lbfgs = None  # free the optimiser state
                    finished.append(BatchItem(job.index, result, None, time.perf_counter() - job.entered))
                else:
                    running.append(job)
            if running:
                if optimizer == "fire":
                    _fire_step(running)
                else:
                    for job in running:
                        _lbfgs_step(job)
                for job in running:
                    job.nsteps += 1
            active = running
            admission.admit(active, queue)
            for item in finished:  # after the step: the caller's time does not hold the batch's state
                if bar is not None:
                    bar.update(1)
                yield item
    finally:
        if bar is not None:
            bar.close()
