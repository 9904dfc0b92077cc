"""Helpers shared by the workflows: optional imports, calculator factories, force-type checks."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase.calculators.calculator import Calculator

__all__ = [
    "CalculatorFactory",
    "default_calculator",
    "evaluate_isolating",
    "is_direct_force",
    "optional_import",
    "quiet_third_party",
]

_EXTRA_OF = {
    "pymatgen": "workflows",
    "phonopy": "workflows",
    "matplotlib": "workflows",
    "tqdm": "workflows",
    "distributed": "distributed",
    "dask": "distributed",
}


def optional_import(module: str) -> Any:
    """Import ``module`` or fail with the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, "all")
        raise ImportError(
            f"{module} is needed for this workflow but is not installed; install it with "
            f"`pip install escn-ase[{extra}]`"
        ) from exc


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence known third-party notices that are not about our use: spglib's error-handling
    deprecation (raised through pymatgen/phonopy symmetry calls) and phonopy 4's reminder that its
    default primitive matrix changed (we ask for 'auto' on purpose).  Everything else stays."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Set OLD_ERROR_HANDLING", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="primitive_matrix defaulted to 'auto'", category=UserWarning)
        yield


def evaluate_isolating(evaluate: Callable[[list], list], structures: Sequence) -> list:
    """``evaluate(structures)`` (one result per structure), or, when it raises, the results of its halves:
    a failing batch is split until the structure that fails is alone and gets its exception as its
    result, so one bad structure does not stop the others (a batch admitted on a memory estimate that
    no longer fits is split the same way)."""
    structures = list(structures)
    try:
        return list(evaluate(structures))
    except Exception as exc:  # noqa: BLE001 - isolated below
        if len(structures) == 1:
            return [exc]
    half = len(structures) // 2  # split outside the handler: the culprit's error must not carry this one
    return evaluate_isolating(evaluate, structures[:half]) + evaluate_isolating(evaluate, structures[half:])


def is_direct_force(calc: Calculator) -> bool:
    """True when the calculator's forces are not the gradient of its energy (direct force head)."""
    return getattr(calc, "conservative", True) is False


def default_calculator(**kwargs) -> Calculator:
    """``ESCNCalculator(**kwargs)`` with the default model; a missing model file is a ``CheckpointError``
    that says how to get it (there is no fallback to another potential)."""
    from ..calculator import ESCNCalculator

    return ESCNCalculator(**kwargs)


_WORKER_CACHE = threading.local()


@dataclass(frozen=True)
class CalculatorFactory:
    """A picklable recipe for a calculator, rebuilt inside each worker (calculators are not pickled).

    ``spec`` is one of: ``None`` (the default model), ``"emt"`` (ASE's EMT), a
    checkpoint path or registered model name (``ESCNCalculator(spec, **kwargs)``), or a picklable
    callable returning a calculator (e.g. a module-level function or ``functools.partial``).
    """

    spec: str | os.PathLike | Callable[[], Calculator] | None = None
    kwargs: dict = field(default_factory=dict)

    def __call__(self) -> Calculator:
        if callable(self.spec):
            return self.spec(**self.kwargs)
        if self.spec is None:
            return default_calculator(**self.kwargs)
        if str(self.spec).lower() == "emt":
            from ase.calculators.emt import EMT

            return EMT(**self.kwargs)
        from ..calculator import ESCNCalculator

        return ESCNCalculator(str(Path(self.spec)) if isinstance(self.spec, os.PathLike) else self.spec, **self.kwargs)

    def label(self) -> str:
        """A short name of the model this recipe builds, for plots and tables."""
        if callable(self.spec):
            return getattr(self.spec, "__name__", type(self.spec).__name__)
        if self.spec is None:
            from ..registry import DEFAULT_MODEL_NAME

            return f"{DEFAULT_MODEL_NAME} (default eSCN model)"
        if str(self.spec).lower() == "emt":
            return "EMT (ASE)"
        return Path(str(self.spec)).stem

    def cached(self) -> Calculator:
        """One calculator per factory and thread (models load once per worker; ASE calculators keep
        per-structure state, so threads must not share one)."""
        cache = getattr(_WORKER_CACHE, "calculators", None)
        if cache is None:
            cache = _WORKER_CACHE.calculators = {}
        key = repr(self)
        if key not in cache:
            cache[key] = self()
        return cache[key]


def as_factory(calc: CalculatorFactory | Callable[[], Calculator] | str | os.PathLike | None) -> CalculatorFactory:
    """Wrap whatever describes a calculator into a ``CalculatorFactory``; a calculator *instance* is refused
    because it would have to be pickled to reach the workers."""
    if isinstance(calc, CalculatorFactory):
        return calc
    if isinstance(calc, Calculator):
        raise TypeError(
            "pass a calculator factory, not a calculator instance: workers build their own calculator. "
            "Use a checkpoint path, 'emt', None (default model) or a picklable function returning a calculator"
        )
    return CalculatorFactory(calc)
