"""Adsorption-energy screening: surfaces x adsorbates x sites, relaxed in parallel, resumable.

Every relaxation is an independent job with a readable key (``slab|Cu(111)``, ``gas|O2``,
``ads|Cu(111)|O|hollow|1``).  Jobs run on any ``concurrent.futures.Executor`` (a local process
pool by default, a Dask ``distributed.Client`` works too); the calculator is built inside each
worker from a picklable factory.  Each finished job is appended at once to a JSON-lines file, so
an interrupted screening loses at most the jobs that were running, and a rerun skips every key
already there.  Tables (CSV + JSON) and a bar chart are written from that file at the end.

``mode="batched"`` runs the jobs in this process with one calculator instead: ``iter_relax_batch``
keeps many relaxations in flight and evaluates all of them in one packed graph per optimiser step
(the way to fill a GPU); records are still appended as each structure finishes, so interruption
and resume work the same way.

Adsorption energies use gas-phase references (``Adsorbate.reference``):
``E_ads = E(slab+ads) - E(slab) - sum_k c_k E(gas_k)``, every structure relaxed with the same
calculator.  Anomaly flags follow AdsorbML's categories:

- ``desorbed``: the binding atom ends up farther than ``desorption_factor`` x (sum of covalent
  radii) from every slab atom;
- ``dissociated``: two adsorbate atoms bonded at the start (distance < ``bond_factor`` x sum of
  covalent radii) are no longer bonded;
- ``surface_changed``: a slab atom moved more than ``surface_change_threshold`` A from its
  position in the starting (unrelaxed clean) slab.

The minimum per surface/adsorbate is taken over converged sites without anomalies (over all sites,
marked ``all_sites_flagged``, when none is left).
"""

from __future__ import annotations

import ast
import concurrent.futures
import csv
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import find_mic, get_distances

from ..errors import ScreeningError
from ._common import CalculatorFactory, as_factory, optional_import
from .adsorbates import Adsorbate, gas_molecule, get_adsorbate
from .relax import RelaxResult, relax
from .surfaces import SITE_TYPES, Surface, as_surface, find_sites, place_adsorbate

logger = logging.getLogger("escn_ase")

__all__ = [
    "SCREENING_MODES",
    "InlineExecutor",
    "ScreeningResult",
    "anomaly_flags",
    "build_jobs",
    "read_results",
    "screen_adsorption",
    "write_tables",
]

SCREENING_MODES = ("executor", "batched")
# Optimisers by mode: ASE's own in the executor; the batched ones of escn_ase.workflows.batch_relax.
_DEFAULT_OPTIMIZER = {"executor": "BFGS", "batched": "LBFGS"}
_BATCHED_OPTIMIZERS = ("FIRE", "LBFGS")

TABLE_COLUMNS = (
    "surface",
    "adsorbate",
    "site",
    "site_index",
    "coordination",
    "site_x",
    "site_y",
    "adsorption_energy_eV",
    "energy_eV",
    "slab_energy_eV",
    "reference",
    "converged",
    "steps",
    "fmax",
    "desorbed",
    "dissociated",
    "surface_changed",
    "max_surface_displacement_A",
    "anomaly",
    "is_minimum",
    "key",
)


class InlineExecutor(concurrent.futures.Executor):
    """Runs each job at submission, in this process (debugging, tiny screens, single-core machines)."""

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as a pool would
            future.set_exception(exc)
        return future


@dataclass
class ScreeningResult:
    """Tables of a screening and what this call did."""

    rows: list[dict]
    minima: list[dict]
    gas_energies: dict[str, float]
    slab_energies: dict[str, float]
    references: dict[str, str]
    files: dict[str, str]
    n_jobs: int
    n_done_before: int
    n_run: int
    n_failed: int
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


# ----------------------------------------------------------------------------------- anomalies
def _bonded(distance: float, z1: int, z2: int, factor: float) -> bool:
    return distance < factor * (covalent_radii[z1] + covalent_radii[z2])


def anomaly_flags(
    initial: Atoms,
    final: Atoms,
    n_slab: int,
    binding_index: int,
    desorption_factor: float = 1.5,
    bond_factor: float = 1.25,
    surface_change_threshold: float = 0.5,
) -> dict:
    """AdsorbML-style flags of a relaxed slab+adsorbate (adsorbate atoms from index ``n_slab`` on).

    Distances use the minimum-image convention of ``final``'s cell.
    """
    numbers = final.numbers
    binding = n_slab + binding_index
    _, to_slab = get_distances(final.positions[binding], final.positions[:n_slab], cell=final.cell, pbc=final.pbc)
    to_slab = to_slab[0]
    desorbed = not any(_bonded(d, numbers[binding], numbers[j], desorption_factor) for j, d in enumerate(to_slab))
    dissociated = False
    adsorbate = range(n_slab, len(final))
    if len(adsorbate) > 1:
        _, before = get_distances(initial.positions[n_slab:], cell=initial.cell, pbc=initial.pbc)
        _, after = get_distances(final.positions[n_slab:], cell=final.cell, pbc=final.pbc)
        z = numbers[n_slab:]
        for i in range(len(z)):
            for j in range(i + 1, len(z)):
                if _bonded(before[i, j], z[i], z[j], bond_factor) and not _bonded(after[i, j], z[i], z[j], bond_factor):
                    dissociated = True
    _, shifts = find_mic(final.positions[:n_slab] - initial.positions[:n_slab], final.cell, final.pbc)
    max_shift = float(shifts.max()) if n_slab else 0.0
    return {
        "desorbed": bool(desorbed),
        "dissociated": bool(dissociated),
        "surface_changed": bool(max_shift > surface_change_threshold),
        "max_surface_displacement_A": max_shift,
        "binding_distance_A": float(to_slab.min()) if n_slab else float("nan"),
    }


# ---------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class _Job:
    key: str
    kind: str  # "slab", "gas" or "ads"
    atoms: Atoms
    fix_bottom_layers: int
    settings: tuple  # (fmax, steps, optimizer)
    surface: str | None = None
    adsorbate: str | None = None
    site: dict | None = None
    n_slab: int = 0
    binding_index: int = 0
    thresholds: tuple = (1.5, 1.25, 0.5)

    @property
    def fingerprint(self) -> str:
        """Hash of the starting structure and relaxation settings: a resumed key must mean the same job."""
        digest = hashlib.sha256()
        digest.update(self.atoms.numbers.tobytes())
        digest.update(np.round(self.atoms.positions, 6).tobytes())
        digest.update(np.round(np.array(self.atoms.cell), 6).tobytes())
        digest.update(repr((self.kind, self.fix_bottom_layers, self.settings, self.thresholds)).encode())
        return digest.hexdigest()[:16]


def build_jobs(
    surfaces: Sequence[Surface],
    adsorbates: Sequence[Adsorbate],
    site_types: Sequence[str] = SITE_TYPES,
    max_sites_per_type: int | None = None,
    fix_bottom_layers: int = 2,
    fmax: float = 0.05,
    steps: int = 300,
    optimizer: str = "BFGS",
    thresholds: tuple[float, float, float] = (1.5, 1.25, 0.5),
) -> list[_Job]:
    """All relaxations of a screening: clean slabs, gas molecules, and every adsorbate on every site."""
    settings = (float(fmax), int(steps), optimizer.upper())
    labels = [s.label for s in surfaces]
    if len(set(labels)) != len(labels):
        raise ValueError(f"surface labels must be unique, got {labels}")
    jobs = [_Job(f"slab|{s.label}", "slab", s.slab, fix_bottom_layers, settings, surface=s.label) for s in surfaces]
    molecules = sorted({m for a in adsorbates for m in a.gas_molecules})
    jobs += [_Job(f"gas|{m}", "gas", gas_molecule(m), 0, settings) for m in molecules]
    for surface in surfaces:
        sites = find_sites(surface.slab, tuple(site_types))
        if max_sites_per_type is not None:
            sites = [s for s in sites if s.index < max_sites_per_type]
        if not sites:
            raise ValueError(f"no adsorption sites of kinds {tuple(site_types)} found on {surface.label}")
        for adsorbate in adsorbates:
            for site in sites:
                jobs.append(
                    _Job(
                        f"ads|{surface.label}|{adsorbate.name}|{site.kind}|{site.index}",
                        "ads",
                        place_adsorbate(surface.slab, adsorbate, site),
                        fix_bottom_layers,
                        settings,
                        surface=surface.label,
                        adsorbate=adsorbate.name,
                        site={
                            "kind": site.kind,
                            "index": site.index,
                            "position": list(site.position),
                            "coordination": site.coordination,
                        },
                        n_slab=len(surface.slab),
                        binding_index=adsorbate.binding_index,
                        thresholds=tuple(thresholds),
                    )
                )
    return jobs


def _run_job(job: _Job, factory: CalculatorFactory) -> dict:
    """Relax one structure in a worker; failures come back as records, never as exceptions."""
    started = time.perf_counter()
    result = error = None
    try:
        calc = factory.cached()
        fmax, steps, optimizer = job.settings
        result = relax(
            job.atoms, calc, fmax=fmax, steps=steps, optimizer=optimizer, fix_bottom_layers=job.fix_bottom_layers
        )
    except Exception as exc:  # one bad structure must not stop a screening
        error = exc
    return _job_record(job, result, error, time.perf_counter() - started)


def _job_record(job: _Job, result: RelaxResult | None, error: BaseException | None, wall_s: float) -> dict:
    """The results.jsonl record of one finished job: the relaxed structure and flags, or the error."""
    record = {
        "key": job.key,
        "kind": job.kind,
        "fingerprint": job.fingerprint,
        "surface": job.surface,
        "adsorbate": job.adsorbate,
        "site": job.site,
    }
    try:
        if error is not None:
            raise error
        record.update(
            status="ok",
            energy=result.energy,
            converged=result.converged,
            steps=result.steps,
            fmax=result.fmax,
            symbols=result.atoms.get_chemical_symbols(),
            positions=result.atoms.positions.tolist(),
            cell=np.array(result.atoms.cell).tolist(),
            pbc=[bool(p) for p in result.atoms.pbc],
        )
        if job.kind == "ads":
            desorption, bond, surface_change = job.thresholds
            record.update(
                anomaly_flags(job.atoms, result.atoms, job.n_slab, job.binding_index, desorption, bond, surface_change)
            )
    except Exception as exc:  # one bad structure must not stop a screening
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["wall_s"] = wall_s
    return record


# ------------------------------------------------------------------------------------- results
def read_results(path: str | os.PathLike) -> dict[str, dict]:
    """Latest record per key from a JSON-lines results file (a torn last line is ignored)."""
    records: dict[str, dict] = {}
    path = Path(path)
    if not path.exists():
        return records
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # an interrupted write; the job simply runs again
                continue
            if not isinstance(record, dict) or "key" not in record:  # not a line this screening wrote
                warnings.warn(f"{path}: skipping a line that is not a result record: {line[:80]!r}", UserWarning,
                              stacklevel=2)
                continue
            previous = records.get(record["key"])
            if previous is None or previous.get("status") != "ok" or record.get("status") == "ok":
                records[record["key"]] = record
    return records


def _append_record(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _limit_torch_threads(threads: int) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def _unguarded_main_script_line() -> int | None:
    """The line of the running script that called us, if it is top-level code outside an
    ``if __name__ == "__main__":`` block (spawned workers re-import the script and would run it
    again); None when that cannot happen (interactive session, ``python -c``, a guarded call)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None:
        return None  # no script to re-import (a REPL, -c, or -m, whose module runs as __mp_main__ by name)
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            if node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
                return None
    return line


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either order)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    constants = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and constants == ["__main__"]


def _resolve_executor(executor, n_workers: int | None):
    """(executor, owned): wrap Dask clients, create the default process pool when none is given."""
    if executor is None:
        workers = n_workers if n_workers is not None else (os.cpu_count() or 1)
        line = _unguarded_main_script_line() if workers else None
        if line is not None:
            message = (
                f"screen_adsorption was called at line {line} of {sys.modules['__main__'].__file__} outside an "
                "`if __name__ == \"__main__\":` block: worker processes re-import the script, which would run "
                "the screening again in every worker. Running the jobs in this process instead; put the call "
                "under that block (or pass executor=...) to use worker processes"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            workers = 0
        if workers == 0:
            return InlineExecutor(), True
        threads = max(1, (os.cpu_count() or 1) // workers)
        # spawn, not fork: forking a process that has started torch/OpenMP threads can deadlock
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_limit_torch_threads,
            initargs=(threads,),
        )
        return pool, True
    if hasattr(executor, "get_executor"):  # distributed.Client: use its concurrent.futures facade
        return executor.get_executor(pure=False), False
    if not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor or a distributed.Client, got {executor!r}")
    return executor, False


def screen_adsorption(
    surfaces: Iterable,
    adsorbates: Iterable[str | Adsorbate] = ("O", "H"),
    calculator: CalculatorFactory | Callable | str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "adsorption",
    executor=None,
    n_workers: int | None = None,
    site_types: Sequence[str] = SITE_TYPES,
    max_sites_per_type: int | None = None,
    layers: int = 4,
    size: tuple[int, int] = (2, 2),
    vacuum: float = 7.5,
    fix_bottom_layers: int = 2,
    fmax: float = 0.05,
    steps: int = 300,
    optimizer: str | None = None,
    desorption_factor: float = 1.5,
    bond_factor: float = 1.25,
    surface_change_threshold: float = 0.5,
    max_jobs: int | None = None,
    progress: bool = True,
    mode: str = "executor",
    max_batch_atoms: int | None = None,
) -> ScreeningResult:
    """Screen adsorption energies of ``adsorbates`` on ``surfaces`` (see the module docstring).

    Args:
        surfaces: items accepted by ``as_surface``: ``"Cu(111)"``, ``("Pt", (1, 0, 0))``,
            ``(bulk_atoms, miller)``, slab ``Atoms`` or ``Surface``; built with ``layers``,
            ``size`` and ``vacuum``.
        adsorbates: built-in names (``ADSORBATES``) or ``Adsorbate`` objects.
        calculator: picklable factory: None (default model), ``"emt"``, a checkpoint path or
            registered name, or a callable returning a calculator. Not a calculator instance.
        output_dir: gets ``results.jsonl``, ``adsorption.csv``, ``adsorption.json``,
            ``adsorption.png`` and ``structures.extxyz`` (relaxed slab+adsorbate structures).
        executor: a ``concurrent.futures.Executor`` or a ``distributed.Client``; None makes a local
            process pool of ``n_workers`` processes (``n_workers=0``: run in this process).
        max_sites_per_type: keep at most this many symmetry-distinct sites of each kind.
        optimizer: ``"BFGS"``, ``"LBFGS"`` or ``"FIRE"`` (ASE's); None: BFGS, or LBFGS in batched mode.
        max_jobs: run at most this many of the jobs not yet done (the rest is left for a rerun).
        mode: ``"executor"`` (each job on the executor, one structure per model call) or
            ``"batched"`` (every job in this process with one calculator, many relaxations per
            model call through ``iter_relax_batch``; optimizer ``"LBFGS"`` or ``"FIRE"``; no
            executor). Batched is the mode for one GPU; the executor spreads jobs over processes
            or machines.
        max_batch_atoms: batched mode: most atoms per model call (None: the calculator's memory
            estimate decides).

    Returns a ``ScreeningResult``; ``complete`` is False while jobs are missing.
    """
    optimizer = _check_mode(mode, optimizer, executor, n_workers)
    factory = as_factory(calculator)
    surface_list = [as_surface(s, layers=layers, size=size, vacuum=vacuum) for s in surfaces]
    adsorbate_list = [get_adsorbate(a) for a in adsorbates]
    if not surface_list or not adsorbate_list:
        raise ValueError("need at least one surface and one adsorbate")
    jobs = build_jobs(
        surface_list,
        adsorbate_list,
        site_types,
        max_sites_per_type,
        fix_bottom_layers,
        fmax,
        steps,
        optimizer,
        (desorption_factor, bond_factor, surface_change_threshold),
    )
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} is a file, not a directory; choose another output_dir")
    output_dir.mkdir(parents=True, exist_ok=True)
    results_path = output_dir / "results.jsonl"
    pending = _jobs_not_done(jobs, results_path)
    n_done_before = len(jobs) - len(pending)
    if max_jobs is not None:
        pending = pending[: max(int(max_jobs), 0)]

    n_failed = 0
    if pending and mode == "batched":
        n_failed = _run_pending_batched(pending, factory, max_batch_atoms, results_path, progress)
    elif pending:
        n_failed = _run_pending(pending, factory, executor, n_workers, results_path, progress)
    result = write_tables(
        output_dir, jobs, adsorbate_list, n_done_before=n_done_before, n_run=len(pending), n_failed=n_failed,
        model=factory.label(),
    )
    _report_failures(n_failed, len(pending), results_path)
    return result


def _check_mode(mode: str, optimizer: str | None, executor, n_workers: int | None) -> str:
    """Validate the mode and its optimiser; returns the optimiser's name (upper case)."""
    if mode not in SCREENING_MODES:
        raise ValueError(f"mode must be one of {', '.join(SCREENING_MODES)}, got {mode!r}")
    optimizer = _DEFAULT_OPTIMIZER[mode] if optimizer is None else str(optimizer).upper()
    if mode == "batched":
        if optimizer not in _BATCHED_OPTIMIZERS:
            raise ValueError(
                f"mode='batched' relaxes with {' or '.join(_BATCHED_OPTIMIZERS)} (vectorised over the batch), "
                f"got optimizer={optimizer!r}"
            )
        if executor is not None or n_workers is not None:
            raise ValueError(
                "mode='batched' runs every job in this process with one calculator; executor and n_workers "
                "are for mode='executor'"
            )
    return optimizer


def _jobs_not_done(jobs: Sequence[_Job], results_path: Path) -> list[_Job]:
    """The jobs without an ``ok`` record in ``results_path``; refuses records of the same job made with
    another structure or settings (a resumed screening must not mix them)."""
    done = read_results(results_path)
    for job in jobs:
        old = done.get(job.key)
        if old is not None and old.get("status") == "ok" and old.get("fingerprint") != job.fingerprint:
            raise ValueError(
                f"{results_path} already holds {job.key} computed with a different structure or settings; "
                "use another output_dir (or delete the file) to start a new screening"
            )
    return [j for j in jobs if done.get(j.key, {}).get("status") != "ok"]


def _report_failures(n_failed: int, n_run: int, results_path: Path) -> None:
    """Log failed jobs; raise ``ScreeningError`` when every job run now failed (nothing to report)."""
    if n_failed:
        logger.warning("%d of %d job(s) run now failed; their errors are in %s", n_failed, n_run, results_path)
    if n_run and n_failed == n_run:
        first = next(r for r in read_results(results_path).values() if r.get("status") != "ok")
        raise ScreeningError(
            f"all {n_failed} job(s) of this screening failed (first: {first['key']}: {first.get('error')}); "
            f"every error is in {results_path}"
        )


def _end_torn_line(path: Path) -> None:
    """A run killed mid-write leaves a partial last line; end it so the next record starts on its own line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")


def _store(record: dict, results_path: Path, bar) -> int:
    """Append one finished job's record at once (resume reads it) and report it; returns 1 if it failed."""
    _append_record(results_path, record)
    if bar is not None:
        bar.update(1)
    if record["status"] == "ok":
        return 0
    print(f"job {record['key']} failed: {record.get('error')}")
    return 1


def _run_pending(pending, factory, executor, n_workers, results_path: Path, progress: bool) -> int:
    _end_torn_line(results_path)
    executor, owned = _resolve_executor(executor, n_workers)
    bar = optional_import("tqdm").tqdm(total=len(pending), unit="job", desc="adsorption") if progress else None
    n_failed = 0
    try:
        futures = {executor.submit(_run_job, job, factory): job for job in pending}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the worker itself died (e.g. out of memory)
                record = {
                    "key": job.key,
                    "kind": job.kind,
                    "fingerprint": job.fingerprint,
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            n_failed += _store(record, results_path, bar)
    finally:
        if bar is not None:
            bar.close()
        if owned:
            executor.shutdown(wait=True, cancel_futures=True)
    return n_failed


def _run_pending_batched(pending, factory, max_batch_atoms: int | None, results_path: Path, progress: bool) -> int:
    """Relax the pending jobs together with one calculator, appending each record as its structure
    finishes (an interruption loses only the structures in flight)."""
    from .batch_relax import iter_relax_batch

    _end_torn_line(results_path)
    calc = factory.cached()
    fmax, steps, optimizer = pending[0].settings  # one screening: the same settings for every job
    n_failed = 0
    tqdm = optional_import("tqdm").tqdm if progress else None
    bar = tqdm(total=len(pending), unit="job", desc="adsorption (batched)") if tqdm else None
    try:
        for item in iter_relax_batch(
            [job.atoms for job in pending],
            calc,
            fmax=fmax,
            steps=steps,
            optimizer=optimizer.lower(),
            max_batch_atoms=max_batch_atoms,
            fix_bottom_layers=[job.fix_bottom_layers for job in pending],
        ):
            record = _job_record(pending[item.index], item.result, item.error, item.wall_s)
            n_failed += _store(record, results_path, bar)
    finally:
        if bar is not None:
            bar.close()
    return n_failed


# -------------------------------------------------------------------------------------- tables
def write_tables(
    output_dir: str | os.PathLike,
    jobs: Sequence[_Job],
    adsorbates: Sequence[Adsorbate],
    n_done_before: int = 0,
    n_run: int = 0,
    n_failed: int = 0,
    plot: bool = True,
    model: str | None = None,
) -> ScreeningResult:
    """Adsorption energies, minima and flags from ``results.jsonl`` -> CSV, JSON, PNG, extxyz."""
    output_dir = Path(output_dir)
    records = read_results(output_dir / "results.jsonl")
    ok = {k: r for k, r in records.items() if r.get("status") == "ok"}
    references = {a.name: a.reference_formula for a in adsorbates}
    by_name = {a.name: a for a in adsorbates}
    gas = {k.split("|", 1)[1]: r["energy"] for k, r in ok.items() if r["kind"] == "gas"}
    slabs = {k.split("|", 1)[1]: r["energy"] for k, r in ok.items() if r["kind"] == "slab"}
    rows = [
        _adsorption_row(job, ok[job.key], by_name[job.adsorbate], slabs, gas)
        for job in jobs
        if job.kind == "ads" and job.key in ok
    ]
    minima = _minima(rows)
    missing = [j.key for j in jobs if j.key not in ok]
    files = {"results": str(output_dir / "results.jsonl")}
    files["csv"] = _write_csv(output_dir / "adsorption.csv", rows)
    summary = {
        "energy_definition": "E_ads = E(slab+adsorbate) - E(slab) - sum_k c_k E(gas molecule k), all relaxed",
        "references": references,
        "gas_energies_eV": gas,
        "slab_energies_eV": slabs,
        "rows": rows,
        "minima": minima,
        "complete": not missing,
        "missing_jobs": missing,
        "failed_jobs": sorted(k for k, r in records.items() if r.get("status") != "ok"),
    }
    (output_dir / "adsorption.json").write_text(json.dumps(summary, indent=2))
    files["json"] = str(output_dir / "adsorption.json")
    if plot and minima:
        from .plots import plot_adsorption_minima

        files["plot"] = plot_adsorption_minima(
            minima,
            output_dir / "adsorption.png",
            title="lowest adsorption energy per surface and adsorbate",
            references={name: references[name] for name in sorted({m["adsorbate"] for m in minima})},
            model=model,
        )
    structures = [_record_atoms(ok[row["key"]], row) for row in rows]
    if structures:
        from ase.io import write

        write(output_dir / "structures.extxyz", structures)
        files["structures"] = str(output_dir / "structures.extxyz")
    return ScreeningResult(
        rows=rows,
        minima=minima,
        gas_energies=gas,
        slab_energies=slabs,
        references=references,
        files=files,
        n_jobs=len(jobs),
        n_done_before=n_done_before,
        n_run=n_run,
        n_failed=n_failed,
        missing=missing,
    )


def _adsorption_row(job: _Job, record: dict, adsorbate: Adsorbate, slabs: dict, gas: dict) -> dict:
    """One table row: the relaxed slab + adsorbate ``record`` of ``job``, its adsorption energy (None while
    its slab or a gas reference is missing) and its AdsorbML-style flags."""
    slab_energy = slabs.get(job.surface)
    energy_ads = None
    if slab_energy is not None and all(gas.get(m) is not None for m in adsorbate.gas_molecules):
        reference = sum(c * gas[m] for m, c in adsorbate.reference)
        energy_ads = record["energy"] - slab_energy - reference
    anomaly = record["desorbed"] or record["dissociated"] or record["surface_changed"]
    return {
        "surface": job.surface,
        "adsorbate": job.adsorbate,
        "site": job.site["kind"],
        "site_index": job.site["index"],
        "coordination": job.site["coordination"],
        "site_x": job.site["position"][0],
        "site_y": job.site["position"][1],
        "adsorption_energy_eV": energy_ads,
        "energy_eV": record["energy"],
        "slab_energy_eV": slab_energy,
        "reference": adsorbate.reference_formula,
        "converged": record["converged"],
        "steps": record["steps"],
        "fmax": record["fmax"],
        "desorbed": record["desorbed"],
        "dissociated": record["dissociated"],
        "surface_changed": record["surface_changed"],
        "max_surface_displacement_A": record["max_surface_displacement_A"],
        "anomaly": bool(anomaly),
        "is_minimum": False,
        "key": job.key,
    }


def _minima(rows: list[dict]) -> list[dict]:
    minima = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["adsorption_energy_eV"] is not None:
            groups.setdefault((row["surface"], row["adsorbate"]), []).append(row)
    for (surface, adsorbate), group in sorted(groups.items()):
        clean = [r for r in group if not r["anomaly"] and r["converged"]]
        best = min(clean or group, key=lambda r: r["adsorption_energy_eV"])
        best["is_minimum"] = True
        minima.append(
            {
                "surface": surface,
                "adsorbate": adsorbate,
                "site": best["site"],
                "site_index": best["site_index"],
                "adsorption_energy": best["adsorption_energy_eV"],
                "all_sites_flagged": not clean,
                "n_sites": len(group),
                "key": best["key"],
            }
        )
    return minima


def _write_csv(path: Path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in TABLE_COLUMNS})
    return str(path)


def _record_atoms(record: dict, row: dict) -> Atoms:
    atoms = Atoms(symbols=record["symbols"], positions=record["positions"], cell=record["cell"], pbc=record["pbc"])
    atoms.info.update(
        {
            k: row[k]
            for k in ("surface", "adsorbate", "site", "site_index", "energy_eV", "adsorption_energy_eV", "anomaly")
            if row[k] is not None
        }
    )
    return atoms
