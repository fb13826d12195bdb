"""Session lifecycle, the container's services, health checks, status and metrics."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from dependency_injector import providers

from ads_infra.config import AIProviderConfig, HttpConfig
from ads_infra.containers import create_container
from ads_infra.errors import ExternalServiceError
from ads_infra.external_services import (
    AIProviderService,
    ExternalServiceConfig,
    ExternalServiceManager,
)
from tests.integration.services.conftest import WEBHOOK_SECRET, Reply, Upstream, eventually
from tests.services import free_port

CONFIG_FILE = Path(__file__).resolve().parents[3] / "config.yml"


def openai_service(manager: ExternalServiceManager) -> AIProviderService:
    return AIProviderService(
        manager,
        AIProviderConfig(provider="openai", base_url="http://127.0.0.1:9", api_key="k"),  # type: ignore[arg-type]
    )


def test_constructors_do_no_io_and_need_no_loop() -> None:
    manager = ExternalServiceManager(HttpConfig(connector_limit=7))
    ai = openai_service(manager)
    assert manager._session is None
    assert ai.providers == ["offline", "openai"]
    assert manager.services == []  # registered by start(), not by the constructor


async def test_service_start_registers_and_async_with_closes() -> None:
    async with ExternalServiceManager() as manager, openai_service(manager) as ai:
        assert ai.started
        assert manager.services == ["ai.openai", "ai.offline"]
    # Closing the service leaves its providers registered: status still reports them.
    assert manager.services == ["ai.openai", "ai.offline"] and manager._session is None


async def test_first_use_registers_a_service_never_started(upstream: Upstream) -> None:
    # A provider swapped in after the container started (as a test override is)
    # is never start()ed: its first call registers it.
    async with ExternalServiceManager() as manager:
        ai = AIProviderService(
            manager,
            AIProviderConfig(provider="openai", base_url=upstream.url, api_key=upstream.api_key),  # type: ignore[arg-type]
        )
        response = await ai.generate_content(None, "Create an ad", "gpt-4")
        assert response.provider == "openai" and ai.started
        assert manager.services == ["ai.openai", "ai.offline"]


async def test_session_is_lazy_shared_and_closed_without_warning(upstream: Upstream) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = ExternalServiceManager(HttpConfig(connector_limit=7, connector_limit_per_host=3))
        manager.register_service("svc", ExternalServiceConfig(base_url=upstream.url))
        await manager.request("svc", "GET", "/fault/a")
        session = manager.session
        await manager.request("svc", "GET", "/fault/a")
        assert manager.session is session  # one session for every call
        assert session.connector is not None and session.connector.limit == 7
        assert session.connector.limit_per_host == 3
        await manager.close()
        assert session.closed
        # Usable again after close, on a new session, closed again.
        await manager.request("svc", "GET", "/fault/a")
        assert manager.session is not session
        await manager.close()
        del manager, session
        gc.collect()
    unclosed = [w for w in caught if "nclosed" in str(w.message)]
    assert unclosed == []

    # Control: a session left open does warn, so the check above can fail.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leaked = aiohttp.ClientSession()
        connector = leaked.connector
        del leaked
        gc.collect()
    assert connector is not None
    await connector.close()
    assert any("Unclosed client session" in str(w.message) for w in caught)


async def test_container_builds_starts_and_flushes_on_shutdown(upstream: Upstream) -> None:
    container = create_container(
        CONFIG_FILE,
        services={
            "ai": {"provider": "openai", "base_url": upstream.url, "api_key": upstream.api_key},
            "analytics": {"url": upstream.url, "write_key": upstream.write_key},
            "notifications": {"slack_webhook_url": f"{upstream.url}/services/T/B/X"},
        },
    )
    await container.init_resources()
    manager = container.services.manager()
    assert manager.session is not None and not manager.session.closed  # started
    ai = container.services.ai()
    assert ai.default_provider == "openai"
    response = await ai.generate_content(None, "Create an ad", "gpt-4")
    assert response.content == "Ad copy for: Create an ad"
    analytics = container.services.analytics()
    await analytics.track("generated", {"chars": len(response.content)}, user_id=1)
    await container.services.notifications().send_notification("slack", "done")
    assert analytics.pending == 1

    await container.shutdown_resources()

    assert manager._session is None
    assert [e["event"] for b in upstream.batches for e in b["batch"]] == ["generated"]
    assert upstream.slack[0]["text"] == "done"


def traced(
    calls: list[str], label: str, real: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        calls.append(label)
        await real()

    return call


async def test_container_starts_the_manager_first_and_closes_it_last(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = create_container(
        CONFIG_FILE,
        services={
            "ai": {"provider": "openai", "base_url": upstream.url, "api_key": upstream.api_key},
            "analytics": {"url": upstream.url, "write_key": upstream.write_key},
            "notifications": {
                "webhook_url": f"{upstream.url}/hooks/x",
                "webhook_secret": WEBHOOK_SECRET,
            },
        },
    )
    calls: list[str] = []
    parts = {
        "manager": container.services.manager(),
        "ai": container.services.ai(),
        "analytics": container.services.analytics(),
        "notifications": container.services.notifications(),
    }
    for name, part in parts.items():
        for verb in ("start", "close"):
            monkeypatch.setattr(part, verb, traced(calls, f"{name}.{verb}", getattr(part, verb)))

    await container.init_resources()

    assert calls[0] == "manager.start"
    assert sorted(calls[1:]) == ["ai.start", "analytics.start", "notifications.start"]
    assert sorted(parts["manager"].services) == [
        "ai.offline",
        "ai.openai",
        "analytics",
        "notifications.webhook",
    ]
    calls.clear()

    await container.shutdown_resources()

    assert sorted(calls[:3]) == ["ai.close", "analytics.close", "notifications.close"]
    # The manager closes analytics again before its session (a no-op by then): what
    # keeps a manager closed on its own from losing buffered events.
    assert calls[3:] == ["manager.close", "analytics.close"]


async def test_container_starts_only_what_the_config_selects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "ADS_AI_PROVIDER",
        "ADS_ANALYTICS_URL",
        "ADS_SLACK_WEBHOOK_URL",
        "ADS_WEBHOOK_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    container = create_container(CONFIG_FILE)
    await container.init_resources()
    manager = container.services.manager()
    try:
        # Offline AI only: analytics is off and no channel is configured.
        assert manager.services == ["ai.offline"]
        assert not container.services.analytics().enabled
    finally:
        await container.shutdown_resources()
    assert manager._session is None


async def test_a_stand_in_without_a_lifecycle_can_replace_a_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADS_AI_PROVIDER", raising=False)
    container = create_container(CONFIG_FILE)

    class FakeAI:
        default_provider = "fake"

    fake = FakeAI()
    with container.services.ai.override(providers.Object(fake)):
        await container.init_resources()
        assert container.services.ai() is fake
        await container.shutdown_resources()
    assert container.services.manager().services == []  # the real AI service never started


async def test_container_defaults_to_offline_and_reads_openai_from_env(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ADS_AI_PROVIDER", "ADS_AI_BASE_URL", "ADS_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    offline = create_container(CONFIG_FILE).services.ai()
    assert offline.default_provider == "offline" and offline.providers == ["offline"]
    assert "Budget" in (await offline.generate_content(None, "Budget shoes")).content

    monkeypatch.setenv("ADS_AI_PROVIDER", "openai")
    monkeypatch.setenv("ADS_AI_BASE_URL", upstream.url)
    monkeypatch.setenv("ADS_AI_API_KEY", upstream.api_key)
    container = create_container(CONFIG_FILE)
    ai = container.services.ai()
    try:
        response = await ai.generate_content(None, "Create an ad", "gpt-4")
    finally:
        await container.services.manager().close()
    assert response.provider == "openai" and response.content == "Ad copy for: Create an ad"


async def test_health_check_asks_services_with_a_health_path(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    await AIProviderService(manager).start()  # registers the offline provider
    manager.register_service(
        "up", ExternalServiceConfig(base_url=upstream.url, health_path="/fault/health")
    )
    manager.register_service(
        "sick", ExternalServiceConfig(base_url=upstream.url, health_path="/fault/sick")
    )
    manager.register_service(
        "down",
        ExternalServiceConfig(base_url=f"http://127.0.0.1:{free_port()}", health_path="/"),
    )
    manager.register_service("passive", ExternalServiceConfig(base_url=upstream.url))
    upstream.script("sick", Reply(503))

    reports = {r.component: r for r in await manager.health_check()}

    assert set(reports) == {
        "services.ai.offline",
        "services.up",
        "services.sick",
        "services.down",
        "services.passive",
    }
    assert reports["services.ai.offline"].healthy
    assert reports["services.up"].healthy and reports["services.up"].target == upstream.url
    assert not reports["services.sick"].healthy and "503" in reports["services.sick"].detail
    assert not reports["services.down"].healthy
    assert reports["services.passive"].healthy and reports["services.passive"].detail == (
        "no calls yet"
    )


async def test_status_per_service(upstream: Upstream, manager: ExternalServiceManager) -> None:
    manager.register_service("svc", ExternalServiceConfig(base_url=upstream.url, rate_limit=5))
    await manager.request("svc", "GET", "/fault/s")
    status = manager.get_service_status("svc")
    assert status["state"] == "closed" and status["requests"] == 1 and status["errors"] == 0
    assert status["latency_ms"] > 0 and status["last_success"] is not None
    assert status["rate_limit"] == 5 and status["base_url"] == upstream.url
    assert set(manager.get_service_status()) == {"svc"}


async def test_each_manager_has_its_own_metrics_registry(upstream: Upstream) -> None:
    one, two = ExternalServiceManager(), ExternalServiceManager()
    for manager in (one, two):  # the same names in the global registry would collide
        manager.register_service("svc", ExternalServiceConfig(base_url=upstream.url))
    try:
        await one.request("svc", "GET", "/fault/m")
        assert (
            one.metrics_registry.get_sample_value("ads_external_requests_total", {"service": "svc"})
            == 1
        )
        assert (
            two.metrics_registry.get_sample_value("ads_external_requests_total", {"service": "svc"})
            == 0
        )
    finally:
        await one.close()
        await two.close()


async def test_manager_as_context_manager_and_ai_health(upstream: Upstream) -> None:
    async with ExternalServiceManager() as manager:
        assert not manager.session.closed  # started on entry
        ai = AIProviderService(manager)
        await ai.register_provider("openai", ExternalServiceConfig(base_url=upstream.url))
        manager.register_service("other", ExternalServiceConfig(base_url=upstream.url))
        components = [r.component for r in await ai.health_check()]
        assert sorted(components) == ["services.ai.offline", "services.ai.openai"]
        session = manager.session
    assert session.closed


async def test_close_during_a_call_is_a_clear_error_not_a_breaker_failure(
    upstream: Upstream,
) -> None:
    manager = ExternalServiceManager()
    manager.register_service(
        "svc", ExternalServiceConfig(base_url=upstream.url, failure_threshold=1)
    )
    upstream.script("slow", Reply(delay=2.0))
    call = asyncio.create_task(manager.request("svc", "GET", "/fault/slow"))
    await eventually(lambda: upstream.count("slow") == 1)  # in flight upstream

    await manager.close()

    with pytest.raises(ExternalServiceError, match=r"svc: GET was cut off.*manager was closed"):
        await call
    status = manager.get_service_status("svc")
    assert status["state"] == "closed" and status["errors"] == 0
    assert upstream.count("slow") == 1  # not retried on a new session
    assert manager._session is None


async def test_close_during_a_retry_wait_ends_the_call_at_once(upstream: Upstream) -> None:
    manager = ExternalServiceManager()
    manager.register_service(
        "svc", ExternalServiceConfig(base_url=upstream.url, retry_after_cap=7200, deadline=None)
    )
    upstream.script("busy", Reply(503, "busy", {"Retry-After": "3600"}))
    call = asyncio.create_task(manager.request("svc", "GET", "/fault/busy"))
    await eventually(lambda: manager.get_service_status("svc")["errors"] == 1)  # waiting

    await manager.close()

    # Without the wake-up the call would sleep the hour it was asked to.
    with pytest.raises(ExternalServiceError, match="svc: GET was cut off"):
        await asyncio.wait_for(call, 30)
    status = manager.get_service_status("svc")
    assert status["consecutive_failures"] == 1  # the 503 counts; the cut-off does not
    assert upstream.count("busy") == 1
    assert manager._session is None  # no session reopened for the retry


async def test_health_check_reports_an_unexpected_error_instead_of_raising(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    config = ExternalServiceConfig(base_url=upstream.url, api_key="k", health_path="/fault/h")
    # Changed after validation, which refuses it: aiohttp then raises ValueError.
    object.__setattr__(config, "base_url", upstream.url.replace("http://", "http://user:pw@"))
    manager.register_service("odd", config)
    manager.register_service(
        "fine", ExternalServiceConfig(base_url=upstream.url, health_path="/fault/h")
    )

    reports = {r.component: r for r in await manager.health_check()}

    assert reports["services.fine"].healthy
    odd = reports["services.odd"]
    assert not odd.healthy and odd.detail.startswith("check failed: ValueError")
