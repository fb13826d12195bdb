"""The storage slot of the container: Selector on storage_type, no I/O on construction."""

from __future__ import annotations

from pathlib import Path

import pytest

from ads_infra.config import StorageConfig
from ads_infra.containers import create_container
from ads_infra.errors import ConfigurationError
from ads_infra.storage import CloudStorageStrategy, FileStorageManager, LocalStorageStrategy

CONFIG = Path(__file__).resolve().parents[2] / "config.yml"


def test_local_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ADS_STORAGE_TYPE", raising=False)
    monkeypatch.setenv("ADS_STORAGE_PATH", str(tmp_path / "never-created"))
    container = create_container(CONFIG)
    manager = container.storage.manager()
    assert isinstance(manager, FileStorageManager)
    assert isinstance(container.storage.strategy(), LocalStorageStrategy)
    assert manager.strategy is container.storage.strategy()
    assert not (tmp_path / "never-created").exists()  # constructors do no I/O


def test_env_switches_to_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADS_STORAGE_TYPE", "s3")
    monkeypatch.setenv("ADS_S3_BUCKET", "creatives")
    monkeypatch.setenv("ADS_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-me")
    container = create_container(CONFIG)
    strategy = container.storage.strategy()
    assert isinstance(strategy, CloudStorageStrategy)
    assert container.storage.manager().target == "s3://creatives (http://127.0.0.1:9)"
    assert "do-not-print-me" not in repr(container.storage.settings())


def test_unknown_storage_type_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADS_STORAGE_TYPE", "ftp")
    with pytest.raises(ConfigurationError, match=r"storage\.storage_type.*local, s3"):
        create_container(CONFIG)


def test_encryption_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADS_STORAGE_ENCRYPTION_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ADS_STORAGE_ENCRYPTION_KEY"):
        FileStorageManager(StorageConfig(encryption_enabled=True))


def test_manager_builds_its_strategy_from_config() -> None:
    assert isinstance(FileStorageManager().strategy, LocalStorageStrategy)
    s3 = FileStorageManager(StorageConfig(storage_type="s3"))  # type: ignore[arg-type]
    assert isinstance(s3.strategy, CloudStorageStrategy)
    assert "s3" in repr(s3)
