"""Backoff with jitter and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from ads_infra.external_services.retry import IDEMPOTENT_METHODS, backoff_delay, parse_retry_after


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (10, 2.5, 5.0)],
)
def test_backoff_grows_exponentially_with_jitter_and_a_cap(
    attempt: int, low: float, high: float
) -> None:
    delays = {backoff_delay(attempt, base=0.5, cap=5.0) for _ in range(200)}
    assert all(low <= d <= high for d in delays)
    assert len(delays) > 100  # jittered, not one fixed value


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("0") == 0.0


@pytest.mark.parametrize("value", ["-4", "nan", "-inf", "inf"])
def test_negative_or_non_finite_retry_after_is_none_not_retry_now(value: str) -> None:
    # The caller then backs off as usual, rather than hammering the upstream.
    assert parse_retry_after(value) is None


def test_retry_after_as_http_date() -> None:
    now = 1_700_000_000.0
    header = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize(
    "header",
    [
        "Fri, 06 Nov 2026 10:53:46 GMT",  # IMF-fixdate
        "Friday, 06-Nov-26 10:53:46 GMT",  # obsolete RFC 850
        "Fri Nov  6 10:53:46 2026",  # asctime: no zone (always UTC), day padded with a space
        "Fri, 06 Nov 2026 10:53:46 -0000",  # also parsed without a zone
    ],
)
def test_retry_after_in_every_http_date_format(header: str) -> None:
    # RFC 9110 section 5.6.7: recipients must accept all three formats.
    now = datetime(2026, 11, 6, 10, 53, 16, tzinfo=UTC).timestamp()
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


@pytest.mark.parametrize("value", [None, "", "soon", "Mon, 99 Foo 20"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_post_and_patch_are_not_idempotent() -> None:
    assert {"GET", "PUT", "DELETE"} <= IDEMPOTENT_METHODS
    assert not {"POST", "PATCH"} & IDEMPOTENT_METHODS
