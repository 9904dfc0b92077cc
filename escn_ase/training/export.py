"""Publishing a trained model: copy it into ``models/`` with a regression set of reference outputs.

    python -m escn_ase.training.export runs/default_model/best.pt models/escn-emt-small.pt

The regression set (a few fixed structures and the energies/forces the model gives them at export
time) is stored in the checkpoint's metadata under ``"regression"``; ``tests/test_default_model.py``
recomputes it, so any change of the code that changes the model's numbers is caught.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule

from ..checkpoint import load_checkpoint, save_checkpoint

__all__ = ["regression_structures", "export_model"]


def regression_structures() -> list[tuple[str, Atoms]]:
    """Small fixed structures (seeded rattles) covering bulk, alloy, slab + adsorbate and a molecule."""
    cu = bulk("Cu", "fcc", a=3.62, cubic=True)
    cu.rattle(0.05, seed=1)
    alloy = bulk("Pt", "fcc", a=3.95, cubic=True)
    alloy.symbols[[1, 2]] = ["Ni", "Au"]
    alloy.rattle(0.05, seed=2)
    slab = fcc111("Pd", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, "O", 1.2, "fcc")
    slab.pbc = True
    slab.rattle(0.03, seed=3)
    co = molecule("CO")
    co.center(vacuum=4.0)
    return [("cu_bulk", cu), ("ptniau_bulk", alloy), ("pd111_O", slab), ("co_gas", co)]


def export_model(source: str | os.PathLike, destination: str | os.PathLike) -> dict:
    """Copy a trained escn_ase checkpoint to ``destination`` with a regression set in its metadata."""
    from ..calculator import ESCNCalculator

    loaded = load_checkpoint(source)
    calc = ESCNCalculator(source, device="cpu", dtype="float64")
    regression = []
    for name, atoms in regression_structures():
        result = calc.evaluate([atoms], compute_stress=bool(np.all(atoms.pbc)))[0]
        entry = {
            "name": name,
            "symbols": atoms.get_chemical_symbols(),
            "positions": atoms.positions.tolist(),
            "cell": atoms.cell.array.tolist(),
            "pbc": [bool(p) for p in atoms.pbc],
            "energy": result["energy"],
            "forces": result["forces"].tolist(),
        }
        if "stress" in result:
            entry["stress"] = result["stress"].tolist()
        regression.append(entry)
    metadata = dict(loaded.metadata)
    metadata["regression"] = regression
    metadata["exported_from"] = str(source)
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(destination, loaded.model, loaded.elements, metadata)
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m escn_ase.training.export", description=__doc__)
    parser.add_argument("source", help="trained checkpoint (best.pt of escn-ase train)")
    parser.add_argument("destination", help="where to write it, e.g. models/escn-emt-small.pt")
    args = parser.parse_args(argv)
    metadata = export_model(args.source, args.destination)
    size = Path(args.destination).stat().st_size / 2**20
    print(f"wrote {args.destination} ({size:.1f} MiB) with {len(metadata['regression'])} regression structures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
