"""Random starting structures for the EMT data set: bulk cells, slabs and adsorbates on slabs.

Every builder takes a ``numpy.random.Generator`` and uses nothing else that is random, so that a seeded
generator always gives the same structure. All structures returned here are 3D periodic (``pbc=True``);
slabs carry vacuum along z so that EMT stress stays defined.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc100, fcc110, fcc111, fcc211

__all__ = [
    "ADSORBATES",
    "ADSORBATE_ELEMENTS",
    "FACETS",
    "METALS",
    "SITE_KINDS",
    "alloy_lattice_constant",
    "apply_random_strain",
    "bottom_layer_indices",
    "emt_lattice_constant",
    "GAS_MOLECULES",
    "ORGANIC_MOLECULES",
    "gas_molecule_in_box",
    "place_random_adsorbate",
    "random_bulk",
    "random_composition",
    "random_slab",
    "rattle",
    "scale_to_zero_pressure",
]

METALS: tuple[str, ...] = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")
ADSORBATE_ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O")

# Adsorbate geometries in Angstrom: the binding atom (index 0) sits at the origin and the rest of the
# molecule points away from the surface (+z). Bond lengths are typical gas-phase values; EMT does not
# reproduce real chemistry for these elements, so the exact numbers only need to be sensible starting points.
_SIN_TETRA, _COS_TETRA = np.sin(np.radians(70.5)), np.cos(np.radians(70.5))
ADSORBATES: dict[str, tuple[tuple[str, tuple[float, float, float]], ...]] = {
    "O": (("O", (0.0, 0.0, 0.0)),),
    "H": (("H", (0.0, 0.0, 0.0)),),
    "C": (("C", (0.0, 0.0, 0.0)),),
    "N": (("N", (0.0, 0.0, 0.0)),),
    "OH": (("O", (0.0, 0.0, 0.0)), ("H", (0.0, 0.0, 0.97))),
    "CO": (("C", (0.0, 0.0, 0.0)), ("O", (0.0, 0.0, 1.15))),
    "CH": (("C", (0.0, 0.0, 0.0)), ("H", (0.0, 0.0, 1.09))),
    "CH2": (("C", (0.0, 0.0, 0.0)), ("H", (0.89, 0.0, 0.63)), ("H", (-0.89, 0.0, 0.63))),
    "CH3": (("C", (0.0, 0.0, 0.0)),)
    + tuple(
        ("H", (1.09 * _SIN_TETRA * np.cos(phi), 1.09 * _SIN_TETRA * np.sin(phi), 1.09 * _COS_TETRA))
        for phi in np.radians([0.0, 120.0, 240.0])
    ),
    "NH": (("N", (0.0, 0.0, 0.0)), ("H", (0.0, 0.0, 1.03))),
    "NH2": (("N", (0.0, 0.0, 0.0)), ("H", (0.82, 0.0, 0.61)), ("H", (-0.82, 0.0, 0.61))),
    "H2O": (("O", (0.0, 0.0, 0.0)), ("H", (0.76, 0.0, 0.59)), ("H", (-0.76, 0.0, 0.59))),
    "N2": (("N", (0.0, 0.0, 0.0)), ("N", (0.0, 0.0, 1.10))),
}

FACETS: tuple[str, ...] = ("fcc111", "fcc100", "fcc110", "fcc211")
SITE_KINDS: tuple[str, ...] = ("ontop", "bridge", "hollow")

# ASE's named sites for each facet, grouped by the kind of site (fcc211 has none: placed geometrically).
_NAMED_SITES = {
    "fcc111": {"ontop": ("ontop",), "bridge": ("bridge",), "hollow": ("fcc", "hcp")},
    "fcc100": {"ontop": ("ontop",), "bridge": ("bridge",), "hollow": ("hollow",)},
    "fcc110": {"ontop": ("ontop",), "bridge": ("longbridge", "shortbridge"), "hollow": ("hollow",)},
}
# Height of the binding atom above the topmost surface atom, by site kind: (hydrogen, heavier atoms).
_SITE_HEIGHT = {"ontop": (1.55, 1.85), "bridge": (1.15, 1.55), "hollow": (0.95, 1.25)}
# Closest approach allowed between an adsorbate atom and the slab when placing it (hydrogen, heavier).
_MIN_CONTACT = (1.1, 1.5)


# Gas-phase molecules (ase.build.molecule names): the references of adsorption energies need them.
GAS_MOLECULES: tuple[str, ...] = ("O2", "H2", "N2", "CO", "H2O", "CH4", "NH3", "OH", "NO", "CO2")

# Small organic molecules and radicals of ASE's g2 set (names are formulas; H, C, N, O only, at most 10 atoms):
# the reactants, intermediates and products of C1-C3 surface chemistry, met in the gas phase.
ORGANIC_MOLECULES: tuple[str, ...] = (
    "CH3CHO", "HCOOH", "H2CO", "CH3OH", "CH3CH2OH", "CH3OCH3", "CH3COOH", "HCOOCH3", "CH3COCH3", "H2CCO",
    "C2H6", "C2H4", "C2H2", "CH3CN", "HCN", "H3CNH2", "CH3CONH2", "CH3NO2", "CH3CH2NH2", "OCHCHO",
    "H2CCHCN", "NCCN", "C4H4O", "CH2OCH2", "C4H4NH", "CH3CO", "CH3O", "CH3CH2O", "HCO", "C2H5", "C2H3",
    "CH3",
)


def gas_molecule_in_box(name: str, rng: np.random.Generator, box: float = 12.0) -> Atoms:
    """A gas molecule, randomly oriented, in a periodic cubic box far larger than any cutoff used here."""
    from ase.build import molecule

    atoms = molecule(name)
    atoms.rotate(float(rng.uniform(0.0, 360.0)), rng.normal(size=3) + 1e-9, center="COP")
    atoms.cell = np.eye(3) * box
    atoms.center()
    atoms.pbc = True
    return atoms


@cache
def emt_lattice_constant(metal: str) -> float:
    """EMT's own equilibrium fcc lattice constant of ``metal`` (zero hydrostatic stress), in Angstrom.

    Straining around EMT's equilibrium rather than the experimental lattice constant keeps the strain
    distribution centred where the labels come from.
    """
    from ase.calculators.emt import EMT
    from scipy.optimize import brentq

    if metal not in METALS:
        raise ValueError(f"unknown metal {metal!r}; choose from {', '.join(METALS)}")
    reference = bulk(metal, "fcc").cell.lengths()[0] * np.sqrt(2.0)

    def pressure_like(lattice: float) -> float:
        atoms = bulk(metal, "fcc", a=lattice)
        atoms.calc = EMT()
        return float(atoms.get_stress()[:3].sum())

    return float(brentq(pressure_like, 0.9 * reference, 1.1 * reference, xtol=1e-10))


def alloy_lattice_constant(symbols: list[str] | tuple[str, ...]) -> float:
    """Vegard's-law lattice constant: the mean of the EMT lattice constants of the metal atoms."""
    metals = [symbol for symbol in symbols if symbol in METALS]
    if not metals:
        raise ValueError("alloy_lattice_constant needs at least one metal atom")
    return float(np.mean([emt_lattice_constant(symbol) for symbol in metals]))


def random_composition(rng: np.random.Generator, n_atoms: int, alloy_probability: float) -> list[str]:
    """Chemical symbols for ``n_atoms`` fcc sites: one metal, or a random 2-3 metal alloy."""
    if n_atoms < 2 or rng.random() >= alloy_probability:
        return [str(rng.choice(METALS))] * n_atoms
    n_species = int(rng.integers(2, min(3, n_atoms) + 1))
    species = [str(s) for s in rng.choice(METALS, size=n_species, replace=False)]
    # Every species appears at least once; the remaining sites get random species with random weights.
    weights = rng.dirichlet(np.ones(n_species))
    symbols = species + [str(s) for s in rng.choice(species, size=n_atoms - n_species, p=weights)]
    return [str(s) for s in rng.permutation(symbols)]


# Supercells of the primitive (1 atom) and conventional cubic (4 atoms) fcc cells: 1 to 32 atoms.
_BULK_CELLS: tuple[tuple[bool, tuple[int, int, int]], ...] = (
    (False, (1, 1, 1)),
    (False, (2, 1, 1)),
    (False, (2, 2, 1)),
    (False, (2, 2, 2)),
    (False, (3, 2, 2)),
    (False, (3, 3, 2)),
    (False, (3, 3, 3)),
    (True, (1, 1, 1)),
    (True, (2, 1, 1)),
    (True, (2, 2, 1)),
    (True, (2, 2, 2)),
)


def random_bulk(
    rng: np.random.Generator, min_atoms: int = 1, max_atoms: int = 32, alloy_probability: float = 0.5
) -> Atoms:
    """A perfect fcc cell (pure metal or random substitutional alloy) at its Vegard EMT lattice constant."""
    choices = [
        (cubic, repeat)
        for cubic, repeat in _BULK_CELLS
        if min_atoms <= (4 if cubic else 1) * int(np.prod(repeat)) <= max_atoms
    ]
    if not choices:
        raise ValueError(f"no fcc cell has between {min_atoms} and {max_atoms} atoms")
    cubic, repeat = choices[int(rng.integers(len(choices)))]
    atoms = bulk("Cu", "fcc", a=1.0, cubic=cubic).repeat(repeat)
    symbols = random_composition(rng, len(atoms), alloy_probability)
    atoms.set_chemical_symbols(symbols)
    atoms.set_cell(atoms.cell * alloy_lattice_constant(symbols), scale_atoms=True)
    atoms.pbc = True
    return atoms


def random_slab(
    rng: np.random.Generator,
    facet: str | None = None,
    vacuum_range: tuple[float, float] = (6.0, 8.0),
    alloy_probability: float = 0.3,
    lattice_strain: float = 0.02,
) -> Atoms:
    """A clean fcc slab: 2x2 or 3x3 surface cell, 3-4 layers, random metal or alloy, ``pbc=True``.

    ``vacuum_range`` is the vacuum added on each side of the slab (ASE's ``vacuum`` argument), so the
    gap between periodic images along z is twice that. The slab keeps ASE's ``adsorbate_info`` (needed
    by :func:`place_random_adsorbate`); callers drop it before writing.
    """
    facet = facet if facet is not None else str(rng.choice(FACETS))
    if facet not in FACETS:
        raise ValueError(f"unknown facet {facet!r}; choose from {', '.join(FACETS)}")
    width = int(rng.integers(2, 4))
    layers = int(rng.integers(3, 5))
    vacuum = float(rng.uniform(*vacuum_range))
    if facet == "fcc211":
        # fcc211 needs a multiple of 3 atoms along x (one step); width sets the step length instead.
        size = (3, width, layers)
    else:
        size = (width, width, layers)
    builder = {"fcc111": fcc111, "fcc100": fcc100, "fcc110": fcc110, "fcc211": fcc211}[facet]
    n_sites = int(np.prod(size))
    symbols = random_composition(rng, n_sites, alloy_probability)
    lattice = alloy_lattice_constant(symbols) * (1.0 + float(rng.uniform(-lattice_strain, lattice_strain)))
    slab = builder("Cu", size=size, a=lattice, vacuum=vacuum)
    slab.set_chemical_symbols(symbols)
    slab.pbc = True
    slab.info["facet"] = facet
    return slab


def _molecule(name: str, rng: np.random.Generator, max_tilt_degrees: float = 15.0) -> Atoms:
    """Adsorbate ``name`` with a random rotation about z and a small random tilt, binding atom at origin."""
    if name not in ADSORBATES:
        raise ValueError(f"unknown adsorbate {name!r}; choose from {', '.join(ADSORBATES)}")
    symbols = [symbol for symbol, _ in ADSORBATES[name]]
    positions = np.array([position for _, position in ADSORBATES[name]], dtype=float)
    molecule = Atoms(symbols, positions=positions)
    molecule.rotate(float(rng.uniform(0.0, max_tilt_degrees)), "x", center=(0, 0, 0))
    molecule.rotate(float(rng.uniform(0.0, 360.0)), "z", center=(0, 0, 0))
    return molecule


def _step_site(slab: Atoms, site_kind: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Geometric (x, y) of a site at the step edge of an fcc211 slab and the z of its highest atom."""
    positions = slab.positions
    top = positions[:, 2].max()
    step_atoms = np.flatnonzero(positions[:, 2] > top - 0.3)
    anchor = int(rng.choice(step_atoms))
    site_atoms = [positions[anchor]]
    if site_kind in ("bridge", "hollow"):
        others = [int(i) for i in step_atoms if i != anchor]
        if others:
            vectors = slab.get_distances(anchor, others, mic=True, vector=True)
            nearest = vectors[int(np.argmin(np.linalg.norm(vectors, axis=1)))]
        else:  # a one-atom step row: its periodic image along y is the bridge partner
            nearest = slab.cell[1]
        site_atoms.append(positions[anchor] + nearest)
    if site_kind == "hollow":
        # The third corner: the closest atom of the row just below the step edge.
        lower = [int(i) for i in np.flatnonzero((positions[:, 2] <= top - 0.3) & (positions[:, 2] > top - 2.0))]
        vectors = slab.get_distances(anchor, lower, mic=True, vector=True)
        site_atoms.append(positions[anchor] + vectors[int(np.argmin(np.linalg.norm(vectors, axis=1)))])
    corner = np.array(site_atoms)
    return corner[:, :2].mean(axis=0), float(corner[:, 2].max())


def _lift_clear_of_slab(slab: Atoms, n_slab: int) -> None:
    """Raise the adsorbate (atoms from ``n_slab`` on) until no atom is closer to the slab than allowed."""
    adsorbate = np.arange(n_slab, len(slab))
    for _ in range(40):
        distances = slab.get_all_distances(mic=True)[np.ix_(adsorbate, np.arange(n_slab))]
        is_hydrogen = slab.numbers[adsorbate] == 1
        allowed = np.where(is_hydrogen, _MIN_CONTACT[0], _MIN_CONTACT[1])
        if np.all(distances.min(axis=1) >= allowed):
            return
        slab.positions[adsorbate, 2] += 0.1


def place_random_adsorbate(
    slab: Atoms, rng: np.random.Generator, adsorbate: str | None = None, site_kind: str | None = None
) -> Atoms:
    """A copy of ``slab`` with one adsorbate on a random top / bridge / hollow site.

    Facets with ASE site names (fcc111, fcc100, fcc110) use ``ase.build.add_adsorbate`` at a random
    surface cell; fcc211 sites are found geometrically at the step edge. The height is a typical
    binding height for the site with +-0.15 A of noise, and the adsorbate is lifted if it would overlap
    the slab. ``info`` gets ``adsorbate`` and ``site`` (the ASE site name, or ``step_<kind>``).
    """
    adsorbate = adsorbate if adsorbate is not None else str(rng.choice(list(ADSORBATES)))
    site_kind = site_kind if site_kind is not None else str(rng.choice(SITE_KINDS))
    if site_kind not in SITE_KINDS:
        raise ValueError(f"unknown site kind {site_kind!r}; choose from {', '.join(SITE_KINDS)}")
    molecule = _molecule(adsorbate, rng)
    binding_is_hydrogen = molecule.numbers[0] == 1
    height = _SITE_HEIGHT[site_kind][0 if binding_is_hydrogen else 1] + float(rng.uniform(-0.15, 0.15))
    result = slab.copy()
    n_slab = len(result)
    facet = slab.info.get("facet")
    if facet in _NAMED_SITES:
        site = str(rng.choice(_NAMED_SITES[facet][site_kind]))
        width = round(np.linalg.norm(slab.cell[0]) / np.linalg.norm(slab.info["adsorbate_info"]["cell"][0]))
        offset = (int(rng.integers(width)), int(rng.integers(width)))
        add_adsorbate(result, molecule, height, position=site, offset=offset)
    else:
        site = f"step_{site_kind}"
        xy, top = _step_site(slab, site_kind, rng)
        molecule.translate([xy[0], xy[1], top + height])
        result += molecule
    result.wrap()
    _lift_clear_of_slab(result, n_slab)
    result.info["adsorbate"] = adsorbate
    result.info["site"] = site
    return result


def apply_random_strain(
    atoms: Atoms, rng: np.random.Generator, isotropic: float, shear: float, in_plane_only: bool = False
) -> None:
    """Strain the cell in place by an isotropic part U(-isotropic, isotropic) and a random symmetric part.

    With ``in_plane_only`` (slabs) only the xx, yy and xy components are strained, so the vacuum gap stays.
    """
    strain = np.eye(3) * float(rng.uniform(-isotropic, isotropic))
    random_part = rng.uniform(-shear, shear, size=(3, 3))
    strain += 0.5 * (random_part + random_part.T)
    if in_plane_only:
        strain[2, :] = 0.0
        strain[:, 2] = 0.0
    atoms.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)


def scale_to_zero_pressure(atoms: Atoms) -> None:
    """Scale the cell isotropically (in place) to where EMT's hydrostatic stress vanishes, within +-10 %.

    Random alloys are not at their Vegard lattice constant in EMT; without this the "unstrained" alloy
    cells would carry tens of GPa. Left unchanged if no zero lies within +-10 %.
    """
    from ase.calculators.emt import EMT
    from scipy.optimize import brentq

    reference_cell = atoms.cell.copy()
    probe = atoms.copy()
    probe.calc = EMT()

    def pressure_like(scale: float) -> float:
        probe.set_cell(reference_cell * scale, scale_atoms=True)
        return float(probe.get_stress()[:3].sum())

    if pressure_like(0.9) * pressure_like(1.1) < 0:
        atoms.set_cell(reference_cell * brentq(pressure_like, 0.9, 1.1, xtol=1e-8), scale_atoms=True)


def rattle(atoms: Atoms, rng: np.random.Generator, stdev: float) -> None:
    """Add Gaussian noise of standard deviation ``stdev`` (Angstrom) to every position, in place."""
    atoms.positions += rng.normal(0.0, stdev, size=(len(atoms), 3))


def bottom_layer_indices(atoms: Atoms, n_slab: int, tolerance: float = 0.5) -> np.ndarray:
    """Indices of the lowest atomic layer among the first ``n_slab`` atoms (the slab, not the adsorbate)."""
    z = atoms.positions[:n_slab, 2]
    return np.flatnonzero(z < z.min() + tolerance)
