"""No API key, write key or webhook path in logs, exception texts, reprs, status or metrics."""

from __future__ import annotations

import base64
import logging
import traceback

import pytest
from prometheus_client import generate_latest

from ads_infra.config import AIProviderConfig, AnalyticsConfig, NotificationsConfig
from ads_infra.errors import ExternalServiceError
from ads_infra.external_services import (
    AIProviderService,
    AnalyticsService,
    ExternalServiceConfig,
    ExternalServiceManager,
    NotificationService,
)
from tests.integration.services.conftest import WEBHOOK_SECRET, Reply, Upstream
from tests.services import free_port

API_KEY = "sk-live-TOPSECRET-4242424242"
WRITE_KEY = "wk-live-TOPSECRET-1717171717"
HOOK_PATH = "/fault/T0001-B0002-TOPSECRETHOOK"


def describe(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


async def test_a_failing_run_leaks_no_secret(
    upstream: Upstream, manager: ExternalServiceManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, aiohttp's loggers included
    texts: list[str] = []
    fast = {"retry_backoff": 0.01, "max_retries": 1}

    # The AI provider: wrong key (the upstream echoes it back, as OpenAI does), 500s
    # whose body quotes it, a timeout, and a refused connection.
    ai = AIProviderService(
        manager,
        AIProviderConfig(provider="openai", base_url=upstream.url, api_key=API_KEY),  # type: ignore[arg-type]
    )
    manager.register_service(
        "echo", ExternalServiceConfig(base_url=upstream.url, api_key=API_KEY, **fast)
    )
    manager.register_service(
        "slow", ExternalServiceConfig(base_url=upstream.url, api_key=API_KEY, timeout=0.1, **fast)
    )
    manager.register_service(
        "gone",
        ExternalServiceConfig(base_url=f"http://127.0.0.1:{free_port()}", api_key=API_KEY, **fast),
    )
    upstream.script("echo", *[Reply(500, {"error": {"message": f"bad key {API_KEY}"}})] * 2)
    upstream.script("slow", Reply(delay=1.0), Reply(delay=1.0))
    # Analytics with a write key the upstream rejects, echoing the Basic token.
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    analytics = AnalyticsService(
        manager,
        AnalyticsConfig(url=upstream.url, write_key=WRITE_KEY, max_retries=0),  # type: ignore[arg-type]
        service_name="seg",
    )
    # A webhook whose URL path is its credential, failing with the path in the body.
    notifications = NotificationService(
        manager,
        NotificationsConfig(
            webhook_url=f"{upstream.url}{HOOK_PATH}",  # type: ignore[arg-type]
            webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
            max_retries=0,
        ),
    )
    upstream.script("T0001-B0002-TOPSECRETHOOK", Reply(500, f"no route {HOOK_PATH}"))

    failures = [
        ai.generate_content("openai", "Create an ad", "gpt-4"),
        manager.request("echo", "GET", "/fault/echo"),
        manager.request("slow", "GET", "/fault/slow"),
        manager.request("gone", "GET", "/"),
        notifications.send_notification("webhook", "hello"),
    ]
    for call in failures:
        with pytest.raises(ExternalServiceError) as err:
            await call
        texts.append(describe(err.value))
    await analytics.track("click", user_id=1)
    # A 401 is refused for good: the batch is dropped and logged, not raised.
    assert await analytics.flush() == 0 and analytics.rejected == 1

    texts += [
        caplog.text,
        repr(manager),
        repr(ai.config),
        repr(analytics.config),
        repr(notifications.config),
        repr(manager.get_config("echo")),
        repr(manager.get_service_status()),
        repr(await manager.health_check()),
        generate_latest(manager.metrics_registry).decode(),
    ]
    everything = "\n".join(texts)
    # It did fail, and the upstreams did echo the secrets back:
    assert "bad key ********" in everything
    assert "Incorrect API key provided: ********" in everything
    assert "invalid write key in 'Basic ********'" in everything
    assert "no route ********" in everything
    for secret in (API_KEY, WRITE_KEY, basic, HOOK_PATH, "TOPSECRET"):
        assert secret not in everything, secret


async def test_webhook_path_and_query_are_masked_each_on_its_own(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    path_token, query_token = "T0001-PATHTOKEN-123456", "QUERYTOKEN-654321"
    notifications = NotificationService(manager)
    notifications.register_channel(
        "ops",
        f"{upstream.url}/fault/{path_token}?sig={query_token}&source=ads",
        "webhook",
        secret=WEBHOOK_SECRET,
    )
    # Upstreams that echo one part only, as a 404 page quoting the path does.
    upstream.script(
        path_token,
        Reply(404, f"Cannot POST /fault/{path_token}"),
        Reply(403, f"bad signature {query_token}"),
        Reply(403, f"bad query sig={query_token}&source=ads"),
    )
    texts = []
    for _ in range(3):
        with pytest.raises(ExternalServiceError) as err:
            await notifications.send_notification("ops", "hello")
        texts.append(describe(err.value))
    everything = "\n".join(texts)
    assert upstream.count(path_token) == 3  # the upstream did answer, echoing them
    assert "Cannot POST ********" in everything and "bad signature ********" in everything
    assert path_token not in everything and query_token not in everything
