"""Reproducible EMT training data: metals (Al Cu Ag Au Ni Pd Pt) with H, C, N, O adsorbates.

Families (``atoms.info['family']``):

- ``bulk``: fcc cells of 1-32 atoms, pure or random 2-3 metal alloys, random isotropic + shear strain, rattled.
- ``md_bulk``: Langevin MD frames (every ``md_frame_interval_fs``) of a bulk cell at 300/600/1000 K.
- ``slab``: clean fcc111/100/110/211 slabs, 2x2 or 3x3 surface cells, 3-4 layers, in-plane strain, rattled.
- ``adsorbate``: one of O H C N OH CO CH CH2 CH3 NH NH2 H2O N2 on a top/bridge/hollow site of a slab,
  brought near EMT's minimum by a few FIRE steps, then rattled.
- ``md_adsorbate``: MD frames of slab + adsorbate (bottom layer fixed during MD).
- ``relax_adsorbate``: frames sampled along a FIRE relaxation of a rattled slab + adsorbate.
- ``gas``: the gas molecules of adsorption-energy references, EMT-relaxed, bond-stretched and rattled.
- ``site_relax``: relaxations of one H, O, N or C atom from a named site of a clean (111) slab (40 % of
  them from the top site, where relaxations hold the adsorbate on a ridge of the energy), started from
  -0.55 to +0.35 A around the typical height (close contact included), frames along the path and
  rattled copies of the minimum: the protocol of adsorption-energy screening.
- ``molecule``: Langevin MD frames of a small organic molecule (ASE's g2 set, H C N O) in a box, started
  from ASE's geometry or from EMT's minimum at 300/600/1000 K: the intramolecular vibrations and
  rearrangements that MD of molecules visits.

All structures are 3D periodic (slabs have vacuum along z but ``pbc=True``) and have at most 40 atoms.

Groups and splits: every structure has ``info['group']``, an id shared by a base structure and everything
derived from it (its rattled/strained copies, MD frames or relaxation frames). Train/val/test are split by
group, per family, with a seeded shuffle, so no test structure is a near-copy of a training one.

Storage convention: ``train.extxyz``, ``val.extxyz``, ``test.extxyz`` are standard extended XYZ files written by
``ase.io.write`` from Atoms carrying a ``SinglePointCalculator``: per-frame ``energy`` (eV) and ``stress``
(eV/A^3, ASE sign: positive = the cell wants to shrink), per-atom ``forces`` (eV/A), all from
``ase.calculators.emt.EMT``. Other per-frame keys: ``family``, ``group`` and recipe details (``facet``,
``adsorbate``, ``site``, ``temperature_K``, ``time_fs``, ``relax_step``). :func:`load_dataset` returns the labels
as ``atoms.info['energy']`` (float), ``atoms.arrays['forces']`` (n_atoms, 3) and ``atoms.info['stress']``
(Voigt 6: xx yy zz yz xz xy) with no calculator attached. ``manifest.json`` records the seed, size, recipe,
counts per family and split, element counts, dropped structures, file checksums, versions and timing.

Reproducibility: every group draws from its own generator seeded by (seed, family, group index), so the same
seed, size and software versions give byte-identical extxyz files (the manifest differs only in ``timing``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from . import structures as st
from .labels import label_with_emt, rejection_reason
from .trajectories import md_frames, relaxation_frames, relaxed_copy

__all__ = [
    "FAMILIES",
    "GENERATOR_VERSION",
    "SIZE_PRESETS",
    "SPLITS",
    "Recipe",
    "assign_splits",
    "build_group",
    "generate_dataset",
    "load_dataset",
    "make_recipe",
]

GENERATOR_VERSION = "1.5"
# The position of a family in this tuple is part of every group's random seed: append, never reorder.
FAMILIES: tuple[str, ...] = (
    "bulk", "md_bulk", "slab", "adsorbate", "md_adsorbate", "relax_adsorbate", "gas", "site_relax", "molecule"
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_SALT = 7919  # distinguishes the split shuffle's random stream from the structure streams


@dataclasses.dataclass
class Recipe:
    """Everything that decides what gets generated (besides the seed). Lengths in A, times in fs."""

    groups: dict[str, int]
    bulk_copies: int = 4
    slab_copies: int = 4
    adsorbate_copies: int = 3
    bulk_alloy_probability: float = 0.5
    slab_alloy_probability: float = 0.3
    bulk_isotropic_strain: float = 0.03
    bulk_shear_strain: float = 0.02
    slab_in_plane_strain: float = 0.02
    rattle_range: tuple[float, float] = (0.01, 0.08)
    vacuum_range: tuple[float, float] = (6.0, 8.0)
    md_temperatures_k: tuple[float, ...] = (300.0, 600.0, 1000.0)
    md_duration_fs: float = 300.0
    md_frame_interval_fs: float = 20.0
    md_bulk_timestep_fs: float = 2.0
    md_adsorbate_timestep_fs: float = 1.0  # hydrogen needs the shorter step
    relax_frames: int = 8
    relax_max_steps: int = 100
    relax_fmax: float = 0.05
    relax_start_rattle: float = 0.12
    # FIRE steps that bring a freshly placed adsorbate near EMT's minimum before the ``adsorbate`` family's
    # rattled copies and the ``md_adsorbate`` MD start (raw placements give forces of 10-20 eV/A in EMT).
    adsorbate_prerelax_steps: int = 30
    # Gas molecules (the adsorption-energy references): EMT-relaxed, then bond-stretched and rattled copies.
    gas_copies: int = 6
    gas_bond_strain: float = 0.08
    # Single-atom adsorbates relaxed from a named (111) site: path frames plus rattled copies of the minimum.
    site_relax_frames: int = 6
    site_relax_minimum_copies: int = 2
    site_relax_rattle: float = 0.03
    site_relax_top_probability: float = 0.4
    # H, O, N, C: H most (top sites hold it on a ridge), O next (hollow and bridge O binds close to the metal).
    site_relax_adsorbate_probabilities: tuple[float, float, float, float] = (0.35, 0.25, 0.2, 0.2)
    # Offset of the starting height from the site's typical one (A): down to close contact, so that the
    # relaxations (and the model) see the repulsion an adsorbate placed too low meets.
    site_relax_height_offset: tuple[float, float] = (-0.55, 0.35)
    # Organic molecules: MD frames from ASE's geometry (which is not EMT's minimum, so the molecule starts
    # strained and heats up, as in MD started from a textbook structure) or from EMT's minimum.
    molecule_md_duration_fs: float = 300.0
    molecule_frame_interval_fs: float = 20.0
    molecule_timestep_fs: float = 0.5
    molecule_relaxed_start_probability: float = 0.5

    def structures_per_group(self, family: str) -> int:
        """Structures a group of ``family`` yields before filtering."""
        md = int(self.md_duration_fs // self.md_frame_interval_fs) + 1
        return {
            "bulk": self.bulk_copies,
            "md_bulk": md,
            "slab": self.slab_copies,
            "adsorbate": self.adsorbate_copies,
            "md_adsorbate": md,
            "relax_adsorbate": self.relax_frames,  # at most: a relaxation that converges early gives fewer
            "gas": self.gas_copies,
            "site_relax": self.site_relax_frames + self.site_relax_minimum_copies,  # at most
            "molecule": int(self.molecule_md_duration_fs // self.molecule_frame_interval_fs) + 1,
        }[family]

    def expected_structures(self) -> int:
        return sum(self.groups[family] * self.structures_per_group(family) for family in FAMILIES)


_SMALL_GROUPS = {
    "bulk": 120,
    "md_bulk": 20,
    "slab": 60,
    "adsorbate": 150,
    "md_adsorbate": 25,
    "relax_adsorbate": 40,
    "gas": 60,
    "site_relax": 250,
    "molecule": 96,
}
SIZE_PRESETS: dict[str, Recipe] = {
    # Tens of structures in a few seconds, every family in every split: for tests.
    "tiny": Recipe(
        groups={"bulk": 4, "md_bulk": 3, "slab": 3, "adsorbate": 4, "md_adsorbate": 3, "relax_adsorbate": 3, "gas": 3,
                "site_relax": 3, "molecule": 3},
        bulk_copies=2,
        slab_copies=2,
        adsorbate_copies=2,
        md_duration_fs=60.0,
        relax_frames=3,
        relax_max_steps=15,
        molecule_md_duration_fs=60.0,
    ),
    # About 6000 structures: the default model's data.
    "small": Recipe(groups=dict(_SMALL_GROUPS)),
    "medium": Recipe(groups={family: 3 * count for family, count in _SMALL_GROUPS.items()}),
}


def make_recipe(size: str | int = "small", groups: dict[str, int] | None = None) -> Recipe:
    """The recipe for a named size, or for about ``size`` structures (the ``small`` mix scaled).

    ``groups`` overrides the number of groups of individual families, e.g. ``{"md_bulk": 0}``.
    """
    if isinstance(size, bool) or not isinstance(size, (str, int)):
        raise TypeError(f"size must be one of {', '.join(SIZE_PRESETS)} or a positive integer, got {size!r}")
    if isinstance(size, str):
        if size not in SIZE_PRESETS:
            raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZE_PRESETS)} or give a number")
        recipe = dataclasses.replace(SIZE_PRESETS[size], groups=dict(SIZE_PRESETS[size].groups))
    else:
        if size <= 0:
            raise ValueError(f"size must be a positive number of structures, got {size}")
        small = SIZE_PRESETS["small"]
        scale = size / small.expected_structures()
        counts = {family: max(1, round(count * scale)) for family, count in small.groups.items()}
        recipe = dataclasses.replace(small, groups=counts)
    for family, count in (groups or {}).items():
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r} in groups; choose from {', '.join(FAMILIES)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"groups[{family!r}] must be a non-negative integer, got {count!r}")
        recipe.groups[family] = count
    if sum(recipe.groups.values()) == 0:
        raise ValueError("the recipe has no groups at all: nothing to generate")
    return recipe


def _group_rng(seed: int, family: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, FAMILIES.index(family), index])


def _rattle_stdev(recipe: Recipe, rng: np.random.Generator) -> float:
    return float(rng.uniform(*recipe.rattle_range))


def _random_bulk(recipe: Recipe, rng: np.random.Generator, min_atoms: int) -> Atoms:
    base = st.random_bulk(rng, min_atoms, 32, alloy_probability=recipe.bulk_alloy_probability)
    if len(set(base.numbers)) > 1:
        st.scale_to_zero_pressure(base)
    return base


def _slab_with_adsorbate(recipe: Recipe, rng: np.random.Generator) -> tuple[Atoms, int]:
    slab = st.random_slab(
        rng,
        vacuum_range=recipe.vacuum_range,
        alloy_probability=recipe.slab_alloy_probability,
        lattice_strain=recipe.slab_in_plane_strain,
    )
    return st.place_random_adsorbate(slab, rng), len(slab)


SITE_RELAX_ADSORBATES: tuple[str, ...] = ("H", "O", "N", "C")


def _site_relaxation(recipe: Recipe, rng: np.random.Generator) -> list[Atoms]:
    """A (111) slab (3x3 or 2x2, 3-4 layers) with H/O/N/C on a named site, relaxed with the bottom
    layer fixed: frames along the path and rattled copies of the relaxed structure."""
    slab = st.random_slab(
        rng,
        facet="fcc111",
        vacuum_range=recipe.vacuum_range,
        alloy_probability=recipe.slab_alloy_probability,
        lattice_strain=recipe.slab_in_plane_strain,
    )
    adsorbate = str(rng.choice(SITE_RELAX_ADSORBATES, p=list(recipe.site_relax_adsorbate_probabilities)))
    top = rng.uniform() < recipe.site_relax_top_probability
    site_kind = "ontop" if top else str(rng.choice(["bridge", "hollow"]))
    placed = st.place_random_adsorbate(slab, rng, adsorbate=adsorbate, site_kind=site_kind)
    placed.positions[len(slab):, 2] += float(rng.uniform(*recipe.site_relax_height_offset))
    st.rattle(placed, rng, recipe.site_relax_rattle)
    fixed = st.bottom_layer_indices(placed, len(slab))
    frames = relaxation_frames(
        placed, recipe.site_relax_frames, recipe.relax_max_steps, fmax=recipe.relax_fmax, fixed=fixed
    )
    for _ in range(recipe.site_relax_minimum_copies):
        copy = frames[-1].copy()
        st.rattle(copy, rng, _rattle_stdev(recipe, rng))
        frames.append(copy)
    return frames


def _bulk_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Strained and rattled copies of one random (alloy) fcc cell."""
    base = _random_bulk(recipe, rng, 1)
    frames = []
    for _ in range(recipe.bulk_copies):
        copy = base.copy()
        st.apply_random_strain(copy, rng, recipe.bulk_isotropic_strain, recipe.bulk_shear_strain)
        st.rattle(copy, rng, _rattle_stdev(recipe, rng))
        frames.append(copy)
    return frames


def _md_bulk_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Langevin MD frames of a strained bulk cell at one of the recipe's temperatures."""
    base = _random_bulk(recipe, rng, 8)
    st.apply_random_strain(base, rng, 0.5 * recipe.bulk_isotropic_strain, 0.5 * recipe.bulk_shear_strain)
    temperature = float(rng.choice(recipe.md_temperatures_k))
    return md_frames(
        base, rng, temperature, recipe.md_duration_fs, recipe.md_frame_interval_fs, recipe.md_bulk_timestep_fs
    )


def _slab_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Strained and rattled copies of one clean slab."""
    base = st.random_slab(
        rng,
        vacuum_range=recipe.vacuum_range,
        alloy_probability=recipe.slab_alloy_probability,
        lattice_strain=recipe.slab_in_plane_strain,
    )
    frames = []
    for _ in range(recipe.slab_copies):
        copy = base.copy()
        st.apply_random_strain(copy, rng, 0.5 * recipe.slab_in_plane_strain, 0.5 * recipe.slab_in_plane_strain, True)
        st.rattle(copy, rng, _rattle_stdev(recipe, rng))
        frames.append(copy)
    return frames


def _prerelaxed_adsorbate(recipe: Recipe, rng: np.random.Generator) -> tuple[Atoms, int]:
    """A random slab + adsorbate after ``adsorbate_prerelax_steps`` FIRE steps (raw placements give
    10-20 eV/A in EMT), and the number of slab atoms."""
    placed, n_slab = _slab_with_adsorbate(recipe, rng)
    return relaxed_copy(placed, recipe.adsorbate_prerelax_steps, fixed=st.bottom_layer_indices(placed, n_slab)), n_slab


def _adsorbate_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Rattled copies of a slab + adsorbate brought near EMT's minimum by a few FIRE steps."""
    base, _ = _prerelaxed_adsorbate(recipe, rng)
    frames = []
    for _ in range(recipe.adsorbate_copies):
        copy = base.copy()
        st.rattle(copy, rng, _rattle_stdev(recipe, rng))
        frames.append(copy)
    return frames


def _md_adsorbate_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """MD frames of a pre-relaxed slab + adsorbate, bottom layer fixed."""
    base, n_slab = _prerelaxed_adsorbate(recipe, rng)
    temperature = float(rng.choice(recipe.md_temperatures_k))
    return md_frames(
        base,
        rng,
        temperature,
        recipe.md_duration_fs,
        recipe.md_frame_interval_fs,
        recipe.md_adsorbate_timestep_fs,
        fixed=st.bottom_layer_indices(base, n_slab),
    )


def _relax_adsorbate_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Frames along a FIRE relaxation of a rattled slab + adsorbate."""
    base, n_slab = _slab_with_adsorbate(recipe, rng)
    st.rattle(base, rng, recipe.relax_start_rattle)
    return relaxation_frames(
        base, recipe.relax_frames, recipe.relax_max_steps, fmax=recipe.relax_fmax,
        fixed=st.bottom_layer_indices(base, n_slab),
    )


def _gas_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Bond-stretched, rattled copies of one relaxed gas molecule (the molecules cycle with ``index``)."""
    name = st.GAS_MOLECULES[index % len(st.GAS_MOLECULES)]
    base = relaxed_copy(st.gas_molecule_in_box(name, rng), recipe.relax_max_steps)
    centre = base.positions.mean(axis=0)
    frames = []
    for _ in range(recipe.gas_copies):
        copy = base.copy()
        scale = 1.0 + float(rng.uniform(-recipe.gas_bond_strain, recipe.gas_bond_strain))
        copy.positions = centre + (copy.positions - centre) * scale
        st.rattle(copy, rng, _rattle_stdev(recipe, rng))
        copy.info["molecule"] = name
        frames.append(copy)
    return frames


def _molecule_group(recipe: Recipe, rng: np.random.Generator, index: int) -> list[Atoms]:
    """Langevin MD frames of one organic molecule in a box (the molecules cycle with ``index``)."""
    name = st.ORGANIC_MOLECULES[index % len(st.ORGANIC_MOLECULES)]
    start = st.gas_molecule_in_box(name, rng)
    if rng.uniform() < recipe.molecule_relaxed_start_probability:
        start = relaxed_copy(start, recipe.relax_max_steps)
    st.rattle(start, rng, _rattle_stdev(recipe, rng))
    temperature = float(rng.choice(recipe.md_temperatures_k))
    frames = md_frames(
        start, rng, temperature, recipe.molecule_md_duration_fs, recipe.molecule_frame_interval_fs,
        recipe.molecule_timestep_fs,
    )
    for frame in frames:
        frame.info["molecule"] = name
    return frames


# How each family's group is built; every builder draws from the group's own generator only.
_GROUP_BUILDERS = {
    "bulk": _bulk_group,
    "md_bulk": _md_bulk_group,
    "slab": _slab_group,
    "adsorbate": _adsorbate_group,
    "md_adsorbate": _md_adsorbate_group,
    "relax_adsorbate": _relax_adsorbate_group,
    "gas": _gas_group,
    "site_relax": lambda recipe, rng, index: _site_relaxation(recipe, rng),
    "molecule": _molecule_group,
}


def build_group(family: str, index: int, seed: int, recipe: Recipe) -> list[Atoms]:
    """The unlabelled structures of group ``index`` of ``family``; each has ``info['family']``/``['group']``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    frames = _GROUP_BUILDERS[family](recipe, _group_rng(seed, family, index), index)
    group = f"{family}-{index:05d}"
    tidy = []
    for frame in frames:
        extra = {key: value for key, value in frame.info.items() if isinstance(value, (str, int, float))}
        plain = Atoms(frame.get_chemical_symbols(), positions=frame.positions, cell=frame.cell, pbc=True)
        plain.info = {"family": family, "group": group, **dict(sorted(extra.items()))}
        tidy.append(plain)
    return tidy


def assign_splits(
    groups_by_family: dict[str, list[str]], fractions: tuple[float, float, float], seed: int
) -> dict[str, str]:
    """Map each group id to ``train``/``val``/``test``: a seeded shuffle within every family.

    Each family's val and test get ``round(fraction * n_groups)`` groups, and at least one each when the
    family has three or more groups and the fraction is positive, so small data sets still test every family.
    """
    assignment: dict[str, str] = {}
    for family, group_ids in groups_by_family.items():
        rng = np.random.default_rng([seed, _SPLIT_SALT, FAMILIES.index(family)])
        order = [group_ids[i] for i in rng.permutation(len(group_ids))]
        n = len(order)
        counts = []
        for fraction in fractions[1:]:
            count = round(fraction * n)
            if fraction > 0 and n >= 3:
                count = max(1, count)
            counts.append(count)
        n_val, n_test = counts
        n_test = min(n_test, n)
        n_val = min(n_val, n - n_test)
        for position, group_id in enumerate(order):
            split = "test" if position < n_test else "val" if position < n_test + n_val else "train"
            assignment[group_id] = split
    return assignment


def _check_fractions(split: tuple[float, float, float]) -> tuple[float, float, float]:
    values = tuple(float(value) for value in split)
    if len(values) != 3 or any(not np.isfinite(v) or v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"split must be three non-negative fractions (train, val, test) summing to 1, got {split!r}")
    if values[0] == 0:
        raise ValueError("the train fraction must be positive")
    return values  # type: ignore[return-value]


@dataclasses.dataclass
class _Tally:
    """What went where: structures, groups and atoms per split and family, elements, drops, seconds."""

    structures: dict[str, Counter] = dataclasses.field(default_factory=lambda: {n: Counter() for n in SPLITS})
    groups: dict[str, Counter] = dataclasses.field(default_factory=lambda: {n: Counter() for n in SPLITS})
    atoms: Counter = dataclasses.field(default_factory=Counter)
    element_atoms: Counter = dataclasses.field(default_factory=Counter)
    element_structures: Counter = dataclasses.field(default_factory=Counter)
    dropped: dict[str, Counter] = dataclasses.field(default_factory=lambda: {f: Counter() for f in FAMILIES})
    seconds: Counter = dataclasses.field(default_factory=Counter)

    def add_group(self, split: str, family: str, frames: list[Atoms]) -> None:
        self.groups[split][family] += 1
        for atoms in frames:
            self.structures[split][family] += 1
            self.atoms[split] += len(atoms)
            symbols = atoms.get_chemical_symbols()
            self.element_atoms.update(symbols)
            self.element_structures.update(set(symbols))

    def total(self) -> int:
        return sum(sum(counts.values()) for counts in self.structures.values())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError as error:  # pragma: no cover - tqdm is part of the test extras
        raise ImportError(
            "the progress bar needs tqdm: pip install escn-ase[train] (or pass progress=False / --no-progress)"
        ) from error
    return tqdm(total=total, desc="EMT data", unit="group")


def generate_dataset(
    out_dir: str | os.PathLike,
    seed: int = 0,
    size: str | int = "small",
    groups: dict[str, int] | None = None,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    max_force: float = 20.0,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generate, label, filter, split and write the EMT data set into ``out_dir``; return the manifest.

    Args:
        out_dir: created if needed; holds ``train.extxyz``, ``val.extxyz``, ``test.extxyz``, ``manifest.json``.
        seed: non-negative integer; with ``size`` and ``groups`` it fixes the output byte for byte.
        size: ``"tiny"`` (~110 structures), ``"small"`` (~6000), ``"medium"`` (~18000), or a number of structures.
        groups: per-family overrides of the number of groups (see :data:`FAMILIES`).
        split: train/val/test fractions of the groups of each family.
        max_force: structures with any atomic force above this (eV/A) are dropped, as are non-finite labels.
        progress: show a tqdm progress bar on stderr.
        overwrite: replace existing data set files in ``out_dir`` (otherwise an existing one is an error).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if not (isinstance(max_force, (int, float)) and np.isfinite(max_force) and max_force > 0):
        raise ValueError(f"max_force must be a positive number of eV/A, got {max_force!r}")
    fractions = _check_fractions(split)
    recipe = make_recipe(size, groups)
    out = Path(out_dir)
    outputs = [out / f"{name}.extxyz" for name in SPLITS] + [out / "manifest.json"]
    existing = [path.name for path in outputs if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {', '.join(existing)}; pass overwrite=True (--overwrite)")
    out.mkdir(parents=True, exist_ok=True)

    from ase.io import write

    started = time.perf_counter()
    group_ids = {family: [f"{family}-{i:05d}" for i in range(recipe.groups[family])] for family in FAMILIES}
    split_of = assign_splits(group_ids, fractions, seed)
    tally = _Tally()
    partial = {name: out / f"{name}.extxyz.partial" for name in SPLITS}
    finished = False
    try:
        with contextlib.ExitStack() as stack:
            handles = {name: stack.enter_context(open(path, "w")) for name, path in partial.items()}
            bar = _progress_bar(sum(recipe.groups.values()), progress)
            if bar is not None:
                stack.callback(bar.close)
            for family in FAMILIES:
                for index, group_id in enumerate(group_ids[family]):
                    tick = time.perf_counter()
                    kept = []
                    for frame in build_group(family, index, seed, recipe):
                        labelled = label_with_emt(frame)
                        reason = rejection_reason(labelled, max_force)
                        if reason is None:
                            kept.append(labelled)
                        else:
                            tally.dropped[family][reason] += 1
                    if kept:
                        write(handles[split_of[group_id]], kept, format="extxyz")
                        tally.add_group(split_of[group_id], family, kept)
                    tally.seconds[family] += time.perf_counter() - tick
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(structures=tally.total())
        finished = True
    finally:
        if not finished:  # leave no half-written split behind
            for path in partial.values():
                path.unlink(missing_ok=True)
    for name in SPLITS:
        os.replace(partial[name], out / f"{name}.extxyz")

    manifest = _manifest(out, seed, size, recipe, fractions, max_force, tally, started)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _manifest(
    out: Path,
    seed: int,
    size: str | int,
    recipe: Recipe,
    fractions: tuple[float, float, float],
    max_force: float,
    tally: _Tally,
    started: float,
) -> dict[str, Any]:
    """What ``generate_dataset`` wrote into ``out``: recipe, counts, drops, elements, checksums, versions, time."""
    from ase.data import atomic_numbers

    by_z = sorted(tally.element_atoms, key=lambda symbol: atomic_numbers[symbol])
    return {
        "generator": "escn_ase.data.emt_dataset",
        "generator_version": GENERATOR_VERSION,
        "calculator": "ase.calculators.emt.EMT",
        "seed": seed,
        "size": size,
        "recipe": dataclasses.asdict(recipe),
        "split_fractions": dict(zip(SPLITS, fractions)),
        "max_force": float(max_force),
        "label_convention": (
            "extxyz via SinglePointCalculator: energy (eV), forces (eV/A), stress (Voigt, eV/A^3, ASE sign); "
            "load_dataset() puts them in info['energy'], arrays['forces'], info['stress']"
        ),
        "counts": {
            "structures": {name: {f: tally.structures[name][f] for f in FAMILIES} for name in SPLITS},
            "groups": {name: {f: tally.groups[name][f] for f in FAMILIES} for name in SPLITS},
            "atoms": {name: tally.atoms[name] for name in SPLITS},
            "structures_per_split": {name: sum(tally.structures[name].values()) for name in SPLITS},
            "structures_per_family": {f: sum(tally.structures[name][f] for name in SPLITS) for f in FAMILIES},
            "total_structures": tally.total(),
        },
        "dropped": {f: dict(sorted(tally.dropped[f].items())) for f in FAMILIES if tally.dropped[f]},
        "dropped_total": sum(sum(c.values()) for c in tally.dropped.values()),
        "elements": {
            "atoms": {symbol: tally.element_atoms[symbol] for symbol in by_z},
            "structures": {symbol: tally.element_structures[symbol] for symbol in by_z},
        },
        "files": {name: {"path": f"{name}.extxyz", "sha256": _sha256(out / f"{name}.extxyz")} for name in SPLITS},
        "versions": _versions(),
        "timing": {
            "total_seconds": round(time.perf_counter() - started, 3),
            "seconds_per_family": {f: round(tally.seconds[f], 3) for f in FAMILIES},
        },
    }


def _versions() -> dict[str, str]:
    import ase

    from .. import __version__ as escn_version

    return {"escn_ase": escn_version, "ase": ase.__version__, "numpy": np.__version__}


def _normalise_labels(atoms: Atoms, where: str) -> Atoms:
    """Move labels from a calculator (or info/arrays) into info['energy'], arrays['forces'], info['stress']."""
    from ase.stress import full_3x3_to_voigt_6_stress

    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    atoms.calc = None
    energy = results.get("energy", atoms.info.get("energy"))
    forces = results.get("forces", atoms.arrays.get("forces"))
    stress = results.get("stress", atoms.info.get("stress"))
    missing = [name for name, value in (("energy", energy), ("forces", forces), ("stress", stress)) if value is None]
    if missing:
        raise ValueError(f"{where} has no {', '.join(missing)} label: not an EMT data set file?")
    stress = np.asarray(stress, dtype=float)
    if stress.shape in ((3, 3), (9,)):
        stress = full_3x3_to_voigt_6_stress(stress.reshape(3, 3))
    forces = np.asarray(forces, dtype=float)
    if stress.shape != (6,) or forces.shape != (len(atoms), 3):
        raise ValueError(f"{where}: forces shape {forces.shape} / stress shape {stress.shape} are not (n, 3) / (6,)")
    atoms.info["energy"] = float(energy)
    atoms.info["stress"] = stress
    if "forces" in atoms.arrays:
        del atoms.arrays["forces"]
    atoms.new_array("forces", forces)
    return atoms


def load_dataset(path: str | os.PathLike, split: str | None = None) -> list[Atoms]:
    """Read a data set file (or a data set directory) into Atoms with labels in info/arrays.

    ``path`` may be an extxyz file or a directory written by :func:`generate_dataset`; for a directory
    ``split`` picks ``train``/``val``/``test`` (default: all three, in that order, each frame tagged
    with ``info['split']``). Every returned Atoms has ``info['energy']`` (eV), ``arrays['forces']``
    (n_atoms, 3) eV/A, ``info['stress']`` (6,) Voigt eV/A^3 (ASE sign), ``info['family']``, ``info['group']``.
    """
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data set at {path}")
    if path.is_dir():
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        names = [split] if split is not None else list(SPLITS)
        frames: list[Atoms] = []
        for name in names:
            file = path / f"{name}.extxyz"
            if not file.exists():
                raise FileNotFoundError(f"{path} has no {file.name}: not a generate_dataset directory?")
            for atoms in load_dataset(file):
                if split is None:
                    atoms.info["split"] = name
                frames.append(atoms)
        return frames
    if split is not None:
        raise ValueError("split only applies when path is a data set directory")
    frames = read(path, index=":", format="extxyz")
    for number, atoms in enumerate(frames):
        _normalise_labels(atoms, f"{path} frame {number}")
        for key in ("family", "group"):
            if key not in atoms.info:
                raise ValueError(f"{path} frame {number} has no info[{key!r}]")
    return frames
