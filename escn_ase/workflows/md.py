"""Molecular dynamics on ASE's integrators with a thermo log, a progress bar and restart from the trajectory.

Files of a run with ``trajectory="md.traj"`` (all next to each other):

- ``md.traj``        ASE trajectory, one frame every ``interval`` steps (step number in ``atoms.info["md_step"]``)
- ``md.csv``         thermo log, one row per frame: step, time_fs, n_atoms, epot_eV, ekin_eV, etot_eV,
                     temperature_K, volume_A3 and pressure_GPa (3D-periodic cells with a stress)
- ``md.state.json``  settings and integrator state (random generator, thermostat chains) of the last frame
- ``md.png``         energies and temperature versus time
- ``md.summary.json`` the returned summary

Restart: when ``md.traj`` exists, the run continues from its last frame (positions, momenta, cell,
step) and appends, until ``steps`` steps in total are done.  Because the integrator state is saved
with every frame, a continued NVE or Langevin/Bussi run reproduces the frames of an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, PropertyNotImplementedError

from ..files import atomic_write
from ._common import is_direct_force, optional_import

__all__ = ["ENSEMBLES", "MDSummary", "read_thermo_log", "run_md"]

ENSEMBLES = ("nve", "nvt", "npt")
THERMOSTATS = ("langevin", "bussi")
LOG_COLUMNS = (
    "step",
    "time_fs",
    "n_atoms",
    "epot_eV",
    "ekin_eV",
    "etot_eV",
    "temperature_K",
    "volume_A3",
    "pressure_GPa",
)
# Settings that must not change between the pieces of one restarted run.
_FIXED_SETTINGS = ("ensemble", "timestep_fs", "interval", "thermostat")


@dataclass
class MDSummary:
    """What ``run_md`` did; energies in eV, times in fs/ps, temperature in K."""

    ensemble: str
    n_atoms: int
    steps: int
    start_step: int
    steps_run: int
    frames: int
    time_ps: float
    mean_temperature_K: float
    std_temperature_K: float
    energy_drift_eV_per_atom_per_ps: float | None
    max_energy_deviation_eV_per_atom: float | None
    mean_volume_A3: float | None
    mean_pressure_GPa: float | None
    trajectory: str
    logfile: str
    plot: str | None
    restarted: bool

    def to_dict(self) -> dict:
        return asdict(self)


def read_thermo_log(path: str | os.PathLike) -> list[dict]:
    """Rows of a thermo CSV as dicts of floats (empty cells become None)."""
    rows = []
    with open(path, newline="") as handle:
        for raw in csv.DictReader(handle):
            try:
                rows.append({k: (float(v) if v not in ("", None) else None) for k, v in raw.items()})
            except ValueError:  # a torn last line from an interrupted write
                break
    for row in rows:
        row["step"] = int(row["step"])
    return rows


def _paths(trajectory: str | os.PathLike, logfile, plot) -> tuple[Path, Path, Path, Path | None, Path]:
    trajectory = Path(trajectory)
    logfile = Path(logfile) if logfile is not None else trajectory.with_suffix(".csv")
    state = trajectory.with_suffix(".state.json")
    if plot is True or plot is None:
        plot = trajectory.with_suffix(".png")
    plot = Path(plot) if plot else None
    summary = trajectory.with_suffix(".summary.json")
    return trajectory, logfile, state, plot, summary


def _make_integrator(
    atoms: Atoms,
    ensemble: str,
    timestep_fs: float,
    temperature_K: float,
    thermostat: str,
    friction_per_fs: float,
    taut_fs: float,
    pressure_bar: float,
    pdamp_fs: float,
    rng: np.random.Generator,
):
    timestep = timestep_fs * units.fs
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep)
    if ensemble == "nvt":
        if thermostat == "langevin":
            from ase.md.langevin import Langevin

            # fixcm=False: ASE's centre-of-mass fixing in Langevin biases the sampled distribution
            # (deprecated since ASE 3.28); add ase.constraints.FixCom to the atoms to pin the centre of mass.
            return Langevin(
                atoms, timestep, temperature_K=temperature_K, friction=friction_per_fs / units.fs, fixcm=False, rng=rng
            )
        from ase.md.bussi import Bussi

        return Bussi(atoms, timestep, temperature_K=temperature_K, taut=taut_fs * units.fs, rng=rng)
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    return IsotropicMTKNPT(
        atoms,
        timestep,
        temperature_K=temperature_K,
        pressure_au=pressure_bar * units.bar,
        tdamp=taut_fs * units.fs,
        pdamp=pdamp_fs * units.fs,
    )


# Integrator state beyond positions/momenta/cell, by attribute; each entry is restored only where
# the integrator has it, so a different ASE version degrades to "continuous but not bit-identical".
_CHAIN_ATTRIBUTES = {"_thermostat": ("_eta", "_p_eta"), "_barostat": ("_xi", "_p_xi")}


def _integrator_state(dynamics) -> dict:
    state: dict = {}
    rng = getattr(dynamics, "rng", None)
    if isinstance(rng, np.random.Generator):
        state["rng"] = rng.bit_generator.state
    for owner_name, attributes in _CHAIN_ATTRIBUTES.items():
        owner = getattr(dynamics, owner_name, None)
        for attribute in attributes:
            if owner is not None and hasattr(owner, attribute):
                state[f"{owner_name}.{attribute}"] = np.asarray(getattr(owner, attribute)).tolist()
    if hasattr(dynamics, "_p_eps"):
        state["_p_eps"] = float(dynamics._p_eps)
    if hasattr(dynamics, "transferred_energy"):
        state["transferred_energy"] = float(dynamics.transferred_energy)
    return state


def _restore_integrator_state(dynamics, state: dict) -> None:
    rng = getattr(dynamics, "rng", None)
    if "rng" in state and isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state["rng"]
    for owner_name, attributes in _CHAIN_ATTRIBUTES.items():
        owner = getattr(dynamics, owner_name, None)
        for attribute in attributes:
            key = f"{owner_name}.{attribute}"
            if owner is not None and key in state and hasattr(owner, attribute):
                setattr(owner, attribute, np.asarray(state[key], dtype=float))
    if "_p_eps" in state and hasattr(dynamics, "_p_eps"):
        dynamics._p_eps = float(state["_p_eps"])
    if "transferred_energy" in state and hasattr(dynamics, "transferred_energy"):
        dynamics.transferred_energy = float(state["transferred_energy"])


def _pressure_gpa(atoms: Atoms) -> float | None:
    if not np.all(atoms.pbc) or is_direct_force(atoms.calc):
        return None
    try:
        stress = atoms.get_stress(voigt=False, include_ideal_gas=True)
    except PropertyNotImplementedError:
        return None
    return float(-np.trace(stress) / 3.0 / units.GPa)


def _thermo_row(atoms: Atoms, step: int, timestep_fs: float) -> dict:
    epot = float(atoms.get_potential_energy())
    ekin = float(atoms.get_kinetic_energy())
    periodic = bool(np.all(atoms.pbc))
    pressure = _pressure_gpa(atoms)
    return {
        "step": step,
        "time_fs": step * timestep_fs,
        "n_atoms": len(atoms),
        "epot_eV": epot,
        "ekin_eV": ekin,
        "etot_eV": epot + ekin,
        "temperature_K": float(atoms.get_temperature()),
        "volume_A3": float(atoms.get_volume()) if periodic else None,
        "pressure_GPa": pressure,
    }


def _write_log(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in LOG_COLUMNS})


def _append_log(path: Path, row: dict) -> None:
    with open(path, "a", newline="") as handle:
        csv.DictWriter(handle, fieldnames=LOG_COLUMNS).writerow(
            {k: ("" if row.get(k) is None else row[k]) for k in LOG_COLUMNS}
        )


def _write_json_atomically(path: Path, data: dict) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(data)))


def _last_frame(trajectory: Path) -> Atoms | None:
    """The last complete frame of ``trajectory`` (None if there is none).

    A job killed while writing leaves a torn last frame: the file is then rewritten with its
    complete frames only (with a warning), so that the continued run appends after them.
    """
    from ase.io.trajectory import Trajectory

    if not trajectory.exists() or trajectory.stat().st_size == 0:
        return None
    try:
        with Trajectory(str(trajectory)) as frames:
            n_frames = len(frames)
            good = n_frames
            last = None
            while good > 0 and last is None:
                try:
                    last = frames[good - 1]
                except Exception:  # a torn frame: JSONDecodeError, "buffer is smaller" ...
                    good -= 1
            kept = [frames[i] for i in range(good)] if good < n_frames else None
    except Exception as error:
        raise ValueError(
            f"cannot continue {trajectory}: it is not a readable ASE trajectory ({type(error).__name__}: {error}); "
            "pass restart=False (--no-restart) to start over, or move the file away"
        ) from error
    if kept is not None:
        warnings.warn(
            f"{trajectory} ended in {n_frames - good} incomplete frame(s) (the run was stopped while writing); "
            f"continuing from its last complete frame"
            + (f" (step {last.info.get('md_step')})" if last is not None else ", of which there is none"),
            UserWarning,
            stacklevel=3,
        )
        atomic_write(trajectory, lambda temporary: _write_frames(temporary, kept))
    return last


def _write_frames(path: Path, frames: list[Atoms]) -> None:
    from ase.io.trajectory import Trajectory

    with Trajectory(str(path), "w") as writer:
        for frame in frames:
            writer.write(frame)


def _initialise_velocities(atoms: Atoms, mode: str, temperature_K: float, rng: np.random.Generator) -> None:
    from ase.md import velocitydistribution

    has_momenta = atoms.has("momenta") and np.any(atoms.get_momenta())
    if mode == "keep" or (mode == "auto" and has_momenta):
        return
    if mode not in ("auto", "maxwell"):
        raise ValueError(f"velocities must be 'auto', 'maxwell' or 'keep', got {mode!r}")
    # thermalize_momenta replaces MaxwellBoltzmannDistribution (deprecated) from ASE 3.26 on.
    draw = (
        getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution
    )
    draw(atoms, temperature_K=temperature_K, rng=rng)
    velocitydistribution.Stationary(atoms)
    if not np.any(atoms.pbc):
        velocitydistribution.ZeroRotation(atoms)


def _validate(ensemble, thermostat, atoms, calc, steps, interval, timestep_fs, temperature_K) -> None:
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {', '.join(ENSEMBLES)}, got {ensemble!r}")
    if thermostat not in THERMOSTATS:
        raise ValueError(f"thermostat must be one of {', '.join(THERMOSTATS)}, got {thermostat!r}")
    if steps < 0 or interval < 1:
        raise ValueError(f"need steps >= 0 and interval >= 1, got steps={steps}, interval={interval}")
    if not (math.isfinite(timestep_fs) and timestep_fs > 0):
        raise ValueError(f"timestep_fs must be a positive finite number of fs, got {timestep_fs}")
    if not (math.isfinite(temperature_K) and temperature_K >= 0):
        raise ValueError(f"temperature_K must be a finite temperature >= 0 K, got {temperature_K}")
    if ensemble == "npt":
        if is_direct_force(calc):
            raise ValueError(
                "NPT needs the stress (strain derivative of the energy), but this calculator predicts forces "
                "directly and has no consistent stress; use a conservative model (e.g. the default "
                "ESCNCalculator()) or ensemble='nvt'"
            )
        if not np.all(atoms.pbc):
            raise ValueError(f"NPT needs a cell periodic in all three directions, got pbc={atoms.pbc}")
    if ensemble == "nve" and is_direct_force(calc):
        warnings.warn(
            "NVE with a direct-force calculator: its forces are not the gradient of its energy, so the "
            "total energy is not conserved; the reported drift measures the model, not the integrator",
            UserWarning,
            stacklevel=3,
        )


def _validate_coupling(friction_per_fs: float, taut_fs: float, pdamp_fs: float, pressure_bar: float) -> None:
    """Thermostat and barostat settings: NaN, inf or non-positive times would integrate nonsense."""
    if not (math.isfinite(friction_per_fs) and friction_per_fs >= 0):
        raise ValueError(f"friction_per_fs must be a finite number >= 0, got {friction_per_fs}")
    for name, value in (("taut_fs", taut_fs), ("pdamp_fs", pdamp_fs)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    if not math.isfinite(pressure_bar):
        raise ValueError(f"pressure_bar must be finite, got {pressure_bar}")


def run_md(
    atoms: Atoms,
    calc: Calculator,
    ensemble: str = "nvt",
    temperature_K: float = 300.0,
    timestep_fs: float = 1.0,
    steps: int = 1000,
    trajectory: str | os.PathLike = "md.traj",
    logfile: str | os.PathLike | None = None,
    interval: int = 10,
    thermostat: str = "langevin",
    friction_per_fs: float = 0.01,
    taut_fs: float = 100.0,
    pressure_bar: float = 1.01325,
    pdamp_fs: float = 1000.0,
    seed: int = 0,
    restart: bool = True,
    velocities: str = "auto",
    progress: bool = True,
    plot: bool | str | os.PathLike = True,
    callback: Callable[[Atoms, int], None] | None = None,
) -> MDSummary:
    """Run ``steps`` steps of MD in total (counting the steps of earlier, interrupted pieces).

    Args:
        ensemble: ``"nve"`` (velocity Verlet), ``"nvt"`` (``thermostat="langevin"`` with
            ``friction_per_fs``, or ``"bussi"`` with ``taut_fs``), ``"npt"`` (isotropic
            Martyna-Tobias-Klein, ASE's ``IsotropicMTKNPT``, thermostat time ``taut_fs``, barostat
            time ``pdamp_fs``, ``pressure_bar``; needs a conservative calculator with stress).
        temperature_K: thermostat target and the temperature of the initial Maxwell-Boltzmann velocities.
        interval: write a frame and a log row every ``interval`` steps (and at step 0).
        seed: seeds the initial velocities and the thermostat's random numbers.
        restart: continue from the last frame of ``trajectory`` if it exists; ``False`` starts anew
            and overwrites the files.
        velocities: ``"auto"`` keeps momenta the input atoms already have, else draws
            Maxwell-Boltzmann ones; ``"maxwell"`` always draws; ``"keep"`` never does.
        plot: PNG path, True for ``<trajectory>.png``, False for none.
        callback: called as ``callback(atoms, step)`` after every step (e.g. for custom analysis).

    Returns an ``MDSummary``; NVE runs report the drift of the total energy (slope of a linear
    fit, eV per atom per ps).
    """
    from ase.io.trajectory import Trajectory

    ensemble, thermostat = ensemble.lower(), thermostat.lower()
    _validate(ensemble, thermostat, atoms, calc, steps, interval, timestep_fs, temperature_K)
    _validate_coupling(friction_per_fs, taut_fs, pdamp_fs, pressure_bar)
    trajectory, logfile, state_path, plot_path, summary_path = _paths(trajectory, logfile, plot)
    settings = {
        "ensemble": ensemble,
        "timestep_fs": timestep_fs,
        "interval": interval,
        "thermostat": thermostat if ensemble == "nvt" else None,
    }
    work = atoms.copy()
    last = _last_frame(trajectory) if restart else None
    saved_state: dict = {}
    start_step = 0
    if last is not None:
        start_step, saved_state = _resume_point(last, work, trajectory, state_path, settings)
        work.set_cell(last.cell, scale_atoms=False)
        work.set_positions(last.positions)
        work.set_momenta(last.get_momenta())
    rng = np.random.default_rng(seed)
    if last is None:
        _initialise_velocities(work, velocities, temperature_K, rng)
    work.calc = calc
    dynamics = _make_integrator(
        work, ensemble, timestep_fs, temperature_K, thermostat, friction_per_fs, taut_fs, pressure_bar, pdamp_fs, rng
    )
    if last is not None:
        _continue_from(dynamics, saved_state, state_path, logfile, start_step)
    else:
        _write_log(logfile, [])
    dynamics.nsteps = start_step
    to_run = max(steps - start_step, 0)

    tqdm = optional_import("tqdm").tqdm if progress else None
    bar = tqdm(total=steps, initial=min(start_step, steps), unit="step", desc=f"MD {ensemble}") if tqdm else None
    with Trajectory(str(trajectory), "a" if last is not None else "w") as writer:

        def record() -> None:
            step = int(dynamics.nsteps)
            # Row first, then frame, then state: a restart keeps rows up to the last complete frame.
            _append_log(logfile, _thermo_row(work, step, timestep_fs))
            work.info["md_step"] = step
            writer.write(work)
            _write_json_atomically(
                state_path, {"step": step, "settings": settings, "integrator": _integrator_state(dynamics)}
            )

        def every_step() -> None:
            if int(dynamics.nsteps) == start_step:  # ASE also calls observers once before the first step
                return
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(work, int(dynamics.nsteps))

        dynamics.attach(record, interval=interval)
        dynamics.attach(every_step, interval=1)
        try:
            if to_run or last is None:  # a fresh run logs step 0 even when no step is requested
                dynamics.run(to_run)
        finally:
            if bar is not None:
                bar.close()

    rows = read_thermo_log(logfile)
    with Trajectory(str(trajectory)) as frames:
        n_frames = len(frames)
    if plot_path is not None and rows:
        from .plots import plot_md_log

        plot_md_log(
            rows,
            plot_path,
            title=f"{ensemble.upper()} MD, {work.get_chemical_formula()}",
            target_temperature_K=None if ensemble == "nve" else temperature_K,
            conserved=ensemble == "nve",
        )
    summary = _summarise(
        rows, n_frames, ensemble, len(work), steps, start_step, to_run, trajectory, logfile, plot_path, last is not None
    )
    _write_json_atomically(summary_path, summary.to_dict())
    return summary


def _continue_from(dynamics, saved_state: dict, state_path: Path, logfile: Path, start_step: int) -> None:
    """Restore the integrator's state saved with the last complete frame (or warn that it is not that
    step's) and drop log rows written after that frame."""
    if saved_state.get("step") == start_step:
        _restore_integrator_state(dynamics, saved_state.get("integrator", {}))
    else:
        warnings.warn(
            f"{state_path} does not describe step {start_step} (the run stopped between writing the frame "
            "and its state); continuing with a fresh random stream / thermostat state",
            UserWarning,
            stacklevel=3,
        )
    rows = [r for r in read_thermo_log(logfile) if r["step"] <= start_step] if logfile.exists() else []
    _write_log(logfile, rows)


def _resume_point(last: Atoms, work: Atoms, trajectory: Path, state_path: Path, settings: dict) -> tuple[int, dict]:
    if len(last) != len(work) or not np.array_equal(last.numbers, work.numbers):
        raise ValueError(
            f"cannot continue {trajectory}: its frames hold {last.get_chemical_formula()} but the structure "
            f"given is {work.get_chemical_formula()}; pass restart=False or another trajectory file"
        )
    if "md_step" not in last.info:
        raise ValueError(f"cannot continue {trajectory}: its last frame has no md_step (not written by run_md)")
    state = _read_state(state_path)
    saved = state.get("settings", {})
    changed = [k for k in _FIXED_SETTINGS if k in saved and saved[k] != settings[k]]
    if changed:
        details = ", ".join(f"{k}: {saved[k]!r} -> {settings[k]!r}" for k in changed)
        raise ValueError(
            f"cannot continue {trajectory} with different settings ({details}); "
            "use the original settings or restart=False"
        )
    return int(last.info["md_step"]), state


def _read_state(state_path: Path) -> dict:
    """The saved integrator state, or {} (with a warning) when it is missing its end (a killed write)."""
    if not state_path.exists():
        return {}
    try:
        state = json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        warnings.warn(f"{state_path} is incomplete (a killed write); its settings cannot be checked", UserWarning,
                      stacklevel=4)
        return {}
    return state if isinstance(state, dict) else {}


def _summarise(
    rows, n_frames, ensemble, n_atoms, steps, start_step, steps_run, trajectory, logfile, plot_path, restarted
):
    time_fs = np.array([r["time_fs"] for r in rows], dtype=float)
    temperature = np.array([r["temperature_K"] for r in rows[1:] or rows], dtype=float)
    drift = deviation = None
    if ensemble == "nve" and len(rows) >= 2:
        etot = np.array([r["etot_eV"] for r in rows], dtype=float)
        slope_per_fs = np.polyfit(time_fs, etot, 1)[0]
        drift = float(slope_per_fs * 1000.0 / n_atoms)
        deviation = float(np.abs(etot - etot[0]).max() / n_atoms)

    def mean_of(key):
        values = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    return MDSummary(
        ensemble=ensemble,
        n_atoms=n_atoms,
        steps=steps,
        start_step=start_step,
        steps_run=steps_run,
        frames=n_frames,
        time_ps=float(time_fs[-1] / 1000.0) if len(rows) else 0.0,
        mean_temperature_K=float(temperature.mean()) if len(temperature) else math.nan,
        std_temperature_K=float(temperature.std()) if len(temperature) else math.nan,
        energy_drift_eV_per_atom_per_ps=drift,
        max_energy_deviation_eV_per_atom=deviation,
        mean_volume_A3=mean_of("volume_A3"),
        mean_pressure_GPa=mean_of("pressure_GPa"),
        trajectory=str(trajectory),
        logfile=str(logfile),
        plot=str(plot_path) if plot_path is not None else None,
        restarted=restarted,
    )
