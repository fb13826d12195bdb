"""The request path's decisions, without a network: classifying outcomes, retry rules, one call."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ads_infra.config import HttpConfig
from ads_infra.external_services import ExternalServiceConfig
from ads_infra.external_services.metrics import ServiceMetrics
from ads_infra.external_services.policy import (
    Failure,
    GiveUp,
    Retry,
    RetryPolicy,
    Verdict,
    classify_exception,
    classify_status,
    failure_kind,
    should_retry_hint,
)
from ads_infra.external_services.registered import RegisteredService


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (204, Verdict.SUCCESS),
        (302, Verdict.SUCCESS),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (408, Verdict.RETRYABLE),  # Request Timeout: passing by definition
        (409, Verdict.PERMANENT),  # a conflict, unless the service lists it (OpenAI does)
        (429, Verdict.RETRYABLE),
        (500, Verdict.RETRYABLE),
        (503, Verdict.RETRYABLE),
    ],
)
def test_status_classification(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


def test_failure_kind_of_a_retryable_status() -> None:
    assert failure_kind(429) == "rate_limited"
    assert failure_kind(502) == "server_error"
    assert failure_kind(408) == "timeout"
    assert failure_kind(409) == "client_error"


def test_a_service_adds_its_own_retryable_statuses() -> None:
    # openai-python's _should_retry: 408, 409, 429 and >= 500.
    openai_like = frozenset({408, 409, 429})
    assert [classify_status(s, openai_like) for s in (400, 404, 408, 409, 429, 500)] == [
        Verdict.PERMANENT,
        Verdict.PERMANENT,
        Verdict.RETRYABLE,
        Verdict.RETRYABLE,
        Verdict.RETRYABLE,
        Verdict.RETRYABLE,
    ]


@pytest.mark.parametrize(("value", "hint"), [("true", True), ("false", False), (None, None)])
def test_x_should_retry_is_read_as_the_sdk_reads_it(value: str | None, hint: bool | None) -> None:
    assert should_retry_hint(value) is hint
    assert should_retry_hint("TRUE") is None  # the SDK compares exactly


def test_retry_after_ms_wins_over_retry_after_like_the_openai_sdk() -> None:
    failure = Failure("rate_limited", "busy", 429, "20", "3000")
    assert policy().after(failure, 1, 4) == Retry(3.0)


def test_retry_after_ms_is_read_on_any_retryable_status() -> None:
    assert policy().after(Failure("server_error", "down", 502, None, "1500"), 1, 4) == Retry(1.5)


@pytest.mark.parametrize("bad", ["soon", "-1", "nan", "inf"])
def test_unreadable_retry_after_ms_falls_back_to_retry_after(bad: str) -> None:
    assert policy().after(Failure("rate_limited", "busy", 429, "2", bad), 1, 4) == Retry(2.0)


def test_retry_after_ms_beyond_the_cap_gives_up() -> None:
    failure = Failure("rate_limited", "busy", 429, None, "90000")
    assert policy(retry_after_cap=60).after(failure, 1, 4) == GiveUp(asked=90.0)


def test_x_should_retry_false_gives_up_at_once() -> None:
    failure = Failure("server_error", "down", 500, final=True)
    assert policy().after(failure, 1, 4) == GiveUp(told=True)


def test_no_retry_that_would_pass_the_calls_deadline() -> None:
    failure = Failure("rate_limited", "busy", 429, None, "3000")
    rules = policy(deadline=10.0)
    assert rules.after(failure, 1, 4, elapsed=6.0) == Retry(3.0)
    assert rules.after(failure, 2, 4, elapsed=7.5) == GiveUp(asked=3.0, deadline=10.0)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError(), "timeout"),  # also a ClientError: a timeout first
        (aiohttp.ClientConnectionError("refused"), "connection"),
        (aiohttp.ServerDisconnectedError(), "connection"),
        (asyncio.CancelledError(), None),
        (ValueError("a bug"), None),
    ],
)
def test_exception_classification(exc: BaseException, kind: str | None) -> None:
    assert classify_exception(exc) == kind


def policy(**fields: object) -> RetryPolicy:
    settings: dict[str, object] = {"base_url": "http://x", "retry_backoff": 0.5, **fields}
    return RetryPolicy(ExternalServiceConfig(**settings))  # type: ignore[arg-type]


def test_only_calls_safe_to_repeat_get_more_than_one_attempt() -> None:
    rules = policy(max_retries=3)
    assert rules.attempts("GET", None) == rules.attempts("DELETE", None) == 4
    assert rules.attempts("POST", None) == rules.attempts("PATCH", None) == 1
    assert rules.attempts("POST", "key-1") == 4


def test_no_retry_once_the_attempts_are_spent() -> None:
    assert policy().after(Failure("server_error", "answered 500", 500), 4, 4) == GiveUp()
    assert policy().after(Failure("timeout", "no answer"), 1, 1) == GiveUp()


def test_backoff_between_attempts() -> None:
    decision = policy(retry_backoff=0.5).after(Failure("connection", "refused"), 2, 4)
    assert isinstance(decision, Retry) and 0.5 <= decision.delay <= 1.0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_for_exactly(status: int) -> None:
    failure = Failure(failure_kind(status), "busy", status, "2.5")
    assert policy().after(failure, 1, 4) == Retry(2.5)


def test_retry_after_beyond_the_cap_gives_up_saying_what_was_asked() -> None:
    failure = Failure("rate_limited", "busy", 429, "120")
    assert policy(retry_after_cap=60).after(failure, 1, 4) == GiveUp(asked=120.0)


@pytest.mark.parametrize(("status", "header"), [(502, "2"), (429, "soon"), (503, None)])
def test_backoff_when_retry_after_does_not_apply(status: int, header: str | None) -> None:
    # A 502's Retry-After is not a promise; an unreadable one is no answer either.
    failure = Failure(failure_kind(status), "busy", status, header)
    decision = policy(retry_backoff=0.01).after(failure, 1, 4)
    assert isinstance(decision, Retry) and decision.delay <= 0.01


def test_backoff_comes_from_the_services_config() -> None:
    fast = RetryPolicy(ExternalServiceConfig(base_url="http://x", retry_backoff=0.01))
    decision = fast.after(Failure("connection", "refused"), 1, 4)
    assert isinstance(decision, Retry) and decision.delay <= 0.01
    slow = RetryPolicy(
        ExternalServiceConfig(base_url="http://x", retry_backoff=100.0, retry_max_delay=100.0)
    )
    delays = {slow.after(Failure("connection", "refused"), 1, 4).delay for _ in range(50)}  # type: ignore[union-attr]
    assert max(delays) > 0.01  # full jitter over [0, 100): 50 draws all under 0.01 is ~1e-100


# --- one call, prepared once for every attempt ------------------------------------------


def registered(**fields: object) -> RegisteredService:
    settings: dict[str, object] = {"base_url": "http://up:8080", "api_key": "sk-1", **fields}
    config = ExternalServiceConfig(**settings)  # type: ignore[arg-type]
    return RegisteredService("svc", config, HttpConfig(connect_timeout=2), ServiceMetrics())


def prepare(svc: RegisteredService, method: str, path: str, **options: object) -> object:
    arguments: dict[str, object] = {
        "json": None,
        "data": None,
        "params": None,
        "headers": None,
        "idempotency_key": None,
        "timeout": None,
        **options,
    }
    return svc.prepare(method, path, **arguments)  # type: ignore[arg-type]


def test_a_json_call_is_prepared_once_with_its_headers() -> None:
    svc = registered(max_retries=2, timeout=7)
    call = svc.prepare(
        "post",
        "/v1/x",
        json={"a": 1},
        data=None,
        params={"q": "1"},
        headers={"X-Trace": "t"},
        idempotency_key="k-1",
        timeout=None,
    )
    assert (call.method, call.url, call.body) == ("POST", "http://up:8080/v1/x", b'{"a":1}')
    assert call.headers == {
        "Authorization": "Bearer sk-1",
        "Content-Type": "application/json",
        "X-Trace": "t",
        "Idempotency-Key": "k-1",
    }
    assert call.attempts == 3 and call.params == {"q": "1"}
    assert (call.timeout.total, call.timeout.sock_connect) == (7, 2)
    assert svc.json_headers == {"Authorization": "Bearer sk-1", "Content-Type": "application/json"}


def test_a_plain_call_shares_the_services_headers_and_timeout() -> None:
    svc = registered()
    call = svc.prepare(
        "GET",
        "",
        json=None,
        data=b"raw",
        params=None,
        headers=None,
        idempotency_key=None,
        timeout=1.5,
    )
    assert call.headers is svc.headers and call.body == b"raw"
    assert call.timeout.total == 1.5 and call.timeout.sock_connect == 2


@pytest.mark.parametrize(
    ("path", "timeout", "message"),
    [
        ("v1/x", None, "must start with '/'"),
        ("/x", 0, "timeout must be a finite number"),
        ("/x", float("inf"), "timeout must be a finite number"),
    ],
)
def test_a_bad_path_or_timeout_is_refused_before_anything_is_sent(
    path: str, timeout: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        prepare(registered(), "GET", path, timeout=timeout)
