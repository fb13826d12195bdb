"""Our analytics on the wire against the official segment-analytics-python, on one local server.

Each scenario runs twice against the same recording endpoint (segment.py,
which enforces Segment's documented 32 KB / 500 KB limits): once through the
official client (synchronous: run in a thread), once through AnalyticsService;
the test compares what arrived. Test names say what the official client does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from segment.analytics.client import Client

from ads_infra.config import AnalyticsConfig
from ads_infra.external_services import AnalyticsService, ExternalServiceManager
from ads_infra.external_services.analytics import MAX_BATCH_BYTES
from ads_infra.external_services.identity import VERSION
from tests.integration.services.segment import SegmentServer, serve

Event = dict[str, Any]


@pytest.fixture
async def segment() -> AsyncIterator[SegmentServer]:
    async for server in serve(SegmentServer()):
        yield server


def ten_kb_events(count: int = 100) -> list[Event]:
    return [
        {"event": "ad_viewed", "user_id": f"user-{i}", "properties": {"i": i, "blob": "x" * 10_000}}
        for i in range(count)
    ]


async def official(server: SegmentServer, events: Iterable[Event], **options: Any) -> None:
    """Send ``events`` with segment-analytics-python, as its README shows, then flush."""

    def run() -> None:
        client = Client(
            server.write_key, host=server.url, upload_interval=0.5, max_retries=3, **options
        )
        for event in events:
            client.track(**event)
        client.flush()
        client.join()

    await asyncio.to_thread(run)


async def ours(server: SegmentServer, events: Iterable[Event], **options: Any) -> AnalyticsService:
    manager = ExternalServiceManager()
    service = AnalyticsService(
        manager,
        AnalyticsConfig(
            url=server.url,
            write_key=server.write_key,  # type: ignore[arg-type]
            flush_interval=0,
            **options,
        ),
    )
    try:
        for event in events:
            await service.track(
                event["event"],
                event.get("properties"),
                user_id=event.get("user_id"),
                anonymous_id=event.get("anonymous_id"),
            )
        await service.flush()
    finally:
        await manager.close()
    return service


async def both(server: SegmentServer, events: list[Event], **options: Any) -> tuple[Any, Any]:
    """Arrivals of the official client, then ours, for the same events."""
    await official(server, events, **options)
    theirs = list(server.arrivals)
    server.arrivals.clear()
    await ours(server, events, **options)
    return theirs, list(server.arrivals)


# --- sizes and limits ---------------------------------------------------------------------


async def test_100_events_of_10kb_are_cut_into_batches_under_500kb_as_the_official_client_cuts(
    segment: SegmentServer,
) -> None:
    theirs, mine = await both(segment, ten_kb_events())
    official_sizes = [len(a.body["batch"]) for a in theirs]
    assert official_sizes == [47, 47, 6]  # what segment-analytics-python does
    assert [len(a.body["batch"]) for a in mine] == official_sizes
    assert all(a.status == 200 for a in mine)
    assert all(a.body_bytes <= MAX_BATCH_BYTES for a in mine)
    users = sorted(m["userId"] for m in segment.messages())
    assert users == sorted(f"user-{i}" for i in range(100))


async def test_batches_never_exceed_500kb_whatever_the_message_sizes(
    segment: SegmentServer,
) -> None:
    # Messages just under 32 KB: the official rule (cut once 475,000 is reached)
    # alone could reach ~508 KB; ours also never passes 500,000 bytes.
    events = [
        {"event": "big", "user_id": "u", "properties": {"blob": "y" * (31_000 + 37 * i)}}
        for i in range(40)
    ]
    await ours(segment, events)
    assert sum(segment.batch_sizes()) == 40
    assert all(a.body_bytes <= MAX_BATCH_BYTES and a.status == 200 for a in segment.arrivals)


async def test_a_message_over_32kb_is_refused_at_track_as_the_official_client_refuses_at_enqueue(
    segment: SegmentServer,
) -> None:
    event = {"event": "huge", "user_id": "u", "properties": {"blob": "z" * 40_000}}
    with pytest.raises(RuntimeError, match="Message exceeds"):
        await official(segment, [event])
    manager = ExternalServiceManager()
    service = AnalyticsService(
        manager,
        AnalyticsConfig(url=segment.url, write_key=segment.write_key),  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match=r"event 'huge' is 40,\d{3} bytes .* limit of 32,768"):
        await service.track("huge", {"blob": "z" * 40_000}, user_id="u")
    await service.track("fine", {"blob": "z" * 100}, user_id="u")
    await manager.close()
    assert [m["event"] for m in segment.messages()] == ["fine"]  # nothing poisoned


async def test_an_event_needs_a_user_or_anonymous_id_as_the_official_client_requires(
    segment: SegmentServer,
) -> None:
    with pytest.raises(AssertionError, match="user_id or anonymous_id"):
        await official(segment, [{"event": "viewed", "properties": {}}])
    manager = ExternalServiceManager()
    service = AnalyticsService(
        manager,
        AnalyticsConfig(url=segment.url, write_key=segment.write_key),  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match="names no one: pass user_id, or the anonymous_id"):
        await service.track("viewed")
    # Two visitors stay two people: no id is shared or made up.
    await service.track("viewed", anonymous_id="visitor-a")
    await service.track("viewed", anonymous_id="visitor-b")
    await manager.close()
    assert [m["anonymousId"] for m in segment.messages()] == ["visitor-a", "visitor-b"]


async def test_a_batch_refused_as_too_large_is_split_and_resent_where_the_official_client_drops_it(
    segment: SegmentServer,
) -> None:
    segment.max_batch_bytes = 100_000  # a collector with a smaller limit than Segment's
    events = ten_kb_events(30)
    errors: list[Exception] = []
    await official(segment, events, on_error=lambda e, batch: errors.append(e))
    assert segment.accepted == [] and errors  # the official client drops the batch
    segment.arrivals.clear()

    service = await ours(segment, events)

    assert sorted(m["properties"]["i"] for m in segment.messages()) == list(range(30))
    assert service.dropped == 0 and service.splits > 0
    assert all(len(body["batch"]) <= 9 for body in segment.accepted)


async def test_only_the_event_refused_alone_is_dropped(segment: SegmentServer) -> None:
    segment.poison = lambda message: message["properties"].get("i") == 13
    service = await ours(segment, ten_kb_events(20))
    assert sorted(m["properties"]["i"] for m in segment.messages()) == [
        i for i in range(20) if i != 13
    ]
    assert service.dropped == service.rejected == 1


# --- headers and retries -----------------------------------------------------------------


async def test_each_retry_carries_x_retry_count_and_a_fresh_sent_at_as_the_official_client(
    segment: SegmentServer,
) -> None:
    events = [{"event": "clicked", "user_id": "u1", "properties": {"ad": 1}}]
    segment.script.extend([(500, {}), (503, {})])
    await official(segment, events)
    theirs = list(segment.arrivals)
    segment.arrivals.clear()
    segment.script.extend([(500, {}), (503, {})])
    await ours(segment, events)
    mine = list(segment.arrivals)

    for arrivals in (theirs, mine):
        assert [a.status for a in arrivals] == [500, 503, 200]
        assert [a.headers.get("X-Retry-Count") for a in arrivals] == [None, "1", "2"]
        sent_at = [dt.datetime.fromisoformat(a.body["sentAt"]) for a in arrivals]
        assert sent_at == sorted(sent_at) and len(set(sent_at)) == 3  # stamped per attempt
        message_ids = {a.body["batch"][0]["messageId"] for a in arrivals}
        assert len(message_ids) == 1  # the same message: Segment deduplicates by it


async def test_gzip_bodies_as_the_official_client_sends_them(segment: SegmentServer) -> None:
    theirs, mine = await both(segment, ten_kb_events(10), gzip=True)
    for arrivals in (theirs, mine):
        (arrival,) = arrivals
        assert arrival.headers["Content-Encoding"] == "gzip"
        assert arrival.status == 200 and arrival.wire_bytes < arrival.body_bytes / 10
    assert len(mine[0].body["batch"]) == 10


async def test_the_same_events_agree_on_every_documented_field(segment: SegmentServer) -> None:
    events = [
        {"event": "ad_clicked", "user_id": 42, "properties": {"ad_id": 12, "cost": 0.5}},
        {"event": "ad_viewed", "anonymous_id": "visitor-7", "properties": {"ad_id": 12}},
    ]
    (theirs,), (mine,) = await both(segment, events)

    # Request: method and path (the server's route), auth, content type.
    for header in ("Authorization", "Content-Type"):
        assert mine.headers[header] == theirs.headers[header]
    assert theirs.headers["User-Agent"].startswith("analytics-python/")
    assert mine.headers["User-Agent"] == f"ads-infra/{VERSION}"
    assert set(mine.body) == {"batch", "sentAt"}
    # The official client also repeats the write key in the body; the Basic auth
    # header already carries it, and a secret in one place less is one leak less.
    assert set(theirs.body) == {"batch", "sentAt", "writeKey"}

    for their, my in zip(theirs.body["batch"], mine.body["batch"], strict=True):
        for key in ("type", "event", "properties", "userId", "anonymousId"):
            assert my.get(key) == their.get(key), key
        assert uuid.UUID(my["messageId"]) and uuid.UUID(their["messageId"])
        for key in ("timestamp",):
            assert dt.datetime.fromisoformat(my[key].replace("Z", "+00:00")).tzinfo is not None
            assert dt.datetime.fromisoformat(their[key]).tzinfo is not None
        assert (
            set(my["context"]["library"])
            == set(their["context"]["library"])
            == {
                "name",
                "version",
            }
        )
        assert my["context"]["library"] == {"name": "ads-infra", "version": VERSION}
    sent_at = mine.body["sentAt"].replace("Z", "+00:00")
    assert dt.datetime.fromisoformat(sent_at).tzinfo is not None
