"""Configuration validation: each kind of bad input gets a ConfigurationError naming key, file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ads_infra.config import (
    CacheConfig,
    CacheType,
    DatabaseConfig,
    Secret,
    Settings,
    StorageType,
    load_settings,
    mask_url,
)
from ads_infra.core.loader import config_lookup
from ads_infra.core.template import render_config
from ads_infra.errors import ConfigurationError, InfrastructureError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def test_repository_config_loads_on_embedded_defaults() -> None:
    settings = load_settings(REPO_CONFIG, environ={})
    assert settings.database.url == "sqlite+aiosqlite:///./var/ads.db"
    assert settings.cache.cache_type is CacheType.MEMORY
    assert settings.storage.storage_type is StorageType.LOCAL
    assert settings.storage.base_path == "./var/storage"
    assert settings.storage.s3_endpoint_url is None
    assert settings.services.ai.provider == "offline"
    assert settings.services.ai.api_key is None


def test_every_design_environment_variable_switches_the_repository_config() -> None:
    environ = {
        "ADS_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        "ADS_CACHE_TYPE": "redis_cluster",
        "ADS_REDIS_URL": "redis://127.0.0.1:7000/0",
        "ADS_STORAGE_TYPE": "s3",
        "ADS_STORAGE_PATH": "/srv/ads",
        "ADS_S3_BUCKET": "creatives",
        "ADS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "ADS_AI_PROVIDER": "openai",
        "ADS_AI_API_KEY": "sk-live-123",
        "ADS_AI_BASE_URL": "http://127.0.0.1:8080",
    }
    s = load_settings(REPO_CONFIG, environ=environ)
    assert s.database.url == environ["ADS_DATABASE_URL"]
    assert s.cache.cache_type is CacheType.REDIS_CLUSTER
    assert s.cache.redis_url == environ["ADS_REDIS_URL"]
    assert s.storage.storage_type is StorageType.S3
    assert s.storage.base_path == "/srv/ads"
    assert s.storage.s3_bucket == "creatives"
    assert s.storage.s3_endpoint_url == "http://127.0.0.1:9000"
    assert s.services.ai.provider == "openai"
    assert s.services.ai.base_url == "http://127.0.0.1:8080"
    assert isinstance(s.services.ai.api_key, Secret)
    assert s.services.ai.api_key.get_secret_value() == "sk-live-123"


def test_environment_strings_are_coerced_to_field_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "database:\n  pool_size: ${POOL}\n  echo: ${ECHO:false}\n  retry_delay: ${DELAY}\n",
    )
    s = load_settings(path, environ={"POOL": "7", "ECHO": "yes", "DELAY": "0.5"})
    assert (s.database.pool_size, s.database.echo, s.database.retry_delay) == (7, True, 0.5)


@pytest.mark.parametrize(
    ("document", "key", "fragment"),
    [
        ("cache: {cache_type: memcached}", "cache.cache_type", "memory, redis, redis_cluster"),
        ("cache: {cache_typ: redis}", "cache.cache_typ", "did you mean 'cache_type'"),
        ("databse: {url: x}", "databse", "unknown key"),
        ("database: {pool_size: twenty}", "database.pool_size", "whole number"),
        ("database: {pool_size: 0}", "database.pool_size", ">= 1"),
        ("database: {echo: maybe}", "database.echo", "true or false"),
        ("database: {url: 'not a url'}", "database.url", "not a URL"),
        ("database: {url: 'mysql://h/db'}", "database.url", "expected one of"),
        ("database: {url: 'postgresql+psycopg2://h/db'}", "database.url", "not async"),
        ("database: {url: 'postgresql://h:99999x/db'}", "database.url", "malformed port"),
        ("cache: {redis_url: 'http://h:6379'}", "cache.redis_url", "expected one of"),
        ("cache: {serializer: yaml}", "cache.serializer", "json, msgpack, pickle"),
        ("storage: {storage_type: gcs}", "storage.storage_type", "local, s3"),
        ("storage: {s3_endpoint_url: 'ftp://h'}", "storage.s3_endpoint_url", "expected one of"),
        ("storage: {allowed_extensions: 5}", "storage.allowed_extensions", "expected a list"),
        ("services: {ai: {provider: bard}}", "services.ai.provider", "offline, openai"),
        ("services: {ai: {temprature: 1}}", "services.ai.temprature", "temperature"),
        ("services: {http: {connector_limit: -1}}", "services.http.connector_limit", ">= 0"),
        ("cache: [1, 2]", "cache", "expected a mapping"),
    ],
)
def test_bad_values_name_key_problem_and_file(
    tmp_path: Path, document: str, key: str, fragment: str
) -> None:
    path = write(tmp_path, document + "\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={})
    error = info.value
    assert error.key == key
    assert error.source == str(path)
    message = str(error)
    assert message.startswith(f"{key}: ")
    assert fragment in message
    assert str(path) in message


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"not valid YAML at line \d"):
        load_settings(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="mapping of sections"):
        load_settings(write(tmp_path, "- a\n- b\n"))


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"ADS_INFRA_CONFIG") as info:
        load_settings(tmp_path / "absent.yml")
    assert info.value.source == str(tmp_path / "absent.yml")


def test_ads_infra_config_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "cache: {max_size: 42}\n")
    monkeypatch.setenv("ADS_INFRA_CONFIG", str(path))
    assert load_settings().cache.max_size == 42


def test_overrides_merge_over_the_file_and_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, "cache: {max_size: 42, cache_type: memory}\n")
    s = load_settings(path, {"cache": {"cache_type": "redis"}})
    assert (s.cache.max_size, s.cache.cache_type) == (42, CacheType.REDIS)
    with pytest.raises(ConfigurationError, match=r"cache\.cache_type"):
        load_settings(path, {"cache": {"cache_type": "nope"}})


def test_errors_belong_to_the_hierarchy() -> None:
    with pytest.raises(InfrastructureError):
        CacheConfig(cache_type="memcached")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # ConfigurationError is also a ValueError
        DatabaseConfig(pool_size=-1)


def test_direct_construction_keeps_seed_defaults_except_unsafe_retries_and_pools() -> None:
    db = DatabaseConfig(url="postgresql+asyncpg://user:pass@localhost/ads_db")
    # The seed's 20 + 30 let two processes exhaust a default server (100 connections);
    # the ping cost three round trips per checkout and bought nothing (ads-infra bench db).
    assert (db.pool_size, db.max_overflow, db.pool_pre_ping) == (5, 5, False)
    assert (db.pool_recycle, db.pool_timeout, db.echo) == (3600, 30, False)
    assert db.max_retries == 5  # the seed's 100 would hang a caller for hours
    # The seed's 1 s first delay, doubling, kept a caller waiting tens of seconds.
    assert (db.retry_delay, db.retry_max_delay) == (0.2, 5.0)
    cache = CacheConfig()
    assert (cache.default_ttl, cache.max_size, cache.redis_max_connections) == (300, 1000, 50)


def test_sync_urls_are_upgraded_to_async_drivers() -> None:
    assert DatabaseConfig(url="postgresql://u@h/db").url == "postgresql+asyncpg://u@h/db"
    assert DatabaseConfig(url="sqlite:///x.db").url == "sqlite+aiosqlite:///x.db"


def test_redis_url_is_filled_when_redis_is_selected_without_one() -> None:
    assert CacheConfig(cache_type=CacheType.REDIS).redis_url == "redis://127.0.0.1:6379/0"
    assert CacheConfig().redis_url is None


# --- secrets ----------------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    secret = Secret("sk-very-secret")
    for rendering in (repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret, "")):
        assert "sk-very-secret" not in rendering
    assert secret.get_secret_value() == "sk-very-secret"


def test_masked_settings_and_repr_hold_no_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "database: {url: 'postgresql+asyncpg://ads:hunter2@127.0.0.1/db'}\n"
        "cache: {redis_url: 'redis://:redispw@127.0.0.1:6379/0'}\n"
        "storage:\n  encryption_key: ${KEY}\n"
        "services:\n  ai:\n    api_key: ${AI}\n"
        "  notifications:\n    slack_webhook_url: ${HOOK}\n",
    )
    environ = {"KEY": "k" * 32, "AI": "sk-abc123", "HOOK": "https://hooks.example/T0/B0/XYZ"}
    settings = load_settings(path, environ=environ)
    for rendering in (repr(settings), str(settings.masked()), repr(settings.services)):
        for secret in ("hunter2", "redispw", "k" * 32, "sk-abc123", "XYZ"):
            assert secret not in rendering
    assert "ads:***@127.0.0.1" in repr(settings.database)


def test_a_bad_webhook_url_error_does_not_echo_the_url(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  notifications:\n    webhook_url: ${HOOK}\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={"HOOK": "hooks.example/T0/B0/SECRETPART"})
    assert info.value.key == "services.notifications.webhook_url"
    assert "SECRETPART" not in str(info.value)


def test_a_bad_database_url_error_masks_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        DatabaseConfig(url="mysql://root:topsecret@h/db")
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///./var/ads.db", "sqlite+aiosqlite:///./var/ads.db"),
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://postgres@h/db", "postgresql://postgres@h/db"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        (
            "https://api.example/v1?api_key=abc&model=x",
            "https://api.example/v1?api_key=***&model=x",
        ),
        ("", ""),
        # Unencoded delimiters in a password end urlsplit's host part early.
        ("redis://:k3J/x+Yz==@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://:pa#ss@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://:p?w@host/0", "redis://:***@host/0"),
        ("redis://:p@ss/word@host/0", "redis://:***@host/0"),
        ("postgresql://u:pw@h/db?email=a@b", "postgresql://u:***@h/db?email=***"),
        # Every query value not known safe is masked: Azure Functions' ?code=, a ?sig=.
        (
            "https://fn.azurewebsites.net/api/hook?code=s3cr3t&api-version=2",
            "https://fn.azurewebsites.net/api/hook?code=***&api-version=2",
        ),
        ("postgresql://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgresql://u:pw@h/db?sslpassword=x#f", "postgresql://u:***@h/db?sslpassword=***#f"),
        ("sqlite+aiosqlite:///./var/a@b.db", "sqlite+aiosqlite:///./var/a@b.db"),
        ("u:secret@h", "<url with credentials>"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


@pytest.mark.parametrize(
    "url", ["redis://:k3J/x+Yz==@cache:6379/0", "redis://:pa#ss@h/0", "redis://:p?w@h/0"]
)
def test_an_unencoded_password_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must be percent-encoded") as info:
        CacheConfig(cache_type="redis", redis_url=url)
    secret = url.split("://:", 1)[1].rsplit("@", 1)[0]
    assert secret not in str(info.value)
    assert "redis_url" in str(info.value)


def test_settings_round_trip_through_to_dict() -> None:
    settings = Settings()
    assert Settings.from_dict(settings.to_dict()) == settings


def test_the_shipped_config_file_holds_the_dataclass_defaults() -> None:
    """One source for every default: config.yml is generated from the dataclasses."""
    assert REPO_CONFIG.read_text() == render_config(), "regenerate: ads-infra config init --force"
    assert load_settings(REPO_CONFIG, environ={}) == Settings()


def test_with_no_file_anywhere_the_packaged_defaults_and_the_environment_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yml here
    environ = {"ADS_CACHE_TYPE": "redis", "ADS_DATABASE_URL": "postgresql://u@db/ads"}
    settings = load_settings(environ=environ)
    assert settings.cache.cache_type is CacheType.REDIS
    assert settings.database.url == "postgresql+asyncpg://u@db/ads"
    assert settings.storage == Settings().storage
    assert [used for *_, used in config_lookup(environ=environ)] == [False, False, False, True]


def test_the_lookup_order_is_explicit_path_variable_local_file_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yml").write_text("cache: {max_size: 7}\n")
    other = tmp_path / "other.yml"
    other.write_text("cache: {max_size: 8}\n")
    assert load_settings(environ={}).cache.max_size == 7
    assert load_settings(environ={"ADS_INFRA_CONFIG": str(other)}).cache.max_size == 8
    explicit = tmp_path / "explicit.yml"
    explicit.write_text("cache: {max_size: 9}\n")
    assert load_settings(explicit, environ={"ADS_INFRA_CONFIG": str(other)}).cache.max_size == 9
    with pytest.raises(ConfigurationError, match="ads-infra config init"):
        load_settings(environ={"ADS_INFRA_CONFIG": str(tmp_path / "missing.yml")})


def test_a_bad_value_from_the_environment_names_the_variable_not_the_file() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(REPO_CONFIG, environ={"ADS_CACHE_TYPE": "redis_clustr"})
    message = str(caught.value)
    assert message.startswith("ADS_CACHE_TYPE=redis_clustr (cache.cache_type): unknown value")
    assert "config.yml" not in message


def test_an_unset_variable_without_default_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ads.yml"
    path.write_text("database:\n  pool_size: ${MY_POOL}\n")
    with pytest.raises(ConfigurationError, match=r"^MY_POOL is not set \(database.pool_size\)"):
        load_settings(path, environ={})


def test_a_secret_from_the_environment_is_not_repeated() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(REPO_CONFIG, environ={"ADS_AI_BASE_URL": "ftp://user:hunter2@x"})
    assert "hunter2" not in str(caught.value) and "ADS_AI_BASE_URL=" in str(caught.value)


def test_sections_are_frozen() -> None:
    config = CacheConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_size = 5  # type: ignore[misc]
    assert dataclasses.replace(config, max_size=5).max_size == 5


def test_managers_built_with_no_config_honour_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ads_infra.database import DatabaseManager
    from ads_infra.storage import FileStorageManager

    monkeypatch.setenv("ADS_DATABASE_URL", "postgresql://u@db.internal/ads")
    monkeypatch.setenv("ADS_STORAGE_PATH", str(tmp_path / "files"))
    assert DatabaseManager().config.url == "postgresql+asyncpg://u@db.internal/ads"
    assert FileStorageManager().config.base_path == str(tmp_path / "files")
    assert DatabaseConfig().url == "sqlite+aiosqlite:///./var/ads.db"  # a bare config: defaults
