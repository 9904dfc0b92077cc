"""MD replicas stepped together: every MD step evaluates all replicas in one packed graph.

``run_md_batch`` runs N independent trajectories (different structures, seeds, temperatures or
ensembles) with exactly the integrators, files, restart and summaries of ``run_md``. Each replica
runs ``run_md`` in its own thread; its calculator is a stand-in that hands the structure to a shared
rendezvous and waits. When every running replica is waiting, the calling thread evaluates all of
them at once (``calc.calculate_batch``: one packed graph, or a few when memory asks for it) and
wakes them. The threads take turns: at any moment either one evaluation or the integrators' numpy
work runs, so a replica follows the same path as ``run_md`` alone (up to the float rounding of a
packed graph) and the throughput comes from the batched model calls.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ..errors import ReplicaError
from ._common import evaluate_isolating, optional_import
from .md import MDSummary, _validate, _validate_coupling, run_md

__all__ = ["ReplicaError", "run_md_batch"]

# run_md settings that may differ between replicas (one value for all, or a list with one per replica).
PER_REPLICA = (
    "ensemble",
    "temperature_K",
    "timestep_fs",
    "thermostat",
    "friction_per_fs",
    "taut_fs",
    "pressure_bar",
    "pdamp_fs",
    "seed",
)


class _Cancelled(BaseException):
    """Raised in a replica's thread when the run is interrupted (not an Exception: run_md must not catch it)."""


@dataclass
class _Request:
    atoms: Atoms
    result: dict | BaseException | None = None


class _Rendezvous:
    """Collects one evaluation request per running replica; the thread that called ``run_md_batch``
    answers them with one batched call (``serve``).

    Evaluating in that one thread, not in whichever replica asked last, keeps torch's intra-op
    thread pool (an OpenMP team per calling thread) in one place: teams started by many threads
    compete for the same cores.
    """

    def __init__(self, calc: Calculator, n_replicas: int) -> None:
        self.calc = calc
        self.running = n_replicas
        self.pending: list[_Request] = []
        self.cancelled = False
        self.condition = threading.Condition()

    def request(self, atoms: Atoms) -> dict:
        """Called from a replica thread; returns the results for ``atoms`` once all replicas asked."""
        request = _Request(atoms.copy())
        with self.condition:
            if self.cancelled:
                raise _Cancelled
            self.pending.append(request)
            self.condition.notify_all()
            while request.result is None and not self.cancelled:
                self.condition.wait()
            if request.result is None:
                raise _Cancelled
        if isinstance(request.result, BaseException):
            raise request.result
        return request.result

    def leave(self) -> None:
        """A replica finished (or failed): the others no longer wait for it."""
        with self.condition:
            self.running -= 1
            self.condition.notify_all()

    def cancel(self) -> None:
        with self.condition:
            self.cancelled = True
            self.condition.notify_all()

    def serve(self) -> None:
        """Evaluate each round of requests until every replica has left (runs in the calling thread)."""
        while True:
            with self.condition:
                while self.running and (not self.pending or len(self.pending) < self.running):
                    self.condition.wait(timeout=0.2)  # a timeout keeps Ctrl-C responsive in this thread
                if not self.running:
                    return
                batch, self.pending = self.pending, []
            # Every running replica is waiting for this batch: nothing else touches the structures now.
            results = _evaluate(self.calc, [r.atoms for r in batch])
            with self.condition:
                for request, result in zip(batch, results):
                    request.result = result
                self.condition.notify_all()


def _evaluate(calc: Calculator, structures: list[Atoms]) -> list[dict | BaseException]:
    """Results per structure; a structure that cannot be evaluated gets its exception, the others
    their results (a failing batch is split until the culprit is alone)."""
    return evaluate_isolating(lambda batch: _results(calc, batch), structures)


def _results(calc: Calculator, structures: list[Atoms]) -> list[dict]:
    """ASE-style results of the structures: one ``calculate_batch`` where the calculator has it."""
    if callable(getattr(calc, "calculate_batch", None)):
        conservative = getattr(calc, "conservative", True)
        periodic = [bool(np.all(atoms.pbc)) for atoms in structures]
        # As a single call computes it: the stress of 3D-periodic structures of conservative models.
        return calc.calculate_batch(structures, compute_stress=bool(conservative and any(periodic)))
    results = []
    for atoms in structures:
        atoms.calc = calc
        result = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if np.all(atoms.pbc) and "stress" in getattr(calc, "implemented_properties", ()):
            result["stress"] = atoms.get_stress()
        atoms.calc = None
        results.append(result)
    return results


class _ReplicaCalculator(Calculator):
    """The calculator each replica sees: its results come from the shared rendezvous."""

    implemented_properties = ("energy", "free_energy", "forces", "stress", "energies")

    def __init__(self, rendezvous: _Rendezvous, base: Calculator) -> None:
        super().__init__()
        self.rendezvous = rendezvous
        # run_md asks whether forces are conservative (NVE warning, NPT refusal): answer for the real model.
        self.conservative = getattr(base, "conservative", True)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        Calculator.calculate(self, atoms, properties, system_changes)
        self.results = dict(self.rendezvous.request(self.atoms))


def _per_replica(name: str, value, n: int) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries for {n} replicas; pass one value or one per replica")
        return list(value)
    return [value] * n


def _check_settings(structures: list[Atoms], calc: Calculator, steps: int, per_replica: dict, shared: dict) -> None:
    """run_md's own checks for every replica, here and now: a bad setting is one clear error before
    any thread starts, not N failed replicas."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(run_md).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    for index, atoms in enumerate(structures):
        value = {**defaults, **shared, **{name: values[index] for name, values in per_replica.items()}}
        try:
            _validate(
                str(value["ensemble"]).lower(), str(value["thermostat"]).lower(), atoms, calc, steps,
                value["interval"], value["timestep_fs"], value["temperature_K"],
            )
            _validate_coupling(value["friction_per_fs"], value["taut_fs"], value["pdamp_fs"], value["pressure_bar"])
        except ValueError as exc:
            raise ValueError(f"replica {index}: {exc}") from None


def _replica_paths(trajectory_dir: Path, n: int) -> list[Path]:
    width = max(3, len(str(n - 1)))
    return [trajectory_dir / f"replica_{index:0{width}d}.traj" for index in range(n)]


def run_md_batch(
    structures: Atoms | Sequence[Atoms],
    calc: Calculator,
    n_replicas: int | None = None,
    steps: int = 1000,
    trajectory_dir: str | os.PathLike = "md_replicas",
    progress: bool = True,
    callback: Callable[[int, Atoms, int], None] | None = None,
    **settings,
) -> list[MDSummary]:
    """Run MD replicas together, one packed model call per step; returns one ``MDSummary`` per replica.

    Args:
        structures: one ``Atoms`` (copied ``n_replicas`` times) or a list with one per replica.
        n_replicas: number of replicas when ``structures`` is a single structure.
        steps: MD steps of every replica (as ``run_md``, counting earlier pieces of a restarted run).
        trajectory_dir: replica ``i`` writes ``replica_00i.traj`` and its ``.csv``, ``.state.json``,
            ``.summary.json`` and ``.png`` there, as ``run_md`` does; a rerun continues them.
        callback: called as ``callback(replica_index, atoms, step)`` after every step.
        **settings: ``run_md`` arguments. ``ensemble``, ``temperature_K``, ``timestep_fs``,
            ``thermostat``, ``friction_per_fs``, ``taut_fs``, ``pressure_bar``, ``pdamp_fs`` and
            ``seed`` take one value for all or a list with one per replica; ``seed`` defaults to
            the replica index, so copies of one structure draw different velocities and noise.
            ``interval``, ``restart``, ``velocities`` and ``plot`` apply to all.

    A replica that fails (for example atoms pushed closer than the model allows) stops alone; the
    others run to the end, then ``ReplicaError`` names the failures. Ctrl-C stops every replica at
    its next step with its files consistent, so a rerun continues all of them.
    """
    if isinstance(structures, Atoms):
        if n_replicas is None or isinstance(n_replicas, bool) or int(n_replicas) < 1:
            raise ValueError(f"with one structure, n_replicas must be a positive integer, got {n_replicas!r}")
        structures = [structures] * int(n_replicas)
    else:
        structures = list(structures)
        if n_replicas is not None and n_replicas != len(structures):
            raise ValueError(f"n_replicas={n_replicas} but {len(structures)} structures were given")
        if not structures:
            raise ValueError("run_md_batch() needs at least one structure (got an empty list)")
        for index, atoms in enumerate(structures):
            if not isinstance(atoms, Atoms):
                raise TypeError(f"structures[{index}] is a {type(atoms).__name__}, not an ase.Atoms")
    n = len(structures)
    unknown = set(settings) - set(PER_REPLICA) - {"interval", "restart", "velocities", "plot"}
    if unknown:
        raise TypeError(f"run_md_batch() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    per_replica = {name: _per_replica(name, value, n) for name, value in settings.items() if name in PER_REPLICA}
    per_replica.setdefault("seed", list(range(n)))
    shared = {name: value for name, value in settings.items() if name not in PER_REPLICA}

    _check_settings(structures, calc, steps, per_replica, shared)

    directory = Path(trajectory_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = _replica_paths(directory, n)
    rendezvous = _Rendezvous(calc, n)
    summaries: list[MDSummary | None] = [None] * n
    errors: dict[int, BaseException] = {}
    bar = optional_import("tqdm").tqdm(total=n * steps, unit="step", desc=f"MD x{n}") if progress else None
    bar_lock = threading.Lock()

    def replica(index: int) -> None:
        def every_step(atoms: Atoms, step: int) -> None:
            if bar is not None:
                with bar_lock:
                    bar.update(1)
            if callback is not None:
                callback(index, atoms, step)

        try:
            kwargs = {name: values[index] for name, values in per_replica.items()}
            summaries[index] = run_md(
                structures[index],
                _ReplicaCalculator(rendezvous, calc),
                steps=steps,
                trajectory=paths[index],
                progress=False,
                callback=every_step,
                **kwargs,
                **shared,
            )
        except _Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported after all replicas finish
            errors[index] = exc
        finally:
            rendezvous.leave()

    threads = [threading.Thread(target=replica, args=(i,), name=f"md-replica-{i}", daemon=True) for i in range(n)]
    try:
        for thread in threads:
            thread.start()
        rendezvous.serve()
        for thread in threads:
            thread.join()
    except BaseException:
        rendezvous.cancel()
        for thread in threads:
            thread.join()
        raise
    finally:
        if bar is not None:
            bar.close()
    if errors:
        raise ReplicaError(errors, summaries) from errors[min(errors)]
    return summaries  # type: ignore[return-value]
