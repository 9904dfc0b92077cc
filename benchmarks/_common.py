"""Shared pieces of the benchmarks: published configurations, test structures, reference-format files."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from escn_ase import ESCN, ESCNConfig  # noqa: E402

# Published OC20 S2EF eSCN configurations (fairchem configs/s2ef/*/escn/*.yml).
PUBLISHED = {
    "L4-M2-Lay12": dict(num_layers=12, lmax=4, mmax=2, sphere_channels=128, hidden_channels=256),
    "L6-M2-Lay12": dict(num_layers=12, lmax=6, mmax=2, sphere_channels=128, hidden_channels=256),
    "L6-M3-Lay20": dict(num_layers=20, lmax=6, mmax=3, sphere_channels=160, hidden_channels=384),
}
COMMON = dict(
    edge_channels=128, cutoff=12.0, max_neighbors=20, num_sphere_samples=128, basis_width_scalar=2.0,
    distance_resolution=0.02,
)


def published_config(name: str) -> ESCNConfig:
    return ESCNConfig(**PUBLISHED[name], **COMMON)


def random_model(config: ESCNConfig, seed: int = 0) -> ESCN:
    """A model with seeded random weights scaled so that outputs are O(1) eV and eV/A."""
    torch.manual_seed(seed)
    model = ESCN(config)
    with torch.no_grad():
        model.energy_block.fc3.weight.mul_(100.0)
        if model.force_block is not None:
            model.force_block.fc3.weight.mul_(10.0)
    return model.eval()


def cu111_co(size: tuple[int, int, int] = (4, 4, 4)) -> Atoms:
    """Cu(111) slab with CO on top, vacuum 10 A, rattled 0.02 A: 66 atoms at the default size."""
    slab = fcc111("Cu", size=size, vacuum=10.0)
    add_adsorbate(slab, molecule("CO"), 1.9, "ontop")
    slab.rattle(0.02, seed=0)
    slab.pbc = True
    return slab


def structure(name: str) -> Atoms:
    if name == "cu111_co_66":
        return cu111_co((4, 4, 4))
    if name == "cu111_co_198":
        return cu111_co((7, 7, 4))
    raise KeyError(name)


def reference_python() -> Path | None:
    """Python of the fairchem-core 1.10 venv (``$ESCN_ASE_REFERENCE_VENV`` or benchmarks/.fairchem-venv)."""
    venv = Path(os.environ.get("ESCN_ASE_REFERENCE_VENV", REPO / "benchmarks" / ".fairchem-venv"))
    python = venv / "bin" / "python"
    return python if python.exists() else None


def fixture_checkpoint() -> Path | None:
    path = Path(os.environ.get("ESCN_ASE_FIXTURES", REPO.parent / "shared" / "fixtures")) / "fairchem-escn-small"
    path = path / "checkpoint.pt"
    return path if path.exists() else None


def save_fairchem_layout(model: ESCN, path: Path, template: Path) -> None:
    """Write ``model`` as a fairchem-core 1.x trainer checkpoint (config shell copied from ``template``)."""
    data = torch.load(template, map_location="cpu", weights_only=True)
    c = model.config
    state = {}
    for key, value in model.state_dict().items():
        if key in ("energy_mean", "energy_scale", "forces_mean", "forces_scale", "element_references"):
            continue
        state["module." + ("sphharm_weights.0" if key == "sphharm_weights" else key)] = value.clone()
    offsets = model.distance_expansion.offsets.clone()
    state["module.distance_expansion.offset"] = offsets
    for i in range(c.num_layers):
        state[f"module.layer_blocks.{i}.message_block.edge_block.distance_expansion.offset"] = offsets
    config = copy.deepcopy(data["config"])
    config["model"] = {
        "name": "escn", "num_layers": c.num_layers, "max_neighbors": c.max_neighbors, "cutoff": c.cutoff,
        "sphere_channels": c.sphere_channels, "hidden_channels": c.hidden_channels,
        "edge_channels": c.edge_channels, "lmax_list": [c.lmax], "mmax_list": [c.mmax],
        "num_sphere_samples": c.num_sphere_samples, "distance_function": "gaussian", "regress_forces": True,
        "use_pbc": True, "basis_width_scalar": c.basis_width_scalar, "otf_graph": True,
    }
    normalizers = {
        "energy": {"mean": model.energy_mean.clone(), "rmsd": model.energy_scale.clone()},
        "forces": {"mean": model.forces_mean.clone(), "rmsd": model.forces_scale.clone()},
    }
    torch.save({"state_dict": state, "normalizers": normalizers, "elementrefs": {}, "config": config,
                "val_metrics": {}, "amp": None}, path)
