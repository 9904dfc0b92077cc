"""Built-in adsorbates and the gas-phase references of their adsorption energies.

Every adsorbate is stored with its binding atom at the origin and the rest of the molecule
pointing up (+z), so that placing it on a site means a translation only.  Its reference is a
combination of gas molecules with the same atoms:

    E_ads = E(slab + adsorbate) - E(slab) - sum_k c_k E(gas molecule k)

Gas molecules (rather than, e.g., OC20's H2O/CO-based atomic references) keep every energy within
what an EMT-trained model has seen; ``Adsorbate.reference_formula`` writes the scheme out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["ADSORBATES", "Adsorbate", "gas_molecule", "get_adsorbate"]


def gas_molecule(name: str, vacuum: float = 6.0) -> Atoms:
    """A gas molecule (``ase.build.molecule`` name) centred in a box, not periodic."""
    from ase.build import molecule

    try:
        atoms = molecule(name)
    except KeyError as exc:
        raise ValueError(f"unknown gas molecule {name!r} (use an ase.build.molecule name such as 'O2')") from exc
    atoms.center(vacuum=vacuum)
    atoms.pbc = False
    return atoms


@dataclass(frozen=True)
class Adsorbate:
    """An adsorbate: atoms (binding atom at the origin, molecule pointing +z) and its gas reference.

    ``reference`` maps gas molecule names (``ase.build.molecule`` names such as ``"O2"``) to
    coefficients ``c_k`` of ``E_ads = E(slab+ads) - E(slab) - sum_k c_k E(k)``.
    """

    name: str
    symbols: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]
    reference: tuple[tuple[str, float], ...]
    binding_index: int = 0

    def __post_init__(self) -> None:
        if len(self.symbols) != len(self.positions) or not self.symbols:
            raise ValueError(f"adsorbate {self.name!r}: need one position per symbol")
        if not 0 <= self.binding_index < len(self.symbols):
            raise ValueError(f"adsorbate {self.name!r}: binding_index {self.binding_index} out of range")
        self._check_reference_balance()

    def _check_reference_balance(self) -> None:
        counts: dict[str, float] = {}
        for symbol in self.symbols:
            counts[symbol] = counts.get(symbol, 0.0) + 1.0
        for molecule, coefficient in self.reference:
            for symbol in gas_molecule(molecule).get_chemical_symbols():
                counts[symbol] = counts.get(symbol, 0.0) - coefficient
        unbalanced = {s: c for s, c in counts.items() if abs(c) > 1e-9}
        if unbalanced:
            raise ValueError(
                f"adsorbate {self.name!r}: the gas reference {self.reference_formula} does not have the "
                f"adsorbate's atoms (left over: {unbalanced})"
            )

    @classmethod
    def from_atoms(cls, name: str, atoms: Atoms, reference: dict[str, float], binding_index: int = 0) -> Adsorbate:
        """A user adsorbate from a molecule; it is translated so that ``binding_index`` is at the origin
        (orient it so that it points up, +z, away from the surface)."""
        positions = atoms.positions - atoms.positions[binding_index]
        return cls(
            name,
            tuple(atoms.get_chemical_symbols()),
            tuple(tuple(float(x) for x in p) for p in positions),
            tuple(sorted(reference.items())),
            binding_index,
        )

    def atoms(self) -> Atoms:
        """The adsorbate as ``Atoms`` (binding atom at the origin)."""
        return Atoms(symbols=list(self.symbols), positions=np.array(self.positions, dtype=float))

    @property
    def binding_symbol(self) -> str:
        return self.symbols[self.binding_index]

    @property
    def gas_molecules(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.reference)

    @property
    def reference_formula(self) -> str:
        """The adsorption energy this reference defines, written out."""
        terms = []
        for molecule, coefficient in self.reference:
            sign = "-" if coefficient > 0 else "+"
            size = abs(coefficient)
            factor = "" if math.isclose(size, 1.0) else f"{size:g} "
            terms.append(f" {sign} {factor}E({molecule})")
        return f"E(slab+{self.name}) - E(slab)" + "".join(terms)


def _tetrahedral_tripod(bond: float) -> tuple[tuple[float, float, float], ...]:
    """Three atoms on a cone above the origin at the tetrahedral angle (a CH3 / NH3-like tripod)."""
    polar = math.radians(180.0 - 109.47)
    return tuple(
        (
            bond * math.sin(polar) * math.cos(math.radians(phi)),
            bond * math.sin(polar) * math.sin(math.radians(phi)),
            bond * math.cos(polar),
        )
        for phi in (0.0, 120.0, 240.0)
    )


def _bent_pair(bond: float, angle_deg: float) -> tuple[tuple[float, float, float], ...]:
    """Two atoms above the origin, symmetric in the xz plane, at ``angle_deg`` from each other."""
    half = math.radians(angle_deg / 2.0)
    return ((bond * math.sin(half), 0.0, bond * math.cos(half)), (-bond * math.sin(half), 0.0, bond * math.cos(half)))


_ORIGIN = (0.0, 0.0, 0.0)
ADSORBATES: dict[str, Adsorbate] = {
    a.name: a
    for a in (
        Adsorbate("O", ("O",), (_ORIGIN,), (("O2", 0.5),)),
        Adsorbate("H", ("H",), (_ORIGIN,), (("H2", 0.5),)),
        Adsorbate("N", ("N",), (_ORIGIN,), (("N2", 0.5),)),
        Adsorbate("C", ("C",), (_ORIGIN,), (("CH4", 1.0), ("H2", -2.0))),
        Adsorbate("OH", ("O", "H"), (_ORIGIN, (0.0, 0.0, 0.97)), (("H2", 0.5), ("O2", 0.5))),
        Adsorbate("CO", ("C", "O"), (_ORIGIN, (0.0, 0.0, 1.15)), (("CO", 1.0),)),
        Adsorbate("CH3", ("C", "H", "H", "H"), (_ORIGIN, *_tetrahedral_tripod(1.09)), (("CH4", 1.0), ("H2", -0.5))),
        Adsorbate("NH2", ("N", "H", "H"), (_ORIGIN, *_bent_pair(1.02, 105.0)), (("H2", -0.5), ("NH3", 1.0))),
        Adsorbate("H2O", ("O", "H", "H"), (_ORIGIN, *_bent_pair(0.96, 104.5)), (("H2O", 1.0),)),
    )
}


def get_adsorbate(adsorbate: str | Adsorbate) -> Adsorbate:
    """Look up a built-in adsorbate by name (an ``Adsorbate`` passes through)."""
    if isinstance(adsorbate, Adsorbate):
        return adsorbate
    if adsorbate not in ADSORBATES:
        raise ValueError(
            f"unknown adsorbate {adsorbate!r}; built-in: {', '.join(ADSORBATES)} "
            "(or pass Adsorbate.from_atoms(name, molecule, reference={...}))"
        )
    return ADSORBATES[adsorbate]
