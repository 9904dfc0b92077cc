"""Shared pieces of the benchmarks: published configurations, test structures, reference-format files."""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
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
    path = Path(os.environ.get("ESCN_ASE_FIXTURES", REPO / "tests" / "fixtures")) / "fairchem-escn-small"
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


# ---------------------------------------------------------------------------------------------- speed benchmarks
# Used when neither the default model nor configs/default_model.yaml exists.
SMALL_CONSERVATIVE = dict(
    lmax=3, mmax=2, sphere_channels=32, hidden_channels=64, edge_channels=32, num_layers=3, cutoff=5.0,
    max_neighbors=None, forces="conservative", smooth_cutoff=True,
)


def speed_model_checkpoint(directory: Path) -> tuple[Path, str]:
    """The checkpoint the speed benchmarks time, and a one-line description of where it came from.

    The default model (models/escn-emt-small.pt) if present; else a random conservative model of
    configs/default_model.yaml's architecture; else a random small conservative model
    (``SMALL_CONSERVATIVE``). Random models are written to ``directory``.
    """
    from escn_ase import save_checkpoint
    from escn_ase.registry import default_model_path

    default = default_model_path()
    if default.exists():
        return default, f"default model {default}"
    yaml_config = REPO / "configs" / "default_model.yaml"
    if yaml_config.exists():
        from escn_ase.training import load_config

        config, origin = load_config(yaml_config).model_config(), f"random weights, architecture of {yaml_config}"
    else:
        config, origin = ESCNConfig(**SMALL_CONSERVATIVE), "random weights, small conservative fallback"
    path = Path(directory) / "speed-model.pt"
    save_checkpoint(path, random_model(config), elements=list(range(1, 90)))
    return path, origin


def config_summary(c: ESCNConfig) -> str:
    """The architecture in one line."""
    return (f"lmax={c.lmax} mmax={c.mmax} C={c.sphere_channels} H={c.hidden_channels} E={c.edge_channels} "
            f"layers={c.num_layers} cutoff={c.cutoff} max_neighbors={c.max_neighbors} forces={c.forces}")


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(size: int = 2048, repeats: int = 3, dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu") -> float:
    """Measured rate (GFLOP/s) of a ``size x size`` square matmul: the practical peak of this machine."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)

    def product() -> None:
        torch.matmul(a, b)
        synchronize(device)

    return 2 * size**3 / median_seconds(product, repeats) / 1e9


def matmul_probe_size(quick: bool, device: str | torch.device) -> int:
    """Side of the square matmul that measures the peak rate: large enough to saturate the device."""
    if torch.device(device).type == "cuda":
        return 8192
    return 1024 if quick else 2048


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats should already be formatted as strings by the caller."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(threads: int, device: str | torch.device = "cpu") -> str:
    """One comment line naming the machine, torch and the thread count, printed above each table."""
    if torch.device(device).type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model_name()
    return f"# torch {torch.__version__}, {name}, {os.cpu_count()} CPUs visible, torch threads = {threads}"


def _cpu_model_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
