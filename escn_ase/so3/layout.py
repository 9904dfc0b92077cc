"""Coefficient layouts of real spherical-harmonic tensors.

Conventions (shared by the whole package):

* A node tensor holds ``n_coeffs = (lmax + 1)**2`` real spherical-harmonic coefficients per
  channel in **e3nn order** ("l-major"): ``l = 0..lmax`` and, inside each ``l``, ``m = -l..l``.
  The flat index of ``(l, m)`` is ``l*l + l + m``.
* In the edge frame only orders ``|m| <= mmax`` are kept.  They are stored **m-major**:
  first all ``m = 0`` coefficients (``l = 0..lmax``), then for ``m = 1..mmax`` the ``+m``
  coefficients (``l = m..lmax``) followed by the ``-m`` coefficients (``l = m..lmax``).
  This is the layout in which the SO(2) convolution acts on contiguous slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .cache import tensor_cache

__all__ = ["lm_index", "CoefficientLayout", "coefficient_layout"]


def lm_index(l: int, m: int) -> int:
    """Flat l-major index of the real spherical harmonic of degree ``l`` and order ``m``."""
    if abs(m) > l:
        raise ValueError(f"|m| must not exceed l (got l={l}, m={m})")
    return l * l + l + m


@dataclass(frozen=True)
class CoefficientLayout:
    """Index tables for one ``(lmax, mmax)`` pair.

    Attributes:
        lmax, mmax: degree and order cut-offs.
        n_coeffs: ``(lmax + 1)**2``, the size of the full l-major layout.
        mmajor: ``(n_reduced,)`` long tensor; ``mmajor[k]`` is the l-major index of the k-th
            coefficient of the reduced m-major layout.
        m_sizes: ``m_sizes[m]`` = number of degrees ``l`` carrying order ``m`` (``lmax - m + 1``).
            In the m-major layout the block of order ``m > 0`` has ``2 * m_sizes[m]`` rows.
    """

    lmax: int
    mmax: int
    n_coeffs: int
    mmajor: torch.Tensor
    m_sizes: tuple[int, ...]

    @property
    def n_reduced(self) -> int:
        return int(self.mmajor.numel())


@tensor_cache
def coefficient_layout(lmax: int, mmax: int) -> CoefficientLayout:
    """Cached index tables for ``lmax`` and ``0 <= mmax <= lmax``."""
    if lmax < 0 or not 0 <= mmax <= lmax:
        raise ValueError(f"need 0 <= mmax <= lmax, got lmax={lmax}, mmax={mmax}")
    order = [lm_index(l, 0) for l in range(lmax + 1)]
    m_sizes = [lmax + 1]
    for m in range(1, mmax + 1):
        order += [lm_index(l, m) for l in range(m, lmax + 1)]
        order += [lm_index(l, -m) for l in range(m, lmax + 1)]
        m_sizes.append(lmax - m + 1)
    return CoefficientLayout(
        lmax=lmax,
        mmax=mmax,
        n_coeffs=(lmax + 1) ** 2,
        mmajor=torch.tensor(order, dtype=torch.long),
        m_sizes=tuple(m_sizes),
    )
