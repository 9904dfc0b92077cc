"""``ESCNCalculator``: eSCN checkpoints behind ASE's ``Calculator`` interface."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .batch import GraphBatch, pack_structures, structure_graph
from .checkpoint import LoadedModel, load_checkpoint
from .device import DTYPES, resolve_device
from .errors import NeighborTieWarning, StructureTooLargeError
from .graph import Graph
from .memory import (
    available_memory,
    choose_edge_chunk_size,
    default_edge_chunk_size,
    estimate_memory,
    preferred_batch_edges,
)
from .registry import resolve_checkpoint
from .validation import validate_atoms

__all__ = ["ESCNCalculator", "torch_threads"]

logger = logging.getLogger("escn_ase")
_DIRECT_FORCE_NOTICE_GIVEN: set[str] = set()

def _check_settings(
    checkpoint, device, dtype, neighbor_ties, edge_chunk_size, memory_fraction, checkpoint_layers, threads
) -> None:
    """Refuse calculator settings that cannot work, naming the parameter and what it accepts.

    Takes the keys of ``ESCNCalculator.default_parameters`` (pass them as ``**parameters``)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if neighbor_ties not in ("reference", "keep_shell"):
        raise ValueError(f"neighbor_ties must be 'reference' or 'keep_shell', got {neighbor_ties!r}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path, a registered model name or None, got {type(checkpoint).__name__}")
    if checkpoint is not None and not str(checkpoint).strip():
        raise ValueError("checkpoint is an empty string: pass a path, a registered model name, or None (default model)")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {device!r}")
    if edge_chunk_size is not None and (
        isinstance(edge_chunk_size, bool) or not isinstance(edge_chunk_size, (int, np.integer)) or edge_chunk_size < 1
    ):
        raise ValueError(f"edge_chunk_size must be a positive integer or None (automatic), got {edge_chunk_size!r}")
    if (
        isinstance(memory_fraction, bool)
        or not isinstance(memory_fraction, (int, float, np.floating))
        or not 0.0 < float(memory_fraction) <= 1.0
    ):
        raise ValueError(f"memory_fraction must be a number in (0, 1], got {memory_fraction!r}")
    if checkpoint_layers not in (None, True, False):
        raise ValueError(f"checkpoint_layers must be None (automatic), True or False, got {checkpoint_layers!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None (torch's setting), got {threads!r}")


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op CPU threads in torch (None: unchanged), then restore them."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Spellings other ASE calculators use for the same settings (fairchem's OCPCalculator, MACE's MACECalculator).
_ALIASES = {
    "checkpoint_path": "checkpoint",
    "model": "checkpoint",
    "model_path": "checkpoint",
    "default_dtype": "dtype",
}
# Keywords of ase's Calculator base class that are passed on to it.
_ASE_KEYWORDS = ("restart", "ignore_bad_restart_file", "label", "atoms", "directory")
# Settings fixed when the model is loaded: changing one means building a new calculator.
_LOAD_TIME_PARAMETERS = ("checkpoint", "device", "dtype")


def _unknown_keyword_error(name: str) -> TypeError:
    accepted = sorted([*ESCNCalculator.default_parameters, *_ALIASES, "cpu", *_ASE_KEYWORDS])
    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return TypeError(
        f"ESCNCalculator() got an unexpected keyword argument {name!r}{hint} (accepted: {', '.join(accepted)})"
    )


def _merge_aliases(values: dict, given: dict) -> None:
    """Fold ``checkpoint_path``/``model``/``model_path``/``default_dtype``/``cpu`` into ``values``, refusing
    two spellings of one setting with different values."""
    for alias, name in _ALIASES.items():
        if alias not in given:
            continue
        value = given.pop(alias)
        if values[name] is not None and values[name] != value:
            raise ValueError(f"{alias}={value!r} and {name}={values[name]!r} are two values for one setting; pass one")
        values[name] = value
    if "cpu" in given:
        cpu = given.pop("cpu")
        if not isinstance(cpu, bool):
            raise TypeError(f"cpu must be True or False, got {cpu!r}")
        if cpu:
            if values["device"] not in (None, "auto", "cpu") and torch.device(values["device"]).type != "cpu":
                raise ValueError(f"cpu=True and device={values['device']!r} contradict each other; pass one")
            values["device"] = "cpu"


class ESCNCalculator(Calculator):
    """ASE calculator for eSCN models.

    Args:
        checkpoint: path of a checkpoint (fairchem-core 1.x / OCP eSCN file, or escn_ase's own
            format), a registered model name (downloaded into the cache on first use, as
            ``escn-ase download NAME`` does), or None for the default model shipped in ``models/``.
            Also accepted as ``checkpoint_path``, ``model`` or ``model_path`` (fairchem's and MACE's
            spellings).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
            ``cpu=True`` means ``device="cpu"``.
        dtype: ``"float32"`` (default) or ``"float64"`` (also accepted as ``default_dtype``).
        neighbor_ties: what to do when ``max_neighbors`` truncation cuts through a shell of
            equidistant neighbours (ideal lattices): ``"reference"`` keeps exactly
            ``max_neighbors`` as fairchem does (the kept subset then depends on floating-point
            order) and warns once; ``"keep_shell"`` keeps the whole tied shell (well defined).
        edge_chunk_size: process edges in chunks of this size (None: chosen from free memory).
        memory_fraction: share of the device's free memory an evaluation may plan to use.
        checkpoint_layers: conservative models only: recompute each layer during the backward
            pass instead of keeping its tensors (about 1/3 more time; autograd then keeps one
            layer's tensors instead of all).  None (default): only for structures whose graph
            would not fit in memory otherwise.
        threads: CPU threads torch may use during this calculator's evaluations (None: torch's
            setting is left alone).  On a shared or busy host, or with several workers per
            machine, 1-2 threads per process avoid oversubscribing the cores.

    Unknown keyword arguments raise a ``TypeError`` naming them.  ``calc.parameters`` (and
    ``calc.todict()``, which ASE writes into trajectories and databases) record the resolved
    checkpoint file, device, dtype and the other settings.

    Results: ``energy``, ``free_energy`` (eV), ``forces`` (eV/A); conservative models add
    ``stress`` (eV/A^3, Voigt, ASE sign convention; periodic cells only) and ``energies``
    (per atom).  Direct-force models (the published OC20 checkpoints) have no stress.
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    default_parameters = {
        "checkpoint": None,
        "device": "auto",
        "dtype": "float32",
        "neighbor_ties": "reference",
        "edge_chunk_size": None,
        "memory_fraction": 0.8,
        "checkpoint_layers": None,
        "threads": None,
    }

    def __init__(self, checkpoint: str | os.PathLike | None = None, **kwargs) -> None:
        given = dict(kwargs)
        ase_keywords = {key: given.pop(key) for key in _ASE_KEYWORDS if key in given}
        values = {name: given.pop(name, None) for name in self.default_parameters if name != "checkpoint"}
        values["checkpoint"] = checkpoint
        _merge_aliases(values, given)
        if given:
            raise _unknown_keyword_error(next(iter(given)))
        for name, default in self.default_parameters.items():
            if values[name] is None:
                values[name] = default
        super().__init__(**ase_keywords)
        _check_settings(**values)
        self.device = resolve_device(values["device"])
        self.dtype = DTYPES[values["dtype"]]
        self.checkpoint_path = resolve_checkpoint(values["checkpoint"])
        self.loaded: LoadedModel = load_checkpoint(self.checkpoint_path)
        self.model = self.loaded.model.to(device=self.device, dtype=self.dtype)
        self.model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        # What produced the numbers, as ASE records it (todict(), trajectories, ase.db).
        self.parameters.update(values, checkpoint=str(Path(self.checkpoint_path).resolve()), device=str(self.device))
        self.conservative = self.config.forces == "conservative"
        if self.conservative:
            self.implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]
        elif self.checkpoint_path not in _DIRECT_FORCE_NOTICE_GIVEN:
            _DIRECT_FORCE_NOTICE_GIVEN.add(self.checkpoint_path)
            logger.warning(
                "%s predicts forces directly with an output head: they are not the gradient of the "
                "energy, so there is no stress and NVE dynamics will not conserve energy",
                self.checkpoint_path,
            )
        self._tie_warning_given = False
        # One evaluation at a time: ASE keeps the last structure and its results on the calculator, so two
        # threads sharing one calculator would otherwise read each other's results.
        self._lock = threading.RLock()

    def todict(self, skip_default: bool = True) -> dict:
        """The settings, as ASE stores them; the checkpoint, device and dtype are always included."""
        values = super().todict(skip_default)
        for name in _LOAD_TIME_PARAMETERS:
            values[name] = self.parameters[name]
        return values

    def set(self, **kwargs) -> dict:
        """ASE's ``set``: the model's checkpoint, device and dtype are fixed once loaded."""
        for name in _LOAD_TIME_PARAMETERS:
            if name in kwargs and kwargs[name] != self.parameters.get(name):
                raise ValueError(f"{name} cannot be changed on a loaded calculator; create a new ESCNCalculator")
        if kwargs:
            unknown = set(kwargs) - set(self.default_parameters) - {"parameters"}
            if unknown:
                raise _unknown_keyword_error(sorted(unknown)[0])
        new = {key: value for key, value in kwargs.items() if key != "parameters"}
        _check_settings(**{**self.parameters, **new})  # before anything is changed
        return super().set(**kwargs)

    # The evaluation settings are read from ``parameters``, the one place ``set`` changes them.
    neighbor_ties = property(lambda self: self.parameters["neighbor_ties"])
    edge_chunk_size = property(lambda self: self.parameters["edge_chunk_size"])
    memory_fraction = property(lambda self: self.parameters["memory_fraction"])
    checkpoint_layers = property(lambda self: self.parameters["checkpoint_layers"])
    threads = property(lambda self: self.parameters["threads"])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lock", None)  # locks do not pickle (process pools, Dask)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ introspection
    @property
    def config(self):
        """The model's ``ESCNConfig`` (architecture, cutoff, max_neighbors ...)."""
        return self.loaded.config

    @property
    def elements(self) -> tuple[int, ...]:
        """Atomic numbers the model covers."""
        return self.loaded.elements

    def describe(self) -> dict:
        """Plain-dict summary of the loaded model and settings."""
        return {
            "checkpoint": self.checkpoint_path,
            "format": self.loaded.source,
            "config": self.config.to_dict(),
            "forces": self.config.forces,
            "elements": list(self.elements),
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "neighbor_ties": self.neighbor_ties,
            "n_parameters": sum(p.numel() for p in self.model.parameters()),
        }

    # ------------------------------------------------------------------ ASE interface
    def get_property(self, name, atoms=None, allow_calculation=True):
        if name == "stress" and not self.conservative:
            raise PropertyNotImplementedError(
                f"stress is not available: {self.checkpoint_path} predicts forces directly (published "
                "OC20 eSCN style), so the energy's strain derivative is not what the model was trained on; "
                "use a conservative checkpoint (e.g. the default model) for stress and cell relaxations"
            )
        if name == "stress":
            structure = atoms if atoms is not None else self.atoms
            if structure is not None and not bool(np.all(structure.pbc)):
                raise PropertyNotImplementedError(
                    "stress is defined for 3D-periodic cells only: this structure has "
                    f"pbc={tuple(bool(p) for p in structure.pbc)} "
                    "(a slab or molecule has no volume to divide by); use a fully periodic cell (pbc=True) for "
                    "stress and cell relaxations"
                )
        with self._lock:  # the cache check, the calculation and the read of its result belong together
            return super().get_property(name, atoms, allow_calculation)

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        with self._lock:
            Calculator.calculate(self, atoms, properties, system_changes)
            compute_stress = self.conservative and bool(np.all(self.atoms.pbc))
            self.results = self.evaluate([self.atoms], compute_stress=compute_stress)[0]

    # ------------------------------------------------------------------ evaluation
    def _graphs(self, structures: Sequence[Atoms]) -> list[Graph]:
        """Validate the structures and build their neighbour graphs (warning once about ties)."""
        for atoms in structures:
            validate_atoms(atoms, self.elements, self.config.cutoff)
        keep_shell = self.neighbor_ties == "keep_shell"
        graphs = [structure_graph(atoms, self.config, keep_shell) for atoms in structures]
        n_tied = sum(graph.n_tied_centres for graph in graphs)
        if n_tied and self.neighbor_ties == "reference" and not self._tie_warning_given:
            self._tie_warning_given = True
            warnings.warn(
                NeighborTieWarning(
                    f"{n_tied} atom(s) have more than max_neighbors={self.config.max_neighbors} "
                    "neighbours and the cut falls inside a shell of equidistant neighbours (within 1e-3 A). "
                    "Which of them are kept is decided by floating-point order, as in fairchem, so results "
                    "can change with atom order, translation or choice of cell. Pass "
                    "ESCNCalculator(..., neighbor_ties='keep_shell') to keep whole shells (well defined, "
                    "but no longer the reference's graph), or rattle ideal structures slightly."
                ),
                stacklevel=4,
            )
        return graphs

    def prepare(self, structures: Sequence[Atoms]) -> GraphBatch:
        """Validate the structures and pack their graphs into one batch."""
        return pack_structures(structures, self.config, self.device, self.dtype, graphs=self._graphs(structures))

    def _memory_estimate(self, n_atoms: int, n_edges: int):
        return estimate_memory(self.config, n_atoms, n_edges, self.dtype, keeps_graph=self.conservative)

    def _memory_budget(self) -> int:
        return int(available_memory(self.device) * self.memory_fraction)

    def _plan(self, batch: GraphBatch) -> tuple[int | None, bool]:
        """Edge chunk size and whether to checkpoint layers, so that the evaluation fits in memory.

        Raises ``StructureTooLargeError`` before anything large is allocated when it cannot fit.
        """
        estimate = self._memory_estimate(batch.n_atoms, batch.n_edges)
        budget = self._memory_budget()
        chunk = self.edge_chunk_size
        if chunk is None:
            fitting = choose_edge_chunk_size(estimate, budget)
            # Small chunks help the CPU allocator; a GPU prefers few large kernels.
            preferred = default_edge_chunk_size(self.config, self.dtype) if self.device.type == "cpu" else None
            chunk = fitting if preferred is None else (preferred if fitting is None else min(fitting, preferred))
        checkpoint = bool(self.checkpoint_layers) and self.conservative
        all_layers = estimate.total(chunk)
        if self.checkpoint_layers is None and self.conservative and all_layers > budget:
            checkpoint = True
            logger.info(
                "%d atoms: the autograd graph of all layers (about %.1f GiB) would not fit in %.1f GiB; "
                "recomputing each layer in the backward pass instead",
                batch.n_atoms,
                all_layers / 2**30,
                budget / 2**30,
            )
        needed = estimate.total(chunk, checkpoint_layers=checkpoint)
        if needed > budget:
            # Memory grows linearly with the structure at fixed density: scale to what fits.
            fitting_atoms = int(batch.n_atoms * budget / needed)
            if self.conservative:
                reason = "forces by autograd" + (", even recomputing layers in the backward pass" if checkpoint else "")
            else:
                reason = "even with edge chunking"
            raise StructureTooLargeError(
                f"evaluating {batch.n_atoms} atoms with {batch.n_edges} edges needs about "
                f"{needed / 2**30:.1f} GiB but {budget / 2**30:.1f} GiB are available on {self.device} "
                f"({reason}); about {fitting_atoms} atoms at this density would fit. Use a smaller structure, "
                "split a batch, or a device with more memory (memory_fraction raises the share of free memory "
                "that may be used)"
            )
        return chunk, checkpoint

    def preferred_batch_edges(self) -> int | None:
        """Most edges worth packing into one graph of several structures on this device (None: memory
        alone decides); see ``escn_ase.memory.preferred_batch_edges``."""
        return preferred_batch_edges(self.config, self.dtype, self.device)

    def _fits(self, n_atoms: int, n_edges: int, budget: int) -> bool:
        """Whether a batch of this size fits ``budget`` (edge chunking allowed; checkpointed layers only
        when asked for: a batch that would need them is better split)."""
        estimate = self._memory_estimate(n_atoms, n_edges)
        if estimate.keeps_graph:
            return estimate.total(checkpoint_layers=bool(self.checkpoint_layers)) <= budget
        return estimate.total(choose_edge_chunk_size(estimate, budget)) <= budget

    def _run(self, batch: GraphBatch, compute_stress: bool) -> list[dict]:
        chunk, checkpoint = self._plan(batch)
        with torch_threads(self.threads):
            if self.conservative:
                out = self.model.predict(
                    **batch.model_inputs(),
                    cells=batch.cells,
                    compute_stress=compute_stress,
                    edge_chunk_size=chunk,
                    checkpoint_layers=checkpoint,
                )
            else:
                with torch.inference_mode():
                    out = self.model(**batch.model_inputs(), edge_chunk_size=chunk)
        energy = out["energy"].double().cpu().numpy()
        forces = out["forces"].double().cpu().numpy()
        node_energy = out["node_energy"].double().cpu().numpy()
        stress = out["stress"].double().cpu().numpy() if "stress" in out else None
        system_index = batch.system_index.cpu().numpy()
        results = []
        for index in range(batch.n_systems):
            mask = system_index == index
            result = {
                "energy": float(energy[index]),
                "free_energy": float(energy[index]),
                "forces": forces[mask].copy(),
            }
            if self.conservative:
                result["energies"] = node_energy[mask].copy()
                if stress is not None and batch.periodic_3d[index]:
                    result["stress"] = full_3x3_to_voigt_6_stress(stress[index])
            results.append(result)
        return results

    def evaluate(self, structures: Sequence[Atoms], compute_stress: bool = False) -> list[dict]:
        """Energies and forces (and stress) of several structures packed into ONE graph.

        Returns one ASE-style results dict (numpy values) per structure.
        """
        structures = list(structures)
        if not structures:
            raise ValueError("evaluate() needs at least one structure (got an empty list)")
        with self._lock:
            return self._run(self.prepare(structures), compute_stress)

    def calculate_batch(
        self, structures: Sequence[Atoms], max_atoms_per_batch: int = 4096, compute_stress: bool | None = None
    ) -> list[dict]:
        """Evaluate many structures, packed into as few graphs as fit in memory.

        Structures are grouped in order; a group closes when it would exceed ``max_atoms_per_batch``
        atoms or the device memory budget. Stress is computed for 3D-periodic structures of
        conservative models unless ``compute_stress=False``. Returns one results dict per structure,
        with the same keys as ``calc.results`` after a single ``calculate``.
        """
        structures = list(structures)
        if compute_stress is None:
            compute_stress = self.conservative
        graphs = self._graphs(structures)
        budget = self._memory_budget()
        results: list[dict] = []
        group: list[int] = []
        atoms_in_group = edges_in_group = 0

        def flush() -> None:
            if group:
                batch = pack_structures(
                    [structures[i] for i in group],
                    self.config,
                    self.device,
                    self.dtype,
                    graphs=[graphs[i] for i in group],
                )
                results.extend(self._run(batch, compute_stress))
                group.clear()

        for index, (atoms, graph) in enumerate(zip(structures, graphs)):
            atoms_after, edges_after = atoms_in_group + len(atoms), edges_in_group + graph.n_edges
            fits = self._fits(atoms_after, edges_after, budget)
            if group and (atoms_after > max_atoms_per_batch or not fits):
                flush()
                atoms_after, edges_after = len(atoms), graph.n_edges
            group.append(index)
            atoms_in_group, edges_in_group = atoms_after, edges_after
        flush()
        return results
