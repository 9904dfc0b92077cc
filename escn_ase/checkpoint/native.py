"""escn_ase's own checkpoint format (version 1).

A ``torch.save`` of a plain dict, readable with ``torch.load(..., weights_only=True)``:

    format           "escn_ase"
    format_version   1
    config           dict of ESCNConfig fields
    state_dict       dict[str, Tensor] of the ESCN module (output scaling included as buffers)
    elements         list[int] atomic numbers the model was trained on
    metadata         dict of plain values: training data recipe, split, metrics, timing, versions
    weights_sha256   sha256 of the state dict (``common.weights_sha256``), verified at load when present
"""

from __future__ import annotations

import os

import torch

from ..errors import CheckpointError
from ..model import ESCN, ESCNConfig
from .common import LoadedModel, load_weights, weights_sha256

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "is_native_checkpoint", "load_native_checkpoint", "save_checkpoint"]

FORMAT_NAME = "escn_ase"
FORMAT_VERSION = 1


def is_native_checkpoint(data: dict) -> bool:
    """Whether a loaded file is in escn_ase's own format."""
    return data.get("format") == FORMAT_NAME


def save_checkpoint(
    path: str | os.PathLike, model: ESCN, elements: list[int] | tuple[int, ...], metadata: dict | None = None
) -> None:
    """Write ``model`` in the escn_ase format (weights as float32 on the CPU)."""
    state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "config": model.config.to_dict(),
            "state_dict": state,
            "elements": [int(z) for z in sorted(set(elements))],
            "metadata": metadata or {},
            "weights_sha256": weights_sha256(state),
        },
        path,
    )


def load_native_checkpoint(data: dict, path: str) -> LoadedModel:
    """The model of an escn_ase-format file, every key, the weights' sha256 and their values checked."""
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: escn_ase checkpoint format version {version!r}; this reader knows {FORMAT_VERSION}"
        )
    for key in ("config", "state_dict", "elements"):
        if key not in data:
            raise CheckpointError(f"{path}: escn_ase checkpoint lacks {key!r}")
    try:
        config = ESCNConfig.from_dict(dict(data["config"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config: {exc}") from exc
    state = dict(data["state_dict"])
    if "weights_sha256" in data and weights_sha256(state) != data["weights_sha256"]:
        raise CheckpointError(
            f"{path}: the weights do not match the sha256 stored when the checkpoint was written: the file was "
            "modified or damaged; download or export it again"
        )
    model = ESCN(config)
    load_weights(model, state, path)
    model.eval()
    elements = data["elements"]
    if not isinstance(elements, (list, tuple)) or not all(
        isinstance(z, int) and not isinstance(z, bool) and 1 <= z <= min(118, config.max_num_elements - 1)
        for z in elements
    ):
        raise CheckpointError(
            f"{path}: 'elements' must list atomic numbers in 1..{min(118, config.max_num_elements - 1)}, "
            f"got {elements!r}"[:300]
        )
    elements = tuple(int(z) for z in elements)
    return LoadedModel(
        model=model,
        config=config,
        source=FORMAT_NAME,
        elements=elements,
        path=path,
        metadata=dict(data.get("metadata") or {}),
    )
