"""Checkpoint registry: download from a local file:// URL with sha256 checks, cache, offline mode."""

from __future__ import annotations

import hashlib

import pytest

from escn_ase import registry
from escn_ase.cli import main
from escn_ase.errors import CheckpointError

PAYLOAD = b"not really a checkpoint, but bytes with a known hash\n" * 100


@pytest.fixture
def source(tmp_path, monkeypatch):
    """A file served through a file:// URL, an empty cache, and a registry restored afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setenv("ESCN_ASE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ESCN_ASE_OFFLINE", raising=False)
    path = tmp_path / "served" / "model.pt"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path.as_uri()


def test_download_with_good_hash_then_resolve(source, tmp_path):
    registry.register_model("test-model", source, hashlib.sha256(PAYLOAD).hexdigest())
    path = registry.download("test-model")
    assert path == tmp_path / "cache" / "model.pt" and path.read_bytes() == PAYLOAD
    assert registry.resolve_checkpoint("test-model") == str(path)
    assert registry.resolve_checkpoint("model.pt") == str(path)  # the file name works as well


def test_registered_name_downloads_on_first_use(source, tmp_path, monkeypatch):
    registry.register_model("test-model", source, hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setenv("ESCN_ASE_OFFLINE", "1")
    with pytest.raises(registry.OfflineError, match="escn-ase download test-model"):
        registry.resolve_checkpoint("test-model")  # offline: nothing fetched, and the error says what to do
    assert not (tmp_path / "cache" / "model.pt").exists()
    monkeypatch.delenv("ESCN_ASE_OFFLINE")
    path = registry.resolve_checkpoint("test-model", progress=False)
    assert path == str(tmp_path / "cache" / "model.pt") and (tmp_path / "cache" / "model.pt").read_bytes() == PAYLOAD
    # An explicit cache directory is used as given (the CLI's --cache-dir), without touching the environment.
    other = tmp_path / "other-cache"
    assert registry.resolve_checkpoint("test-model", progress=False, cache=other) == str(other / "model.pt")
    assert registry.cache_dir() == tmp_path / "cache"


def test_download_with_bad_hash_keeps_nothing(source, tmp_path):
    registry.register_model("test-model", source, "0" * 64)
    with pytest.raises(registry.ChecksumError, match="sha256 mismatch"):
        registry.download("test-model")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())  # neither the file nor a partial download


def test_unknown_hash_is_recorded(source, tmp_path):
    registry.register_model("test-model", source, None)
    path = registry.download("test-model")
    recorded = (tmp_path / "cache" / "model.pt.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(PAYLOAD).hexdigest() == registry.sha256_of(path)


def test_offline_mode(source, monkeypatch):
    registry.register_model("test-model", source, None)
    monkeypatch.setenv("ESCN_ASE_OFFLINE", "1")
    with pytest.raises(registry.OfflineError, match="offline"):
        registry.download("test-model")
    path = registry.download("test-model", offline=False)  # an explicit argument wins over the variable
    assert registry.download("test-model") == path  # cached: fine offline


def test_cli_download_and_list(source, tmp_path, capsys):
    registry.register_model("test-model", source, hashlib.sha256(PAYLOAD).hexdigest())
    assert main(["download", "test-model", "--no-progress"]) == 0
    assert hashlib.sha256(PAYLOAD).hexdigest() in capsys.readouterr().out
    assert main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "escn_l6_m2_lay12_all_md_s2ef" in listing and "test-model" in listing and "cached" in listing


def test_registered_oc20_models_and_bad_names():
    names = {m.name for m in registry.list_models()}
    assert {
        "escn_l4_m2_lay12_2M_s2ef",
        "escn_l6_m2_lay12_2M_s2ef",
        "escn_l6_m2_lay12_all_md_s2ef",
        "escn_l6_m3_lay20_all_md_s2ef",
    } <= names
    entry = registry.lookup_model("escn_l6_m3_lay20_all_md_s2ef.pt")
    assert entry.url == (
        "https://dl.fbaipublicfiles.com/opencatalystproject/models/2023_03/s2ef/escn_l6_m3_lay20_all_md_s2ef.pt"
    )
    with pytest.raises(CheckpointError, match="unknown model name"):
        registry.download("no-such-model")
    with pytest.raises(FileNotFoundError, match="registered model name"):
        registry.resolve_checkpoint("no-such-model")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        registry.register_model("x", "file:///x.pt", "abc")


def test_a_missing_default_model_is_an_error_everywhere(tmp_path, monkeypatch):
    """No silent stand-in: the calculator, default_calculator() and the workflows' factory all refuse."""
    from escn_ase import ESCNCalculator
    from escn_ase.workflows import CalculatorFactory, default_calculator

    monkeypatch.setenv("ESCN_ASE_DEFAULT_MODEL", str(tmp_path / "absent.pt"))
    for make in (ESCNCalculator, default_calculator, CalculatorFactory(None)):
        with pytest.raises(CheckpointError, match="the default model is missing.*git checkout -- models/"):
            make()
