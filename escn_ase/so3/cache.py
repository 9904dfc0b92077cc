"""Process-wide caches of constant tensors (index tables, grids, probe matrices)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["tensor_cache"]

T = TypeVar("T")


def tensor_cache(function: Callable[..., T]) -> Callable[..., T]:
    """``functools.lru_cache`` for functions that build constant tensors.

    The tensors are built outside inference mode and without autograd, whatever the caller's
    mode: a tensor first created inside ``torch.inference_mode`` could never take part in a later
    autograd pass (conservative forces, training) that receives it from the cache.
    """

    @functools.cache
    @functools.wraps(function)
    def cached(*args):
        with torch.inference_mode(False), torch.no_grad():
            return function(*args)

    return cached
