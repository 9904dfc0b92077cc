"""Where checkpoints come from: a path, a registered name (downloaded into a cache), or the default model.

Registered models map a name to a URL, an expected sha256 (None where not known: the computed hash
is then recorded next to the file and printed) and a file name.  Downloads go to the cache directory
``$ESCN_ASE_CACHE`` or ``~/.cache/escn_ase``.  With ``ESCN_ASE_OFFLINE=1`` (or ``offline=True``)
nothing is fetched: only files already in the cache are used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ChecksumError",
    "OfflineError",
    "RegisteredModel",
    "cache_dir",
    "cached_path",
    "default_model_path",
    "download",
    "is_offline",
    "list_models",
    "lookup_model",
    "register_model",
    "resolve_checkpoint",
    "sha256_of",
]

logger = logging.getLogger("escn_ase")

DEFAULT_MODEL_NAME = "escn-emt-small"
_OC20_BASE_URL = "https://dl.fbaipublicfiles.com/opencatalystproject/models/2023_03/s2ef/"
_CHUNK_BYTES = 1 << 20


class ChecksumError(CheckpointError):
    """A downloaded file's sha256 differs from the registered one (the file is not kept)."""


class OfflineError(CheckpointError):
    """A registered model is not in the cache and downloading is switched off."""


@dataclass(frozen=True)
class RegisteredModel:
    """A downloadable checkpoint: where it lives and what its bytes must hash to."""

    name: str
    url: str
    filename: str
    sha256: str | None = None
    description: str = ""


_REGISTRY: dict[str, RegisteredModel] = {}


def register_model(
    name: str, url: str, sha256: str | None = None, filename: str | None = None, description: str = ""
) -> RegisteredModel:
    """Add (or replace) a downloadable model; ``filename`` defaults to the URL's last path component."""
    if not name or "/" in name or os.sep in name:
        raise ValueError(f"model name must be a non-empty name without path separators, got {name!r}")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())):
        raise ValueError(f"sha256 must be 64 hexadecimal digits or None, got {sha256!r}")
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    if not filename:
        raise ValueError(f"cannot take a file name from URL {url!r}; pass filename=")
    entry = RegisteredModel(name, url, filename, sha256.lower() if sha256 else None, description)
    _REGISTRY[name] = entry
    return entry


for _stem, _about in (
    ("escn_l4_m2_lay12_2M_s2ef", "OC20 S2EF, lmax 4, mmax 2, 12 layers, trained on the 2M split (direct forces)"),
    ("escn_l6_m2_lay12_2M_s2ef", "OC20 S2EF, lmax 6, mmax 2, 12 layers, trained on the 2M split (direct forces)"),
    ("escn_l6_m2_lay12_all_md_s2ef", "OC20 S2EF, lmax 6, mmax 2, 12 layers, All+MD (direct forces)"),
    ("escn_l6_m3_lay20_all_md_s2ef", "OC20 S2EF, lmax 6, mmax 3, 20 layers, All+MD (direct forces)"),
):
    # sha256 of the published files is not known here: the first download records it.
    register_model(_stem, _OC20_BASE_URL + _stem + ".pt", None, description=_about)


def list_models() -> list[RegisteredModel]:
    """All registered downloadable models, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def lookup_model(name: str) -> RegisteredModel | None:
    """The registered model called ``name`` (its file name, with or without ``.pt``, also matches)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    for entry in _REGISTRY.values():
        if name in (entry.filename, Path(entry.filename).stem):
            return entry
    return None


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """Download cache: ``cache`` if given, else ``$ESCN_ASE_CACHE`` or ``~/.cache/escn_ase`` (not created here)."""
    override = cache if cache is not None else os.environ.get("ESCN_ASE_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "escn_ase"


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` if given, else whether ``ESCN_ASE_OFFLINE`` is set to a true value (1, true, yes, on)."""
    if offline is not None:
        return bool(offline)
    return os.environ.get("ESCN_ASE_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cached_path(name: str, cache: str | os.PathLike | None = None) -> Path:
    """Where the registered model ``name`` is (or would be) stored in the cache."""
    entry = _require_entry(name)
    return cache_dir(cache) / entry.filename


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _require_entry(name: str) -> RegisteredModel:
    entry = lookup_model(name)
    if entry is None:
        known = ", ".join(m.name for m in list_models())
        raise CheckpointError(f"unknown model name {name!r}; registered models: {known}")
    return entry


def download(
    name: str,
    *,
    force: bool = False,
    offline: bool | None = None,
    progress: bool = False,
    cache: str | os.PathLike | None = None,
) -> Path:
    """Fetch the registered model ``name`` into the cache and return its path.

    An existing cached file is returned as it is unless ``force``.  The download is written to a
    temporary file in the cache directory and only moved into place once its sha256 matches the
    registered one (``ChecksumError`` otherwise).  Where no sha256 is registered, the computed one
    is logged and written to ``<file>.sha256`` so it can be added to the registry.
    """
    entry = _require_entry(name)
    target = cache_dir(cache) / entry.filename
    if target.exists() and not force:
        return target
    if is_offline(offline):
        raise OfflineError(
            f"model {entry.name!r} is not in the cache ({target}) and downloads are switched off "
            "(offline mode / ESCN_ASE_OFFLINE); run `escn-ase download "
            f"{entry.name}` on a machine with network access and copy the file there"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=entry.filename + ".", suffix=".part", dir=target.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(entry.url) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, entry.filename) if progress else None
            for block in iter(lambda: response.read(_CHUNK_BYTES), b""):
                out.write(block)
                digest.update(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
        computed = digest.hexdigest()
        if entry.sha256 is not None and computed != entry.sha256:
            raise ChecksumError(
                f"sha256 mismatch for {entry.name} from {entry.url}: expected {entry.sha256}, got {computed}; "
                "the download was discarded (corrupted transfer or a changed file upstream)"
            )
        shutil.move(temporary, target)
    except urllib.error.URLError as exc:
        raise CheckpointError(f"could not download {entry.name} from {entry.url}: {exc.reason}") from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    if entry.sha256 is None:
        Path(str(target) + ".sha256").write_text(f"{computed}  {entry.filename}\n")
        logger.warning("no sha256 registered for %s; downloaded file has sha256 %s", entry.name, computed)
    return target


def _progress_bar(total: int | None, label: str):
    try:
        from tqdm import tqdm
    except ImportError:  # a progress bar is a nicety, not a requirement
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=label)


def default_model_path() -> Path:
    """Path of the default model: ``$ESCN_ASE_DEFAULT_MODEL``, else ``models/<DEFAULT_MODEL_NAME>.pt``."""
    override = os.environ.get("ESCN_ASE_DEFAULT_MODEL")
    if override:
        return Path(override)
    for root in (Path(__file__).resolve().parent / "models", Path(__file__).resolve().parent.parent / "models"):
        candidate = root / f"{DEFAULT_MODEL_NAME}.pt"
        if candidate.exists():
            return candidate
    return Path(__file__).resolve().parent.parent / "models" / f"{DEFAULT_MODEL_NAME}.pt"


def resolve_checkpoint(
    checkpoint: str | os.PathLike | None,
    *,
    offline: bool | None = None,
    progress: bool = True,
    cache: str | os.PathLike | None = None,
) -> str:
    """A readable file path for ``checkpoint``: a path, a registered model name, or None for the default model.

    A registered name resolves to its file in the download cache and is downloaded there on first use
    (sha256 checked, progress bar unless ``progress=False``), the same file ``escn-ase download NAME``
    fetches.  Offline (``offline=True`` or ``ESCN_ASE_OFFLINE=1``) a missing file is an ``OfflineError``.
    """
    if checkpoint is None or str(checkpoint) == DEFAULT_MODEL_NAME:
        path = default_model_path()
        if not path.exists():
            raise CheckpointError(
                f"the default model is missing: no file at {path}. It ships with the package (models/ in the "
                "repository: `git checkout -- models/` restores it; README 'The default model' shows how to "
                "retrain it); or pass a checkpoint path or registered name, e.g. "
                "ESCNCalculator('escn_l6_m2_lay12_all_md_s2ef')"
            )
        return str(path)
    path = Path(checkpoint).expanduser()
    if path.exists():
        return str(path)
    entry = lookup_model(str(checkpoint))
    if entry is not None:
        cached = cache_dir(cache) / entry.filename
        if cached.exists():
            return str(cached)
        logger.info("model %s is not in the cache yet: downloading it to %s", entry.name, cached)
        return str(download(entry.name, offline=offline, progress=progress, cache=cache))
    raise FileNotFoundError(
        f"checkpoint not found: {checkpoint} (neither a file nor a registered model name; "
        "`escn-ase download --list` shows the registered names)"
    )
