"""Configuration reloads without I/O: which keys may change, the diff, applying whole or not at all.

The components are the real ones (a memory CacheManager on a hand-driven
clock, an ExternalServiceManager with an OpenAI-compatible AI service that is
registered but never called); documents are handed to
``reload_from_mapping``, which reads no file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ads_infra.cache import CacheManager, MemoryCacheStrategy
from ads_infra.containers import create_container
from ads_infra.core.reload import (
    RELOADABLE_KEYS,
    changed_keys,
    describe_changes,
    restart_only,
)
from ads_infra.core.reloader import ConfigReloader
from ads_infra.core.settings import CacheConfig, Settings
from ads_infra.external_services import AIProviderService, ExternalServiceManager
from ads_infra.external_services.breaker import CircuitState

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reload.md"
UPSTREAM = "http://127.0.0.1:9"  # never called: the tests look at what would be sent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _document(**sections: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "services": {"ai": {"provider": "openai", "base_url": UPSTREAM, "rate_limit": 40}}
    }
    for name, values in sections.items():
        if name == "ai":
            base["services"]["ai"].update(values)
        else:
            base[name] = values
    return base


class Parts:
    def __init__(self) -> None:
        self.settings = Settings.from_dict(_document(), prefix="")
        self.clock = Clock()
        config = self.settings.cache
        self.cache = CacheManager(config, MemoryCacheStrategy(config, clock=self.clock))
        self.services = ExternalServiceManager(self.settings.services.http)
        self.ai = AIProviderService(self.services, self.settings.services.ai)
        # The AI first: a later component's refusal must undo nothing of it.
        self.reloader = ConfigReloader(self.settings, {"services.ai": self.ai, "cache": self.cache})

    def count(self, result: str) -> float:
        value = self.reloader.metrics_registry.get_sample_value(
            "ads_config_reloads_total", {"result": result}
        )
        return value or 0.0


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    built = Parts()
    await built.ai.start()  # registers ai.openai with the manager; no I/O
    yield built
    await built.services.close()


@pytest.fixture
def package_level() -> Iterator[None]:
    logger = logging.getLogger("ads_infra")
    level = logger.level
    yield
    logger.setLevel(level)


# --- which keys, and the diff ---------------------------------------------------------


def test_the_reloadable_keys_are_the_documented_ones() -> None:
    table = set(re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \|", DOCS.read_text(), re.M))
    assert table == RELOADABLE_KEYS
    assert "services.ai.rate_limit" in RELOADABLE_KEYS
    assert "database.url" not in RELOADABLE_KEYS and "cache.cache_type" not in RELOADABLE_KEYS


def test_changed_keys_are_dotted_and_restart_only_ones_are_picked() -> None:
    old = Settings()
    new = Settings.from_dict(
        {"cache": {"default_ttl": 60, "cache_type": "redis"}, "logging": {"level": "debug"}},
        prefix="",
    )
    keys = changed_keys(old, new)
    assert keys == ["cache.default_ttl", "cache.cache_type", "cache.redis_url", "logging.level"]
    assert restart_only(keys) == ["cache.cache_type", "cache.redis_url"]
    assert changed_keys(old, Settings()) == []


def test_described_changes_mask_secrets_and_url_passwords() -> None:
    old = Settings()
    new = Settings.from_dict(
        {
            "services": {"ai": {"api_key": "sk-very-secret"}},
            "coordination": {"redis_url": "redis://user:hunter2@cache:6379/0"},
        },
        prefix="",
    )
    text = describe_changes(old, new, changed_keys(old, new))
    assert "sk-very-secret" not in text and "hunter2" not in text
    assert "services.ai.api_key (null -> ********)" in text
    assert "redis://user:***@cache:6379/0" in text


# --- applying -------------------------------------------------------------------------


async def test_a_reload_reaches_every_component_at_once(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = parts.services.breaker("ai.openai")
    breaker.failure(breaker.admit())  # one failure on the count: kept through the reload
    document = _document(
        ai={"rate_limit": 5, "model": "gpt-4.1", "temperature": 0.2, "failure_threshold": 2,
            "max_retries": 1},
        cache={"default_ttl": 10},
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="ads_infra.config"):
        result = parts.reloader.reload_from_mapping(document, origin="test")
    assert result.result == "applied"
    assert set(result.keys) == {
        "cache.default_ttl", "services.ai.model", "services.ai.rate_limit",
        "services.ai.max_retries", "services.ai.failure_threshold", "services.ai.temperature",
    }  # fmt: skip
    assert [r.getMessage() for r in caplog.records] == [result.message]
    assert "services.ai.rate_limit (40 -> 5)" in result.message
    # The AI service: what the next call sends, how it is paced, retried and broken.
    assert (parts.ai.config.model, parts.ai.config.temperature) == ("gpt-4.1", 0.2)
    upstream = parts.services.get_config("ai.openai")
    assert (upstream.rate_limit, upstream.max_retries, upstream.failure_threshold) == (5, 1, 2)
    assert breaker is parts.services.breaker("ai.openai") and breaker.failures == 1
    breaker.failure(breaker.admit())
    assert breaker.state is CircuitState.OPEN  # the new threshold, 2, counted the old failure
    # The cache: a write without a ttl now lives 10 s, not 300.
    await parts.cache.set("ad:1", {"headline": "Hi"})
    parts.clock.now += 11
    assert await parts.cache.get("ad:1") is None
    assert parts.reloader.current.cache.default_ttl == 10
    assert parts.count("applied") == 1


async def test_a_restart_only_key_refuses_the_whole_reload(parts: Parts) -> None:
    document = _document(ai={"model": "gpt-4.1"}, database={"pool_size": 9})
    result = parts.reloader.reload_from_mapping(document, origin="test")
    assert (result.result, result.keys) == ("refused", ("database.pool_size",))
    assert "database.pool_size needs a restart" in result.message
    assert parts.ai.config.model == "gpt-4o-mini"  # the reloadable change was not applied
    assert parts.reloader.current is parts.settings
    assert parts.count("refused") == 1 and parts.count("applied") == 0


async def test_a_component_that_refuses_stops_the_others_before_they_apply(parts: Parts) -> None:
    # Two-level copies in front of a remote cache: local_ttl to 0 turns them off.
    config = CacheConfig(cache_type="redis", two_level=True, local_ttl=5)
    remote = CacheManager(config)  # built, never started: no connection is opened
    settings = Settings.from_dict({**_document(), "cache": config.to_dict()}, prefix="")
    reloader = ConfigReloader(settings, {"services.ai": parts.ai, "cache": remote})
    document = _document(ai={"model": "gpt-4.1"}, cache={**config.to_dict(), "local_ttl": 0})
    result = reloader.reload_from_mapping(document, origin="test")
    assert (result.result, result.keys) == ("refused", ("cache.local_ttl",))
    assert parts.ai.config.model == "gpt-4o-mini"
    assert reloader.current is settings


async def test_an_invalid_document_keeps_the_configuration_in_force(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ads_infra.config"):
        result = parts.reloader.reload_from_mapping(
            _document(ai={"rate_limit": 0, "model": "gpt-4.1"}), origin="test"
        )
    assert result.result == "invalid"
    assert "services.ai.rate_limit: must be >= 1" in result.message
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", result.message)]
    assert parts.services.get_config("ai.openai").rate_limit == 40
    assert parts.ai.config.model == "gpt-4o-mini"
    not_a_mapping: Any = ["services"]
    assert parts.reloader.reload_from_mapping(not_a_mapping, origin="x").result == "invalid"
    assert parts.count("invalid") == 2


async def test_the_same_document_is_unchanged(parts: Parts) -> None:
    assert parts.reloader.reload_from_mapping(_document(), origin="test").result == "unchanged"
    assert parts.count("unchanged") == 1


async def test_the_log_level_follows_the_configuration(parts: Parts, package_level: None) -> None:
    logger = logging.getLogger("ads_infra")
    logger.setLevel(logging.NOTSET)
    settings = Settings.from_dict({"logging": {"level": "warning"}}, prefix="")
    await ConfigReloader(settings).start()  # set at startup too
    assert logger.level == logging.WARNING
    assert parts.reloader.reload_from_mapping(
        _document(logging={"level": "debug"}), origin="test"
    ).keys == ("logging.level",)
    assert logger.level == logging.DEBUG
    parts.reloader.reload_from_mapping(_document(), origin="test")
    assert logger.level == logging.NOTSET  # unset: the host's configuration again


async def test_follow_reloads_each_document_of_a_watch(parts: Parts) -> None:
    async def watch() -> AsyncIterator[dict[str, Any]]:
        yield _document(ai={"rate_limit": 20})
        yield _document(ai={"rate_limit": 0})  # invalid: skipped, logged
        yield _document(ai={"rate_limit": 7})

    await parts.reloader.follow(watch(), origin="watch")
    assert parts.services.get_config("ai.openai").rate_limit == 7
    assert (parts.count("applied"), parts.count("invalid")) == (2, 1)


async def test_the_container_serves_the_reloaded_settings() -> None:
    container = create_container()  # packaged defaults; nothing is started
    reloader = container.reloader()
    for ttl in (60, 90, 120):
        document = container.settings().to_dict()
        document["cache"]["default_ttl"] = ttl
        assert reloader.reload_from_mapping(document, origin="test").result == "applied"
    assert container.settings().cache.default_ttl == 120
    assert container.cache.settings().default_ttl == 120
    assert container.config.cache.default_ttl() == 120
    assert container.cache.manager().config.default_ttl == 120
    # One layer of override, however many reloads.
    assert len(container.settings.overridden) == 1
    assert len(container.config.overridden) == 1


def test_sighup_outside_the_main_thread_is_a_warning_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reloader = ConfigReloader(Settings())

    async def install() -> None:
        reloader.install_sighup()
        await reloader.close()

    with caplog.at_level(logging.WARNING, logger="ads_infra.config"):
        thread = threading.Thread(target=asyncio.run, args=(install(),))
        thread.start()
        thread.join()
    assert ["SIGHUP will not reload" in r.getMessage() for r in caplog.records] == [True]
