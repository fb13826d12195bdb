"""etcd discovery end to end: real etcd, instances as real processes, the container's services.

Two stand-in instances register under one service; the AI and webhook
services, resolved through discovery, spread their calls over both. One
instance is killed (SIGKILL: no deregistration): once its lease expires no
attempt goes to it, and callers see no error beyond the calls in flight. It
comes back and gets calls again. etcd itself stops: calls keep going to the
last known instances, and health says so.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from ads_infra.containers import Container, create_container
from ads_infra.core.errors import DiscoveryError, ExternalServiceError, NoInstancesError
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.etcd import EtcdDiscovery
from ads_infra.discovery.etcd_client import EtcdClient, WatchEvent
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from tests.etcd_server import EtcdServer
from tests.integration.discovery.conftest import InstanceProcess, eventually
from tests.services import free_port

CONFIG_FILE = Path(__file__).resolve().parents[3] / "config.yml"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-signing-key-32bytes").decode()
TTL = 2
Start = Callable[[str, str, str, int], InstanceProcess]


def _container(etcd: EtcdServer, tmp_path: Path) -> Container:
    return create_container(
        CONFIG_FILE,
        database={"url": f"sqlite+aiosqlite:///{tmp_path}/ads.db"},
        storage={"base_path": str(tmp_path / "storage")},
        services={
            # The base URLs are placeholders: discovery decides where the calls go.
            "ai": {"provider": "openai", "base_url": "http://ai.discovered", "api_key": "sk-x"},
            "notifications": {
                "webhook_url": "http://hooks.discovered/hooks/orders",
                "webhook_secret": WEBHOOK_SECRET,
            },
        },
        discovery={
            "backend": "etcd",
            "etcd_url": etcd.url,
            "ttl": TTL,
            "resolve": ["ai.openai=ai", "notifications.webhook=ai"],
        },
    )


async def _who(container: Container, prompt: str = "ad") -> str:
    response = await container.services.ai().generate_content(None, prompt, "gpt-4")
    return response.content.split(":", 1)[0]


def _calls(manager: ExternalServiceManager, upstream: str) -> dict[str, int]:
    status = manager.get_service_status(upstream)
    return {m["url"]: int(m["calls"]) for m in status["instances"]}


async def test_calls_spread_fail_over_on_lease_expiry_and_survive_etcd_going_away(
    etcd_server: EtcdServer, instances: Start, tmp_path: Path
) -> None:
    a = instances("A", etcd_server.url, "ai", TTL)
    b = instances("B", etcd_server.url, "ai", TTL)
    container = _container(etcd_server, tmp_path)
    await container.init_resources()
    try:
        discovery = container.discovery.backend()
        manager = container.services.manager()
        live = discovery.instances("ai")
        await eventually(lambda: set(live.urls) == {a.url, b.url})

        # Both instances get calls, through the AI service and the webhook service.
        spread = Counter([await _who(container) for _ in range(20)])
        assert spread == {"A": 10, "B": 10}  # round robin, one caller
        notifications = container.services.notifications()
        for _ in range(10):
            await notifications.send_notification("webhook", "order placed")
        hooks = _calls(manager, "notifications.webhook")
        assert hooks == {a.url: 5, b.url: 5}

        # Kill A under load: no deregistration, its lease runs out after TTL seconds.
        results: list[str] = []
        stop = asyncio.Event()

        async def caller() -> None:
            while not stop.is_set():
                try:
                    results.append(await _who(container))
                except ExternalServiceError as exc:
                    results.append(f"error: {exc}")

        load = [asyncio.create_task(caller()) for _ in range(4)]
        await eventually(lambda: len(results) >= 20)
        svc = manager._services["ai.openai"]
        a.kill()
        await eventually(lambda: live.urls == [b.url])
        removed_at, failed_attempts_at_removal = len(results), svc.errors
        await eventually(lambda: len(results) >= removed_at + 40)
        stop.set()
        await asyncio.gather(*load)

        errors = [r for r in results if r.startswith("error")]
        assert len(errors) <= 4, errors  # at most the calls in flight when A died
        after = results[removed_at + 4 :]  # the ones started once A was gone
        assert after and set(after) == {"B"}
        assert svc.errors == failed_attempts_at_removal  # no attempt went to A since
        assert [m["url"] for m in manager.get_service_status("ai.openai")["instances"]] == [b.url]

        # A comes back (same address): registered again, it gets calls again.
        a.start()
        await eventually(lambda: set(live.urls) == {a.url, b.url})
        assert set(Counter([await _who(container) for _ in range(10)])) == {"A", "B"}

        # etcd goes away: the last known instances keep serving, and health says so.
        etcd_server.stop()
        await eventually(lambda: live.stale_since is not None)
        assert Counter([await _who(container) for _ in range(10)]) == {"A": 5, "B": 5}
        report = await discovery.health_check()
        assert not report.healthy
        assert "serving last known instances since" in report.detail
        assert "ai: 2" in report.detail
        service_health = {r.component: r for r in await manager.health_check()}
        ai_health = service_health["services.ai.openai"]
        assert ai_health.healthy and "serving last known instances" in ai_health.detail

        # etcd back: the watch resumes and health recovers.
        etcd_server.start()
        await eventually(lambda: live.stale_since is None)
        assert (await discovery.health_check()).healthy
    finally:
        await container.shutdown_resources()


async def test_an_empty_set_is_an_error_naming_the_service(etcd_server: EtcdServer) -> None:
    config = DiscoveryConfig(
        backend="etcd",  # type: ignore[arg-type]
        etcd_url=etcd_server.url,
        resolve=["ai.openai=copywriter"],
    )
    async with EtcdDiscovery(config) as discovery:
        manager = ExternalServiceManager(discovery=discovery)
        manager.register_service("ai.openai", ExternalServiceConfig(base_url="http://x.invalid"))
        try:
            try:
                await manager.request("ai.openai", "GET", "/v1/models")
            except NoInstancesError as exc:
                message = str(exc)
            else:
                raise AssertionError("a call with no instance was sent")
        finally:
            await manager.close()
    assert "'copywriter'" in message and "ai.openai" in message
    assert "no instance is registered or alive" in message


async def test_start_fails_clearly_when_etcd_is_unreachable(etcd_server: EtcdServer) -> None:
    etcd_server.stop()
    discovery = EtcdDiscovery(
        DiscoveryConfig(backend="etcd", etcd_url=etcd_server.url, timeout=0.2)  # type: ignore[arg-type]
    )
    with pytest.raises(DiscoveryError) as caught:
        await discovery.start()
    assert etcd_server.url in str(caught.value) and "ADS_ETCD_URL" in str(caught.value)


async def test_watch_prefix_resumes_after_etcd_restarts_without_losing_events(
    etcd_server: EtcdServer,
) -> None:
    writer = EtcdClient([etcd_server.url])
    reader = EtcdClient([etcd_server.url])
    await writer.put("/cfg/a", "1")
    seen: list[WatchEvent] = []
    live = asyncio.Event()
    watch = reader.watch_prefix("/cfg/", on_live=live.set)

    async def follow() -> None:
        async for event in watch:
            seen.append(event)

    task = asyncio.create_task(follow())
    try:
        await eventually(lambda: [(e.key, e.value) for e in seen] == [("/cfg/a", "1")])
        await live.wait()
        await writer.put("/cfg/b", "2")
        await eventually(lambda: len(seen) == 2)
        etcd_server.stop()
        await eventually(lambda: reader.down_since is not None)
        etcd_server.start()
        await writer.put("/cfg/a", "3")  # written while the reader reconnects
        await writer.delete("/cfg/b")
        await eventually(lambda: len(seen) == 4)
        assert [(e.key, e.value) for e in seen[2:]] == [("/cfg/a", "3"), ("/cfg/b", None)]
        assert reader.down_since is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watch.aclose()
        await reader.close()
        await writer.close()


async def test_an_unreachable_first_endpoint_is_passed_over(etcd_server: EtcdServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = DiscoveryConfig(
        backend="etcd",  # type: ignore[arg-type]
        etcd_url=f"{dead},{etcd_server.url}",
        register=["ai=http://127.0.0.1:9"],
    )
    async with EtcdDiscovery(config) as discovery:
        # Read-your-writes: the registration is in the set when start() returns,
        # not only once the watch delivers it.
        assert discovery.instances("ai").urls == ["http://127.0.0.1:9"]
        assert discovery.client.endpoint == etcd_server.url
        assert (await discovery.health_check()).healthy


async def test_health_asks_etcd_when_discovery_is_not_running(etcd_server: EtcdServer) -> None:
    writer = EtcdClient([etcd_server.url])
    try:
        await writer.put("/ads-infra/services/ai/x", "http://127.0.0.1:9")
    finally:
        await writer.close()
    config = DiscoveryConfig(backend="etcd", etcd_url=etcd_server.url, timeout=0.5)  # type: ignore[arg-type]
    fresh = EtcdDiscovery(config)
    try:
        up = await fresh.health_check()
    finally:
        await fresh.close()
    assert up.healthy and "ai: 1" in up.detail and up.target == etcd_server.url
    etcd_server.stop()
    down = EtcdDiscovery(config)
    try:
        report = await down.health_check()
    finally:
        await down.close()
    assert not report.healthy and "etcd unreachable" in report.detail


def _enable_auth(etcd: EtcdServer, password: str) -> None:
    """Turn on etcd's authentication with a root user (through its JSON gateway)."""
    for path, body in (
        ("/v3/auth/user/add", {"name": "root", "password": password}),
        ("/v3/auth/role/add", {"name": "root"}),
        ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
        ("/v3/auth/enable", {}),
    ):
        request = urllib.request.Request(
            etcd.url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


async def test_credentials_in_the_url_authenticate_and_never_show(etcd_server: EtcdServer) -> None:
    password = "s3cret/pw"  # a '/' must be percent-encoded in the URL
    _enable_auth(etcd_server, password)
    host = etcd_server.url.removeprefix("http://")
    good = f"http://root:{urllib.parse.quote(password, safe='')}@{host}"
    config = DiscoveryConfig(
        backend="etcd",  # type: ignore[arg-type]
        etcd_url=good,
        register=["ai=http://127.0.0.1:9"],
    )
    async with EtcdDiscovery(config) as discovery:
        assert discovery.instances("ai").urls == ["http://127.0.0.1:9"]

    anonymous = DiscoveryConfig(backend="etcd", etcd_url=etcd_server.url, timeout=0.5)  # type: ignore[arg-type]
    with pytest.raises(DiscoveryError):
        async with EtcdDiscovery(anonymous):
            pass
    wrong = DiscoveryConfig(
        backend="etcd",  # type: ignore[arg-type]
        etcd_url=f"http://root:nope@{host}",
        timeout=0.5,
    )
    with pytest.raises(DiscoveryError) as caught:
        async with EtcdDiscovery(wrong):
            pass
    assert "authentication failed" in str(caught.value) and "nope" not in str(caught.value)
