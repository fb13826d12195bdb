"""Analytics batching to a Segment-style /v1/batch, and webhook notifications, on real servers."""

from __future__ import annotations

import asyncio
import decimal

import pytest

from ads_infra.config import AnalyticsConfig, NotificationsConfig
from ads_infra.errors import (
    ConfigurationError,
    ExternalServiceError,
    UpstreamError,
    WebhookVerificationError,
)
from ads_infra.external_services import (
    AnalyticsService,
    ExternalServiceManager,
    NotificationService,
    verify_webhook,
)
from tests.integration.services.conftest import WEBHOOK_SECRET, Reply, Upstream, eventually


def analytics(
    manager: ExternalServiceManager, upstream: Upstream, **options: object
) -> AnalyticsService:
    config = AnalyticsConfig(
        url=upstream.url,
        write_key=upstream.write_key,  # type: ignore[arg-type]
        **{"flush_size": 100, "flush_interval": 60.0, "max_retries": 1, **options},  # type: ignore[arg-type]
    )
    return AnalyticsService(manager, config)


def events(upstream: Upstream) -> list[dict[str, object]]:
    return [event for batch in upstream.batches for event in batch["batch"]]


async def test_flush_by_size(upstream: Upstream, manager: ExternalServiceManager) -> None:
    service = analytics(manager, upstream, flush_size=5)
    for i in range(4):
        await service.track("ad_clicked", {"i": i}, user_id=42)
    await asyncio.sleep(0.05)
    assert upstream.batches == [] and service.pending == 4  # below the size: kept
    await service.track("ad_clicked", {"i": 4}, user_id=42)
    await eventually(lambda: len(upstream.batches) == 1)
    assert len(upstream.batches[0]["batch"]) == 5 and service.pending == 0
    for i in range(5, 12):
        await service.track("ad_clicked", {"i": i}, user_id=42)
    await manager.close()
    assert all(len(b["batch"]) <= 5 for b in upstream.batches)
    assert [e["properties"]["i"] for e in events(upstream)] == list(range(12))  # type: ignore[index]
    first = events(upstream)[0]
    assert first["type"] == "track" and first["event"] == "ad_clicked"
    assert first["userId"] == "42" and first["timestamp"]
    assert len({e["messageId"] for e in events(upstream)}) == 12


async def test_flush_by_interval(upstream: Upstream, manager: ExternalServiceManager) -> None:
    service = analytics(manager, upstream, flush_interval=0.05)
    await service.track("impression", {"ad": 1}, anonymous_id="anon-1")
    await service.identify(7, {"plan": "pro"})
    await eventually(lambda: len(events(upstream)) == 2)
    assert [e["type"] for e in events(upstream)] == ["track", "identify"]
    assert events(upstream)[0]["anonymousId"] == "anon-1"
    assert service.pending == 0


async def test_close_flushes_every_buffered_event(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    service = analytics(manager, upstream, flush_size=5)
    upstream.script("batch", Reply(200, {"success": True}, delay=0.2))  # a slow flush in flight
    for i in range(5):
        await service.track("conversion", {"i": i}, user_id=1)
    await eventually(lambda: upstream.count("batch") == 1)
    for i in range(5, 7):
        await service.track("conversion", {"i": i}, user_id=1)
    assert upstream.batches == [] and service.pending == 2

    await manager.close()  # closes the analytics service before the session

    assert sorted(e["properties"]["i"] for e in events(upstream)) == list(range(7))  # type: ignore[index]
    assert service.pending == 0 and service.get_stats()["sent"] == 7


async def test_failed_batch_is_kept_for_the_next_flush(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    service = analytics(manager, upstream, max_retries=1)
    upstream.script("batch", Reply(500), Reply(500))
    for i in range(3):
        await service.track("spend", {"i": i}, user_id=1)
    with pytest.raises(UpstreamError):
        await service.flush()
    assert service.pending == 3
    assert await service.flush() == 3
    assert [e["properties"]["i"] for e in events(upstream)] == [0, 1, 2]  # type: ignore[index]


async def test_batch_refused_for_good_is_dropped_not_kept(
    upstream: Upstream, manager: ExternalServiceManager, caplog: pytest.LogCaptureFixture
) -> None:
    service = analytics(manager, upstream)
    upstream.script("batch", Reply(422, {"error": "invalid batch"}))
    for i in range(3):
        await service.track("bad", {"i": i}, user_id=1)

    assert await service.flush() == 0  # refused, and not raised as if it would be retried

    assert service.pending == 0
    assert service.get_stats()["rejected"] == 3 and service.dropped == 3
    assert "refused 3 event(s)" in caplog.text and "invalid batch" in caplog.text
    # Later events are no longer held up behind it.
    await service.track("good", {"i": 3}, user_id=1)
    assert await service.flush() == 1
    assert [e["event"] for e in events(upstream)] == ["good"]


async def test_property_json_cannot_carry_is_refused_at_track(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    service = analytics(manager, upstream)
    with pytest.raises(
        TypeError, match=r"event 'priced': property 'price' cannot be sent as JSON.*Decimal"
    ):
        await service.track("priced", {"ok": 1, "price": decimal.Decimal("1.50")}, user_id=1)
    with pytest.raises(TypeError, match=r"identify: trait 'since' .*Decimal"):
        await service.identify(7, {"since": decimal.Decimal(2020)})
    assert service.pending == 0
    await service.track("good", {"price": "1.50"}, user_id=1)
    assert await service.flush() == 1


async def test_event_changed_after_track_is_sent_as_tracked(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    service = analytics(manager, upstream)
    meta: dict[str, object] = {"price": "1.00"}
    await service.track("first", {"i": 0}, user_id=1)
    await service.track("changed", {"meta": meta}, user_id=1)
    meta["price"] = decimal.Decimal("1.50")  # the caller kept a reference, and changed it

    assert await service.flush() == 2

    assert [e["properties"] for e in events(upstream)] == [{"i": 0}, {"meta": {"price": "1.00"}}]
    assert service.pending == 0 and service.dropped == 0


async def test_track_during_close_is_sent_and_after_close_refused(upstream: Upstream) -> None:
    manager = ExternalServiceManager()
    service = analytics(manager, upstream, flush_size=2, flush_interval=0.05)
    upstream.script("batch", Reply(200, {"success": True}, delay=0.3))  # in flight at close
    await service.track("e1", user_id=1)
    await service.track("e2", user_id=1)
    await eventually(lambda: upstream.count("batch") == 1)
    closing = asyncio.create_task(manager.close())
    await eventually(lambda: service._closing)  # close() is waiting for the batch in flight

    await service.track("late", user_id=1)  # e.g. a request finishing during shutdown
    await closing

    assert [e["event"] for e in events(upstream)] == ["e1", "e2", "late"]
    assert service.pending == 0
    ticking = [t for t in asyncio.all_tasks() if "_tick" in repr(t.get_coro())]
    assert ticking == []  # no interval timer left to reopen the session
    with pytest.raises(ExternalServiceError, match="analytics service is closed"):
        await service.track("after", user_id=1)
    assert manager._session is None and service.pending == 0


async def test_analytics_is_off_without_url(manager: ExternalServiceManager) -> None:
    service = AnalyticsService(manager)
    await service.track("anything", user_id=1)
    assert service.get_stats()["dropped"] == 1 and not service.enabled
    assert manager.services == []


async def test_slack_webhook(upstream: Upstream, manager: ExternalServiceManager) -> None:
    url = f"{upstream.url}/services/T000/B000/XXXXSECRET"
    notifications = NotificationService(
        manager,
        NotificationsConfig(slack_webhook_url=url),  # type: ignore[arg-type]
    )
    await notifications.send_notification("slack", "Campaign 12 is out of budget")
    assert upstream.slack == [
        {"path": "/services/T000/B000/XXXXSECRET", "text": "Campaign 12 is out of budget"}
    ]
    status = manager.get_service_status("notifications.slack")
    assert "XXXXSECRET" not in repr(status) and "XXXXSECRET" not in repr(notifications.config)


async def test_slack_text_is_escaped_so_a_mention_in_a_name_is_shown_not_obeyed(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    notifications = NotificationService(
        manager,
        NotificationsConfig(slack_webhook_url=f"{upstream.url}/services/T/B/X"),  # type: ignore[arg-type]
    )
    await notifications.send_notification(
        "slack", "Campaign <!channel> & <@U123> is <https://x.example|live>", extra={"mrkdwn": True}
    )
    (posted,) = upstream.slack
    assert posted["text"] == (
        "Campaign &lt;!channel&gt; &amp; &lt;@U123&gt; is &lt;https://x.example|live&gt;"
    )
    assert posted["mrkdwn"] is True


@pytest.mark.parametrize(
    ("kind", "key"),
    [("slack", "text"), ("webhook", "channel"), ("webhook", "text"), ("webhook", "sent_at")],
)
async def test_extra_cannot_overwrite_what_the_service_writes(
    upstream: Upstream, manager: ExternalServiceManager, kind: str, key: str
) -> None:
    notifications = NotificationService(manager)
    notifications.register_channel(
        "ops", f"{upstream.url}/hooks/x", kind, secret=WEBHOOK_SECRET if kind == "webhook" else None
    )
    with pytest.raises(ValueError, match=rf"extra may not set \['{key}'\]"):
        await notifications.send_notification("ops", "hello", extra={key: "forged"})
    assert upstream.webhooks == [] and upstream.slack == []


async def test_generic_webhook_is_signed_per_standard_webhooks(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    notifications = NotificationService(
        manager,
        NotificationsConfig(
            webhook_url=f"{upstream.url}/hooks/ads?token=abc",  # type: ignore[arg-type]
            webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        ),
    )
    await notifications.send_notification("webhook", "Spend spike", extra={"campaign_id": 12})
    ((headers, body),) = upstream.webhooks
    assert body["channel"] == "webhook" and body["text"] == "Spend spike"
    assert body["campaign_id"] == 12 and body["sent_at"]
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == headers["Idempotency-Key"]
    # The receiver's side: the signature checks out over the bytes as received.
    raw = upstream.webhook_bodies[0]
    assert verify_webhook(WEBHOOK_SECRET, headers, raw) == headers["webhook-id"]
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(WEBHOOK_SECRET, headers, raw.replace(b"Spend", b"Spent"))


async def test_a_webhook_channel_without_a_secret_is_refused(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    notifications = NotificationService(manager)
    with pytest.raises(ConfigurationError, match=r"needs a signing secret.*ADS_WEBHOOK_SECRET"):
        notifications.register_channel("ops", f"{upstream.url}/hooks/x", "webhook")
    with pytest.raises(ConfigurationError, match="webhook_secret: must be 'whsec_'"):
        NotificationService(
            manager,
            NotificationsConfig(
                webhook_url=f"{upstream.url}/hooks/x",  # type: ignore[arg-type]
                webhook_secret="whsec_tooshort",  # type: ignore[arg-type]
            ),
        )


async def test_notification_retries_carry_one_id_each_signed_anew(
    upstream: Upstream, manager: ExternalServiceManager
) -> None:
    notifications = NotificationService(manager)
    notifications.register_channel(
        "ops", f"{upstream.url}/fault/hook", "webhook", secret=WEBHOOK_SECRET
    )
    object.__setattr__(manager.get_config("notifications.ops"), "retry_backoff", 0.01)
    upstream.script("hook", Reply(503), Reply(200))
    await notifications.send_notification("ops", "Deploy finished")
    first, second = upstream.hits["hook"]
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    for hit in (first, second):
        verify_webhook(WEBHOOK_SECRET, hit.headers, hit.body)


async def test_unconfigured_channel_says_what_to_set(manager: ExternalServiceManager) -> None:
    notifications = NotificationService(manager)
    with pytest.raises(ConfigurationError, match="ADS_SLACK_WEBHOOK_URL"):
        await notifications.send_notification("slack", "hello")
