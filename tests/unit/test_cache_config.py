"""CacheConfig validation and the container's backend switch (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ads_infra.cache import (
    CACHE_BACKENDS,
    CacheConfig,
    CacheManager,
    CacheType,
    MemoryCacheStrategy,
    RedisCacheStrategy,
    RedisClusterCacheStrategy,
    cache_backends,
)
from ads_infra.config import load_settings
from ads_infra.containers import create_container
from ads_infra.errors import ConfigurationError

CONFIG = Path(__file__).resolve().parents[2] / "config.yml"


def test_seed_fields_and_defaults() -> None:
    config = CacheConfig()
    assert (config.default_ttl, config.max_size, config.redis_max_connections) == (300, 1000, 50)
    assert config.cache_type is CacheType.MEMORY and config.redis_url is None
    assert config.compression_enabled and config.stats_enabled
    assert CacheConfig(cache_type="redis").cache_type is CacheType.REDIS  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("section", "key", "fragment"),
    [
        ({"cache_type": "memcached"}, "cache.cache_type", "allowed: memory, redis, redis_cluster"),
        ({"namespace": " "}, "cache.namespace", "must not be empty"),
        ({"serializer": "yaml"}, "cache.serializer", "allowed: json, msgpack, pickle"),
        ({"redis_url": "http://x"}, "cache.redis_url", "expected one of redis"),
        ({"max_size": 0}, "cache.max_size", ">= 1"),
        ({"max_sise": 10}, "cache.max_sise", "did you mean 'max_size'"),
    ],
)
def test_bad_values_name_the_key(section: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CacheConfig.from_dict(section, source="config.yml")
    assert caught.value.key == key and fragment in str(caught.value)


def test_redis_url_password_never_shows() -> None:
    config = CacheConfig(cache_type=CacheType.REDIS, redis_url="redis://u:topsecret@h:6379/0")
    assert "topsecret" not in repr(config)
    assert "topsecret" not in repr(CacheManager(config))
    assert "topsecret" not in repr(RedisCacheStrategy(config))
    with pytest.raises(ConfigurationError) as caught:
        CacheConfig(redis_url="redis://u:topsecret@h:port/0")
    assert "topsecret" not in str(caught.value)


@pytest.mark.parametrize(
    ("cache_type", "strategy_class"),
    [("memory", MemoryCacheStrategy), ("redis", RedisCacheStrategy),
     ("redis_cluster", RedisClusterCacheStrategy)],
)  # fmt: skip
def test_environment_switches_the_backend(
    monkeypatch: pytest.MonkeyPatch, cache_type: str, strategy_class: type
) -> None:
    monkeypatch.setenv("ADS_CACHE_TYPE", cache_type)
    monkeypatch.setenv("ADS_REDIS_URL", "redis://127.0.0.1:6390/3")
    container = create_container(CONFIG)
    manager = container.cache.manager()
    assert type(manager.strategy) is strategy_class
    assert manager is container.cache.manager()  # one manager per container
    assert manager.strategy is container.cache.strategy()
    if cache_type != "memory":
        assert manager.strategy.target == "redis://127.0.0.1:6390/3"


@pytest.mark.parametrize("cache_type", list(CacheType))
def test_container_and_bare_manager_choose_from_one_mapping(
    monkeypatch: pytest.MonkeyPatch, cache_type: CacheType
) -> None:
    monkeypatch.setenv("ADS_CACHE_TYPE", cache_type.value)
    container = create_container(CONFIG)
    # The built-in backends, and any installed plugin's (docs/plugins.md).
    assert set(container.cache.strategy.providers) == set(cache_backends())
    assert {t.value for t in CacheType} <= set(cache_backends())
    chosen = CACHE_BACKENDS[cache_type]
    assert type(container.cache.strategy()) is chosen
    assert type(CacheManager(CacheConfig(cache_type=cache_type)).strategy) is chosen


def test_config_file_section_loads() -> None:
    settings = load_settings(CONFIG, environ={})
    assert settings.cache.cache_type is CacheType.MEMORY
    assert settings.cache.namespace == "ads" and settings.cache.fallback_enabled
