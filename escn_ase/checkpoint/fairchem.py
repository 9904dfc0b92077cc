"""Reader of fairchem-core 1.x eSCN checkpoints and of the 2023 OCP (ocpmodels) layout.

File layout (see ``shared/fixtures/FAIRCHEM_ESCN_FORMAT.md``): a dict with ``state_dict``
(keys prefixed ``module.`` or ``module.module.``), ``config`` (``config["model"]`` a dict with
``name`` or, legacy, a name with ``config["model_attributes"]``), ``normalizers`` (``energy`` /
``forces`` with ``mean`` and ``rmsd``, or legacy ``target`` / ``grad_target`` with ``mean`` and
``std``) and optional ``elementrefs``.  The EMA weights are ignored, as fairchem's calculator does.
"""

from __future__ import annotations

import torch

from ..errors import CheckpointError
from ..model import ESCN, ESCNConfig
from .common import LoadedModel, load_weights

__all__ = ["is_fairchem_checkpoint", "load_fairchem_checkpoint", "escn_config_from_fairchem"]

# Hyperparameters of fairchem's eSCN.__init__ that do not change the numbers computed here.
_IGNORED_HYPERPARAMETERS = {
    "name",
    "otf_graph",
    "use_pbc_single",
    "show_timing_info",
    "resolution",
    "activation_checkpoint",
    "regress_forces",
    "use_pbc",
    "distance_function",
    "lmax_list",
    "mmax_list",
}
_ESCN_DEFAULTS = dict(
    max_neighbors=40,
    cutoff=8.0,
    max_num_elements=90,
    num_layers=8,
    sphere_channels=128,
    hidden_channels=256,
    edge_channels=128,
    num_sphere_samples=128,
    basis_width_scalar=1.0,
    distance_resolution=0.02,
)


def is_fairchem_checkpoint(data: dict) -> bool:
    """Whether a loaded file is a fairchem/OCP trainer checkpoint (``state_dict`` and a ``config`` dict)."""
    return "state_dict" in data and isinstance(data.get("config"), dict)


def _model_hyperparameters(config: dict, path: str) -> tuple[str, dict]:
    model_entry = config.get("model")
    if isinstance(model_entry, dict):
        name = str(model_entry.get("name", ""))
        params = {k: v for k, v in model_entry.items() if k != "name"}
    elif isinstance(model_entry, str):
        name = model_entry
        params = dict(config.get("model_attributes") or {})
    else:
        raise CheckpointError(f"{path}: config['model'] is missing; cannot tell which architecture this is")
    return name, params


def escn_config_from_fairchem(config: dict, path: str = "<checkpoint>") -> ESCNConfig:
    """The ``ESCNConfig`` equivalent to a fairchem checkpoint's ``config``."""
    name, params = _model_hyperparameters(config, path)
    if name.lower().rsplit(".", 1)[-1] != "escn":
        raise CheckpointError(f"{path}: holds a {name!r} model, not eSCN; escn_ase only runs eSCN checkpoints")
    lmax_list, mmax_list = params.get("lmax_list", [6]), params.get("mmax_list", [2])
    if len(lmax_list) != 1 or len(mmax_list) != 1:
        raise CheckpointError(
            f"{path}: multi-resolution eSCN (lmax_list={lmax_list}, mmax_list={mmax_list}) is not supported; "
            "every published eSCN checkpoint has a single resolution"
        )
    if params.get("distance_function", "gaussian") != "gaussian":
        raise CheckpointError(
            f"{path}: distance_function={params['distance_function']!r}; fairchem's eSCN only implements 'gaussian'"
        )
    if params.get("regress_forces", True) is False:
        raise CheckpointError(f"{path}: energy-only eSCN checkpoints (regress_forces=False) are not supported")
    if params.get("use_pbc", True) is False:
        raise CheckpointError(f"{path}: use_pbc=False checkpoints are not supported (published ones use True)")
    values = dict(_ESCN_DEFAULTS)
    for key, value in params.items():
        if key in _IGNORED_HYPERPARAMETERS:
            continue
        if key not in values:
            raise CheckpointError(f"{path}: unknown eSCN hyperparameter {key!r}={value!r}")
        values[key] = value
    return ESCNConfig(
        lmax=int(lmax_list[0]),
        mmax=int(mmax_list[0]),
        forces="direct",
        smooth_cutoff=False,
        num_layers=int(values["num_layers"]),
        sphere_channels=int(values["sphere_channels"]),
        hidden_channels=int(values["hidden_channels"]),
        edge_channels=int(values["edge_channels"]),
        cutoff=float(values["cutoff"]),
        max_neighbors=int(values["max_neighbors"]),
        num_sphere_samples=int(values["num_sphere_samples"]),
        distance_resolution=float(values["distance_resolution"]),
        basis_width_scalar=float(values["basis_width_scalar"]),
        max_num_elements=int(values["max_num_elements"]),
    )


def _strip_module_prefix(state_dict: dict) -> dict[str, torch.Tensor]:
    stripped = {}
    for key, value in state_dict.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        stripped[key] = value
    return stripped


def _normalizer_pair(normalizers: dict, names: tuple[str, str], path: str) -> tuple[float, float] | None:
    for name in names:
        entry = normalizers.get(name)
        if entry is None:
            continue
        mean = entry.get("mean")
        scale = next((entry[k] for k in ("rmsd", "std", "stdev") if k in entry), None)
        if mean is None or scale is None:
            raise CheckpointError(f"{path}: normalizer {name!r} lacks 'mean' or 'rmsd'/'std' ({sorted(entry)})")
        return float(torch.as_tensor(mean)), float(torch.as_tensor(scale))
    return None


def _check_constant_tables(state_dict: dict, model: ESCN, config: ESCNConfig, path: str) -> None:
    """The constant tables the reference stores (Gaussian offsets, sphere points, their harmonics) must be
    the ones the config defines: checked, then dropped or renamed in ``state_dict``."""
    expected_offsets = model.distance_expansion.offsets
    for key in [k for k in state_dict if k.endswith("distance_expansion.offset")]:
        stored = state_dict.pop(key)
        if stored.shape != expected_offsets.shape or not torch.allclose(stored.float(), expected_offsets, atol=1e-5):
            raise CheckpointError(
                f"{path}: {key} {tuple(stored.shape)} does not match the Gaussian offsets of the config "
                f"(cutoff {config.cutoff}, {config.n_basis} Gaussians)"
            )
    if "sphharm_weights.0" in state_dict:
        state_dict["sphharm_weights"] = state_dict.pop("sphharm_weights.0")
    for key in ("sphere_points", "sphharm_weights"):
        if key in state_dict and state_dict[key].shape == getattr(model, key).shape:
            if not torch.allclose(state_dict[key].float(), getattr(model, key), atol=1e-5):
                raise CheckpointError(f"{path}: stored {key} differ from the ones eSCN defines; not an eSCN file?")


def _output_scaling(data: dict, state_dict: dict, config: ESCNConfig, path: str):
    """Put the normalizers and element references of a fairchem file into ``state_dict`` as our output
    buffers; returns (energy (mean, rmsd), forces (mean, rmsd), the elementrefs entry or None)."""
    normalizers = data.get("normalizers") or {}
    energy = _normalizer_pair(normalizers, ("energy", "target"), path) or (0.0, 1.0)
    forces = _normalizer_pair(normalizers, ("forces", "grad_target"), path) or (0.0, 1.0)
    for name, value in (
        ("energy_mean", energy[0]),
        ("energy_scale", energy[1]),
        ("forces_mean", forces[0]),
        ("forces_scale", forces[1]),
    ):
        state_dict[name] = torch.tensor(value, dtype=torch.float32)
    references = torch.zeros(config.max_num_elements)
    element_refs = (data.get("elementrefs") or {}).get("energy")
    if element_refs:
        table = element_refs.get("element_references")
        if table is None:
            raise CheckpointError(f"{path}: elementrefs['energy'] has no 'element_references' ({sorted(element_refs)})")
        table = torch.as_tensor(table, dtype=torch.float32).flatten()
        references[: min(len(table), len(references))] = table[: len(references)]
    state_dict["element_references"] = references
    return energy, forces, element_refs


def load_fairchem_checkpoint(data: dict, path: str) -> LoadedModel:
    """Build an ``ESCN`` with the weights and output scaling of a fairchem checkpoint dict."""
    config = escn_config_from_fairchem(data["config"], path)
    legacy = isinstance(data["config"].get("model"), str)
    state_dict = data["state_dict"]
    if not isinstance(state_dict, dict) or not state_dict:
        raise CheckpointError(f"{path}: 'state_dict' is empty or not a mapping")
    state_dict = _strip_module_prefix(state_dict)
    model = ESCN(config)

    _check_constant_tables(state_dict, model, config, path)
    energy, forces, element_refs = _output_scaling(data, state_dict, config, path)

    load_weights(model, state_dict, path)
    model.eval()
    metadata = {
        "normalizers": {"energy": energy, "forces": forces},
        "has_element_references": bool(element_refs),
        "fairchem_config": data["config"],
        "val_metrics": data.get("val_metrics"),
    }
    # Z = 0 is not an element; the embedding has max_num_elements rows.
    elements = tuple(range(1, config.max_num_elements))
    return LoadedModel(
        model=model,
        config=config,
        source="fairchem-legacy" if legacy else "fairchem",
        elements=elements,
        path=path,
        metadata=metadata,
    )
