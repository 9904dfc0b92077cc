"""Slabs and adsorption sites: building surfaces, finding sites with pymatgen, placing adsorbates."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import find_mic

from ._common import optional_import, quiet_third_party
from .adsorbates import Adsorbate
from .relax import layer_indices

__all__ = ["SITE_TYPES", "Site", "Surface", "as_surface", "build_slab", "find_sites", "place_adsorbate"]

SITE_TYPES = ("ontop", "bridge", "hollow")
_SURFACE_NAME = re.compile(r"^([A-Z][a-z]?)\(?(\d)(\d)(\d)\)?$")


@dataclass(frozen=True)
class Surface:
    """A labelled slab, surface facing +z."""

    label: str
    slab: Atoms


@dataclass(frozen=True)
class Site:
    """An adsorption site on the top surface plane.

    ``kind`` comes from the number of top-layer atoms nearest to the site (1: ontop, 2: bridge,
    3 or more: hollow); ``coordination`` is that number.  Kinds are meant for flat facets: on
    stepped surfaces they count the outermost layer only.
    """

    kind: str
    index: int
    position: tuple[float, float, float]
    coordination: int


_ASE_BUILDERS = {
    ("fcc", (1, 1, 1)): "fcc111",
    ("fcc", (1, 0, 0)): "fcc100",
    ("fcc", (1, 1, 0)): "fcc110",
    ("bcc", (1, 0, 0)): "bcc100",
    ("bcc", (1, 1, 0)): "bcc110",
    ("bcc", (1, 1, 1)): "bcc111",
    ("hcp", (0, 0, 1)): "hcp0001",
}


def _bulk(material: Atoms | str, lattice_constant: float | None) -> Atoms:
    from ase.build import bulk

    if isinstance(material, Atoms):
        return material.copy()
    try:
        # Miller indices of cubic metals refer to the conventional cube.
        return bulk(material, a=lattice_constant, cubic=True)
    except (ValueError, RuntimeError):
        return bulk(material, a=lattice_constant)


def _reference_structure(symbol: str) -> str | None:
    from ase.data import atomic_numbers, reference_states

    state = reference_states[atomic_numbers[symbol]] if symbol in atomic_numbers else None
    return state.get("symmetry") if state else None


def build_slab(
    material: Atoms | str,
    miller: tuple[int, int, int] = (1, 1, 1),
    layers: int = 4,
    size: tuple[int, int] = (2, 2),
    vacuum: float = 7.5,
    lattice_constant: float | None = None,
) -> Atoms:
    """A slab of ``layers`` atomic layers, ``size`` surface cells in-plane, ``vacuum`` A on both sides, 3D periodic.

    ``material`` is a chemical symbol or a bulk ``Atoms``.  Low-index facets of elemental fcc/bcc/hcp
    metals given by symbol use ASE's dedicated builders (``fcc111`` ...: smallest surface cell);
    everything else goes through ``ase.build.surface`` (Miller indices relative to the bulk cell,
    the conventional cube for cubic metals given by symbol), trimmed from below to exactly
    ``layers`` atomic planes.
    """
    from ase import build

    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    miller = tuple(int(i) for i in miller)
    nx, ny = int(size[0]), int(size[1])
    if isinstance(material, str):
        builder = _ASE_BUILDERS.get((_reference_structure(material), miller))
        if builder is not None:
            kwargs = {} if lattice_constant is None else {"a": lattice_constant}
            slab = getattr(build, builder)(material, (nx, ny, layers), vacuum=vacuum, periodic=True, **kwargs)
            slab.set_tags(0)
            return slab
    slab = build.surface(_bulk(material, lattice_constant), miller, layers, vacuum=vacuum, periodic=True)
    planes = layer_indices(slab, tolerance=0.3)
    if len(planes) > layers:
        # ase.build.surface counts layers of the bulk cell, which can hold several atomic planes
        del slab[[i for plane in planes[: len(planes) - layers] for i in plane]]
        slab.center(vacuum=vacuum, axis=2)
    slab = slab.repeat((nx, ny, 1))
    slab.set_tags(0)
    slab.pbc = True
    return slab


def as_surface(item, layers: int = 4, size: tuple[int, int] = (2, 2), vacuum: float = 7.5) -> Surface:
    """A ``Surface`` from ``"Cu(111)"``, ``("Cu", (1, 1, 1))``, ``(bulk_atoms, (1, 0, 0))``, a slab
    ``Atoms`` (label from ``atoms.info["label"]`` or its formula) or a ``Surface``."""
    if isinstance(item, Surface):
        return item
    if isinstance(item, Atoms):
        label = str(item.info.get("label") or item.get_chemical_formula())
        return Surface(label, item.copy())
    if isinstance(item, str):
        match = _SURFACE_NAME.match(item.strip())
        if not match:
            raise ValueError(f"cannot read surface {item!r}; write it like 'Cu(111)' (element, three Miller digits)")
        symbol, *digits = match.groups()
        miller = tuple(int(d) for d in digits)
        return Surface(f"{symbol}({''.join(digits)})", build_slab(symbol, miller, layers, size, vacuum))
    if isinstance(item, tuple) and len(item) == 2:
        material, miller = item
        name = material if isinstance(material, str) else material.get_chemical_formula()
        label = f"{name}({''.join(str(int(i)) for i in miller)})"
        return Surface(label, build_slab(material, tuple(miller), layers, size, vacuum))
    raise TypeError(f"cannot make a surface from {item!r}")


def _top_layer(slab: Atoms) -> list[int]:
    return layer_indices(slab, tolerance=0.5)[-1]


def _lateral_distances(slab: Atoms, indices: list[int], point: np.ndarray) -> np.ndarray:
    vectors = slab.positions[indices] - point
    vectors[:, 2] = 0.0
    _, lengths = find_mic(vectors, slab.cell, pbc=[True, True, False])
    return lengths


def _images_within(slab: Atoms, indices: list[int], point: np.ndarray, radius: float) -> int:
    """How many in-plane periodic images of the atoms ``indices`` lie within ``radius`` of ``point``
    (lateral distance; the slab is periodic along its first two cell vectors)."""
    a, b = np.array(slab.cell[0], dtype=float), np.array(slab.cell[1], dtype=float)
    a[2] = b[2] = 0.0
    area = np.linalg.norm(np.cross(a, b))
    # enough images along each vector to cover the disc around any point of the cell
    reach = [int(np.ceil(radius / (area / np.linalg.norm(v)))) + 1 for v in (a, b)]
    shifts = np.array([i * a + j * b for i in range(-reach[0], reach[0] + 1) for j in range(-reach[1], reach[1] + 1)])
    vectors = slab.positions[indices] - point
    vectors[:, 2] = 0.0
    lengths = np.linalg.norm(vectors[:, None, :] + shifts[None, :, :], axis=2)
    return int((lengths <= radius).sum())


def find_sites(slab: Atoms, site_types: tuple[str, ...] = SITE_TYPES, symm_reduce: float = 1e-2) -> list[Site]:
    """Symmetry-distinct adsorption sites (pymatgen ``AdsorbateSiteFinder``) on the top surface.

    Sites are returned on the plane of the top layer; their kind is assigned from the geometry
    (see ``Site``), which also labels the four-fold hollow of (100) facets correctly.
    """
    unknown = set(site_types) - set(SITE_TYPES)
    if unknown:
        raise ValueError(f"unknown site types {sorted(unknown)}; choose from {SITE_TYPES}")
    adsorption = optional_import("pymatgen.analysis.adsorption")
    adaptor = optional_import("pymatgen.io.ase").AseAtomsAdaptor
    with quiet_third_party():
        finder = adsorption.AdsorbateSiteFinder(adaptor.get_structure(slab))
        found = finder.find_adsorption_sites(distance=0.0, symm_reduce=symm_reduce, positions=list(SITE_TYPES))
    top = _top_layer(slab)
    top_z = slab.positions[top, 2].max()
    sites: list[Site] = []
    counters: dict[str, int] = {}
    for position in found["all"]:
        point = np.array([position[0], position[1], top_z])
        nearest = _lateral_distances(slab, top, point).min()
        # Neighbours within 25 % of the nearest lateral distance count as equivalent (bcc(110)
        # three-fold hollows are not equidistant); the site sits on an atom below 0.3 A. Periodic
        # images count one by one: in a 1x1 cell the four atoms around a (100) hollow are one atom.
        neighbours = _images_within(slab, top, point, 1.25 * nearest + 0.05)
        coordination = 1 if nearest < 0.3 else max(neighbours, 2)
        kind = "ontop" if coordination == 1 else "bridge" if coordination == 2 else "hollow"
        if kind not in site_types:
            continue
        counters[kind] = counters.get(kind, -1) + 1
        sites.append(Site(kind, counters[kind], tuple(float(x) for x in point), coordination))
    return sites


def place_adsorbate(slab: Atoms, adsorbate: Adsorbate, site: Site, min_height: float = 0.7) -> Atoms:
    """Slab + adsorbate, binding atom above ``site`` at a covalent bond length from its nearest surface atom.

    The height h solves sqrt(d_lateral^2 + h^2) = r_cov(binding) + r_cov(surface atom) for the
    nearest top-layer atom (at least ``min_height``). Adsorbate atoms come last; the slab's
    constraints are kept; ``info["n_slab_atoms"]`` marks where the adsorbate starts.
    """
    top = _top_layer(slab)
    point = np.array(site.position, dtype=float)
    lateral = _lateral_distances(slab, top, point)
    nearest = top[int(np.argmin(lateral))]
    bond = covalent_radii[Atoms(adsorbate.binding_symbol).numbers[0]] + covalent_radii[slab.numbers[nearest]]
    height = max(float(np.sqrt(max(bond**2 - lateral.min() ** 2, 0.0))), min_height)
    molecule = adsorbate.atoms()
    molecule.translate(point + np.array([0.0, 0.0, height]))
    combined = slab.copy()
    combined += molecule
    combined.info["n_slab_atoms"] = len(slab)
    return combined
