"""Process-wide caches of constant tensors (index tables, grids, probe matrices)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["tensor_cache"]

T = TypeVar("T")


def tensor_cache(function: Callable[..., T]) -> Callable[..., T]:
    """``functools.cache`` for functions that build constant tensors, handing out copies.

    The tensors are built once, outside inference mode and without autograd, whatever the caller's
    mode: a tensor first created inside ``torch.inference_mode`` could never take part in a later
    autograd pass (conservative forces, training) that receives it from the cache.  Every call gets
    its own copy (these functions run when models are built, not per evaluation), so a caller that
    writes into a result, or into a model buffer made from one, changes nothing else.
    """

    @functools.cache
    def build(*args):
        with torch.inference_mode(False), torch.no_grad():
            return function(*args)

    @functools.wraps(function)
    def cached(*args):
        return _copy(build(*args))

    cached.cache_clear = build.cache_clear  # type: ignore[attr-defined]
    return cached


def _copy(value):
    """``value`` with every tensor in it (also inside tuples, lists and dataclasses) cloned."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _copy(getattr(value, f.name)) for f in dataclasses.fields(value)})
    return value
