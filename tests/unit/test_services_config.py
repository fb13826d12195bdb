"""ExternalServiceConfig validation and secrecy; registration errors; no I/O in constructors.

The services' constructors neither open anything nor touch the manager; start()
registers their upstreams with it.
"""

from __future__ import annotations

import pytest

from ads_infra.config import AIProviderConfig, Secret, ServicesConfig
from ads_infra.errors import ConfigurationError
from ads_infra.external_services import (
    AIProviderService,
    AnalyticsService,
    ExternalServiceConfig,
    ExternalServiceManager,
    NotificationService,
    ServiceType,
)
from ads_infra.external_services.response import upstream_message


def test_seed_fields_and_the_key_held_as_a_secret() -> None:
    config = ExternalServiceConfig(
        service_type=ServiceType.AI_PROVIDER,
        base_url="https://api.openai.com/",
        api_key="your_key",
        rate_limit=100,
    )
    assert isinstance(config.api_key, Secret)
    assert config.api_key.get_secret_value() == "your_key"
    assert config.base_url == "https://api.openai.com"
    assert "your_key" not in repr(config) and "your_key" not in str(config.masked())


def test_values_from_strings_are_coerced() -> None:
    config = ExternalServiceConfig.from_dict(
        {"service_type": "analytics", "base_url": "http://x", "rate_limit": "5", "timeout": "2"}
    )
    assert config.service_type is ServiceType.ANALYTICS
    assert config.rate_limit == 5 and config.timeout == 2.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "base_url: is required"),
        ({"base_url": "ftp://x"}, "base_url: .*scheme 'ftp'"),
        ({"base_url": "http://x", "rate_period": 0}, "rate_period: must be > 0"),
        ({"base_url": "http://x", "rate_limit": 0}, "rate_limit: must be >= 1"),
        ({"base_url": "http://x", "service_type": "fax"}, "service_type: unknown value 'fax'"),
        ({"base_url": "http://x", "failure_threshold": 0}, "failure_threshold: must be >= 1"),
        ({"base_url": "http://x", "timeout": "inf"}, "timeout: must be a finite number"),
        ({"base_url": "http://x", "health_path": "health"}, "health_path: 'health' must start"),
        (
            {"base_url": "http://user:pw@x", "api_key": "k"},
            r"base_url: holds credentials \(user:password@\) and api_key is set too",
        ),
    ],
)
def test_bad_values_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ExternalServiceConfig(**fields)  # type: ignore[arg-type]


def test_credentials_in_the_url_alone_are_allowed() -> None:
    # Only the combination is refused: aiohttp cannot send both.
    assert ExternalServiceConfig(base_url="http://user:pw@x").base_url == "http://user:pw@x"
    ExternalServiceConfig(base_url="http://user:pw@x", api_key="k", auth_scheme="none")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as err:
        ExternalServiceConfig(base_url="http://user:TOPSECRET@x", api_key="k")
    assert "TOPSECRET" not in str(err.value)


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigurationError, match="unknown key; did you mean 'rate_limit'"):
        ExternalServiceConfig.from_dict({"base_url": "http://x", "rate_limt": 3})


def test_unknown_service_is_a_clear_error() -> None:
    manager = ExternalServiceManager()
    manager.register_service("crm", ExternalServiceConfig(base_url="http://x"))
    with pytest.raises(ConfigurationError, match=r"'billing' is registered \(registered: crm\)"):
        manager.get_service_status("billing")
    with pytest.raises(ConfigurationError, match="expected an ExternalServiceConfig"):
        manager.register_service("bad", {"base_url": "http://x"})  # type: ignore[arg-type]


SETTINGS = {
    "ai": {"provider": "openai", "api_key": "sk-x"},
    "analytics": {"url": "http://127.0.0.1:9/v1/batch", "write_key": "w"},
    "notifications": {"slack_webhook_url": "http://127.0.0.1:9/services/a/b"},
}


def test_constructors_open_nothing_and_register_nothing() -> None:
    settings = ServicesConfig.from_dict(SETTINGS)
    manager = ExternalServiceManager(settings.http)
    ai = AIProviderService(manager, settings.ai)
    analytics = AnalyticsService(manager, settings.analytics)
    notifications = NotificationService(manager, settings.notifications)
    assert manager._session is None
    assert manager.services == []  # the container (or start()) composes them, not the constructor
    assert ai.providers == ["offline", "openai"] and notifications.channels == ["slack"]
    assert not (ai.started or analytics.started or notifications.started)


async def test_start_registers_what_the_config_names() -> None:
    settings = ServicesConfig.from_dict(SETTINGS)
    manager = ExternalServiceManager(settings.http)
    analytics = AnalyticsService(manager, settings.analytics)
    for service in (
        AIProviderService(manager, settings.ai),
        analytics,
        NotificationService(manager, settings.notifications),
    ):
        await service.start()
        await service.start()  # idempotent
    assert manager._session is None  # registering is no I/O
    assert sorted(manager.services) == [
        "ai.offline",
        "ai.openai",
        "analytics",
        "notifications.slack",
    ]
    assert manager.get_config("ai.openai").base_url == "https://api.openai.com"
    assert manager.get_config("analytics").base_url == "http://127.0.0.1:9"  # /v1/batch stripped
    assert analytics.pending == 0


async def test_ai_config_defaults_to_offline() -> None:
    manager = ExternalServiceManager()
    ai = AIProviderService(manager, AIProviderConfig())
    await ai.start()
    assert ai.default_provider == "offline" and manager.services == ["ai.offline"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "quota exceeded", "type": "x"}}', "quota exceeded"),
        (b'{"error": "invalid_token"}', "invalid_token"),
        (b'{"message": "nope"}', "nope"),
        (b"no_service", "no_service"),
        (b"", ""),
    ],
)
def test_upstream_error_message_extraction(body: bytes, message: str) -> None:
    assert upstream_message(body) == message
