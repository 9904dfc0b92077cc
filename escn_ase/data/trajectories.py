"""Short EMT trajectories (Langevin MD and FIRE relaxation) sampled into frames for the data set.

Frames are returned as plain ``Atoms`` copies without calculator or constraints; labelling happens later
(:mod:`escn_ase.data.labels`) so that every stored structure is labelled the same way.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.constraints import FixAtoms

__all__ = ["md_frames", "relaxation_frames", "relaxed_copy"]


def _frame(atoms: Atoms) -> Atoms:
    frame = Atoms(atoms.get_chemical_symbols(), positions=atoms.get_positions(), cell=atoms.cell, pbc=atoms.pbc)
    frame.info.update({key: value for key, value in atoms.info.items() if isinstance(value, (str, int, float))})
    return frame


def _thermal_momenta(atoms: Atoms, temperature_k: float, rng: np.random.Generator) -> np.ndarray:
    """Maxwell-Boltzmann momenta at ``temperature_k`` with zero total momentum, shape (n_atoms, 3)."""
    masses = atoms.get_masses()
    momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_k)[:, None]
    return momenta - masses[:, None] * momenta.sum(axis=0) / masses.sum()


def md_frames(
    atoms: Atoms,
    rng: np.random.Generator,
    temperature_k: float,
    duration_fs: float,
    frame_interval_fs: float,
    timestep_fs: float,
    fixed: np.ndarray | None = None,
    friction_per_fs: float = 0.01,
) -> list[Atoms]:
    """Langevin NVT with EMT from ``atoms``; frames at t = 0, interval, 2*interval, ... <= duration.

    ``fixed`` holds indices kept in place (a slab's bottom layer). Each frame's ``info`` gets
    ``temperature_K`` and ``time_fs``.
    """
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin

    if timestep_fs <= 0 or frame_interval_fs < timestep_fs or duration_fs < 0:
        raise ValueError("need 0 < timestep_fs <= frame_interval_fs and duration_fs >= 0")
    system = atoms.copy()
    system.calc = EMT()
    if fixed is not None and len(fixed):
        system.set_constraint(FixAtoms(indices=fixed))
    momenta = _thermal_momenta(system, temperature_k, rng)
    if fixed is not None:
        momenta[fixed] = 0.0
    system.set_momenta(momenta)
    steps_per_frame = max(1, round(frame_interval_fs / timestep_fs))
    n_frames = int(duration_fs // frame_interval_fs)
    dynamics = Langevin(
        system,
        timestep_fs * units.fs,
        temperature_K=temperature_k,
        friction=friction_per_fs / units.fs,
        rng=rng,
        logfile=None,
        fixcm=False,  # the thermostat's noise may move the centre of mass; harmless for periodic systems
    )
    frames = []
    for index in range(n_frames + 1):
        if index:
            dynamics.run(steps_per_frame)
        frame = _frame(system)
        frame.info["temperature_K"] = float(temperature_k)
        frame.info["time_fs"] = float(index * steps_per_frame * timestep_fs)
        frames.append(frame)
    return frames


def _bfgs_path(atoms: Atoms, max_steps: int, fmax: float, fixed: np.ndarray | None) -> list[Atoms]:
    """Every geometry a FIRE run with EMT visits, the start included (constraints and calculator dropped)."""
    from ase.calculators.emt import EMT
    from ase.optimize import FIRE

    system = atoms.copy()
    system.calc = EMT()
    if fixed is not None and len(fixed):
        system.set_constraint(FixAtoms(indices=fixed))
    path: list[Atoms] = []
    optimizer = FIRE(system, logfile=None)
    optimizer.attach(lambda: path.append(_frame(system)), interval=1)
    optimizer.run(fmax=fmax, steps=max_steps)
    return path


def relaxed_copy(atoms: Atoms, max_steps: int, fmax: float = 0.1, fixed: np.ndarray | None = None) -> Atoms:
    """``atoms`` after at most ``max_steps`` FIRE steps with EMT: a start close to EMT's local minimum."""
    return _bfgs_path(atoms, max_steps, fmax, fixed)[-1]


def relaxation_frames(
    atoms: Atoms, n_frames: int, max_steps: int, fmax: float = 0.05, fixed: np.ndarray | None = None
) -> list[Atoms]:
    """FIRE relaxation with EMT; ``n_frames`` frames evenly spaced over the path, first and last included.

    Each frame's ``info`` gets ``relax_step`` (the optimizer step it was taken at).
    """
    if n_frames < 1 or max_steps < 0:
        raise ValueError("need n_frames >= 1 and max_steps >= 0")
    path = _bfgs_path(atoms, max_steps, fmax, fixed)
    chosen = np.unique(np.round(np.linspace(0, len(path) - 1, num=min(n_frames, len(path)))).astype(int))
    frames = []
    for step in chosen:
        frame = path[int(step)]
        frame.info["relax_step"] = int(step)
        frames.append(frame)
    return frames
