"""A service as registered with the manager, and one call to it, both computed ahead.

:class:`RegisteredService` holds everything the request path needs for one
upstream (headers, timeouts, URL prefix, Prometheus children, its breaker and
retry policy), built once at registration, plus the running counts its status
reports. :class:`Call` is one request, built once per call and sent unchanged
on every attempt. Doing this work ahead is what keeps the request path within
the benchmark's >= 0.85x of raw aiohttp.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson

from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.settings import HttpConfig
from ads_infra.external_services.balancer import Balancer
from ads_infra.external_services.breaker import CircuitBreaker, CircuitState
from ads_infra.external_services.config import AuthScheme, ExternalServiceConfig
from ads_infra.external_services.fleet import FleetLink, Pacer
from ads_infra.external_services.metrics import ERROR_KINDS, LATENCY_BUCKETS, ServiceMetrics
from ads_infra.external_services.pacing import LocalPacer
from ads_infra.external_services.policy import RetryPolicy

__all__ = [
    "MASK",
    "AttemptHook",
    "BreakerListener",
    "Call",
    "RegisteredService",
    "client_timeout",
]

# Called with (service name, new state, previous state) on every breaker change.
BreakerListener = Callable[[str, CircuitState, CircuitState], None]

MASK = "********"

# How many distinct plain calls (method, path) a service keeps prepared; past
# that, further ones are prepared per call, as any other call is.
PLAIN_CALLS = 256


def client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """``total`` bounds the whole attempt; ``connect`` only opening a new socket.

    Not aiohttp's ``connect=``: that also counts waiting for a free pooled
    connection, so with a slow upstream and more callers than the pool, calls
    would fail locally as timeouts (and open the breaker) without the upstream
    ever being slow to connect.
    """
    return aiohttp.ClientTimeout(total=total or None, sock_connect=connect or None)


# Builds one attempt's body and extra headers from its retry count (0 for the
# first): for protocols that stamp each attempt (Segment's sentAt and
# X-Retry-Count, a webhook signature's timestamp).
AttemptHook = Callable[[int], tuple[bytes, Mapping[str, str]]]


class Call:
    """One request as every attempt sends it: method, URL, body, headers, timeout.

    With ``per_attempt`` set, each attempt's body and extra headers come from it.
    """

    __slots__ = (
        "attempts",
        "body",
        "headers",
        "method",
        "params",
        "per_attempt",
        "timeout",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        body: bytes | str | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        attempts: int,
        per_attempt: AttemptHook | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.params = params
        self.headers = headers
        self.timeout = timeout
        self.attempts = attempts
        self.per_attempt = per_attempt

    def for_attempt(self, retry: int) -> tuple[bytes | str | None, Mapping[str, str]]:
        """The body and headers of attempt ``retry + 1``."""
        if self.per_attempt is None:
            return self.body, self.headers
        body, extra = self.per_attempt(retry)
        return body, {**self.headers, **extra}


class RegisteredService:
    """Everything the request path needs for one service, computed once, and its counts."""

    __slots__ = (
        "avg_latency",
        "breaker",
        "calls",
        "config",
        "connect_timeout",
        "errors",
        "extra_secrets",
        "fleet",
        "headers",
        "http",
        "json_headers",
        "last_error",
        "last_error_at",
        "last_latency",
        "last_success",
        "latency_counts",
        "latency_sum",
        "limiter",
        "m_errors",
        "name",
        "pool",
        "rate_spacing",
        "requests",
        "retry",
        "retry_statuses",
        "secrets",
        "target",
        "timeout",
        "url_prefix",
    )

    def __init__(
        self,
        name: str,
        config: ExternalServiceConfig,
        http: HttpConfig,
        metrics: ServiceMetrics,
        extra_secrets: tuple[str, ...] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        fleet: FleetLink | None = None,
        on_breaker_change: BreakerListener | None = None,
    ) -> None:
        self.name = name
        self.fleet = fleet
        self.extra_secrets = extra_secrets
        self.http = http
        # Set by use_pool(): the instances a discovered upstream's calls spread over.
        self.pool: Balancer | None = None
        self._derive(config)
        self.limiter: Pacer | None = None  # loop-bound: made on first use
        gauge = metrics.breaker_state.labels(name).set

        def changed(state: CircuitState) -> None:
            gauge(state)
            if on_breaker_change is not None:
                on_breaker_change(name, state, self.breaker.previous)

        self.breaker = CircuitBreaker(
            config.failure_threshold, config.recovery_timeout, clock=clock, on_change=changed
        )
        metrics.breaker_state.labels(name).set(0)
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: slower than all
        self.latency_sum = 0.0
        self.m_errors = {kind: metrics.errors.labels(name, kind) for kind in ERROR_KINDS}
        self.requests = 0
        self.errors = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_latency: float | None = None
        self.avg_latency: float | None = None

    def _derive(self, config: ExternalServiceConfig) -> None:
        """Everything the request path reads from ``config``, computed once."""
        self.config = config
        # Plain calls prepared under the previous config keep their timeout and
        # attempts; the next ones are built from this config.
        self.calls: dict[tuple[str, str], Call] = {}
        if self.pool is None:  # a discovered upstream's URL comes from its instances
            self.url_prefix = config.base_url
            self.target = mask_url(config.base_url)
        headers: dict[str, str] = {}
        secrets: list[str] = []
        key = config.api_key.get_secret_value() if isinstance(config.api_key, Secret) else ""
        if key and config.auth_scheme is AuthScheme.BEARER:
            headers["Authorization"] = f"Bearer {key}"
        elif key and config.auth_scheme is AuthScheme.BASIC:
            token = base64.b64encode(f"{key}:".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
            secrets.append(token)
        if key:
            secrets.insert(0, key)
        # Longest first, so a secret containing another is masked whole.
        self.secrets = tuple(
            sorted({s for s in (*secrets, *self.extra_secrets) if s}, key=len, reverse=True)
        )
        self.headers = headers
        self.json_headers = {**headers, "Content-Type": "application/json"}
        self.connect_timeout = self.http.connect_timeout
        self.timeout = client_timeout(config.timeout, self.http.connect_timeout)
        self.retry = RetryPolicy(config)
        self.retry_statuses = frozenset(config.retry_statuses)
        self.rate_spacing = (
            config.rate_period / config.rate_limit if config.rate_limit is not None else 0.0
        )

    def reconfigure(self, config: ExternalServiceConfig) -> None:
        """Take ``config`` while running: breaker state, counts and metrics are kept.

        Synchronous, so a reload applies it between two steps of the loop: a
        call already prepared keeps its own attempts and timeout, the next one
        gets the new ones. A new rate gets a new limiter; calls queued on the
        old one queue again on it (see the manager's request path), so the
        upstream sees the new rate at once.
        """
        rate = (self.config.rate_limit, self.config.rate_period)
        self._derive(config)
        if (config.rate_limit, config.rate_period) != rate:
            self.limiter = None
        self.breaker.failure_threshold = config.failure_threshold
        self.breaker.recovery_timeout = config.recovery_timeout
        if self.pool is not None:
            self.pool.reconfigure(config.failure_threshold, config.recovery_timeout)

    def prepare(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        per_attempt: AttemptHook | None = None,
    ) -> Call:
        """The :class:`Call` for these arguments; ValueError for a bad path or timeout."""
        if path and path[0] != "/":
            # Appended to the base URL as is: "v1/x" would give "http://host:80v1/x",
            # or even another port ("http://host:80" + "81/x").
            raise ValueError(
                f"{self.name}: the path {self.scrub(path)!r} must start with '/' "
                f"(it is appended to the base URL): use '/{self.scrub(path)}'"
            )
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            # aiohttp reads 0 (or less) as "no timeout at all".
            raise ValueError(
                f"{self.name}: timeout must be a finite number of seconds > 0, got {timeout!r}; "
                "pass None for the service's own"
            )
        method = method.upper()
        if json is not None:
            body: bytes | str | None = orjson.dumps(json)
            hdrs: Mapping[str, str] = self.json_headers
        else:
            body = data
            hdrs = self.headers
        if headers or idempotency_key:
            merged = {**hdrs, **headers} if headers else dict(hdrs)
            if idempotency_key:
                merged["Idempotency-Key"] = idempotency_key
            hdrs = merged
        return Call(
            method,
            self.url_prefix + path,
            body,
            params,
            hdrs,
            self.timeout if timeout is None else client_timeout(timeout, self.connect_timeout),
            self.retry.attempts(method, idempotency_key),
            per_attempt,
        )

    def plain(self, method: str, path: str) -> Call:
        """The :class:`Call` of ``method path`` with no body, query, extra headers or own
        timeout: the common call, prepared once and reused (a Call is never changed)."""
        call = self.calls.get((method, path))
        if call is None:
            call = self.prepare(method, path)
            if len(self.calls) < PLAIN_CALLS:  # paths carrying ids must not grow it forever
                self.calls[(method, path)] = call
        return call

    def use_pool(self, pool: Balancer, described: str) -> None:
        """Send every attempt to an instance ``pool`` picks; a call's URL is then its path.

        A reconfiguration keeps the pool and gives its breakers the new thresholds.
        """
        self.pool = pool
        self.url_prefix = ""
        self.target = described
        self.calls = {}  # their URLs held the base URL

    def make_limiter(self) -> Pacer:
        config = self.config
        if self.fleet is not None and config.rate_limit is not None:
            # One schedule for every process (Redis), this process's share while it is away.
            self.limiter = self.fleet.pacer(self.name, config.rate_limit, config.rate_period)
        else:
            # One call every rate_spacing seconds: pacing, no burst.
            self.limiter = LocalPacer(self.rate_spacing)
        return self.limiter

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def carry_counts(self, old: RegisteredService) -> None:
        """Take over the counts of the service this one replaces (Prometheus counters)."""
        self.requests += old.requests
        self.errors += old.errors
        self.latency_sum += old.latency_sum
        pairs = zip(self.latency_counts, old.latency_counts, strict=True)
        self.latency_counts = [mine + theirs for mine, theirs in pairs]

    def succeeded(self, elapsed: float) -> None:
        self.last_success = time.time()
        self.last_latency = elapsed
        avg = self.avg_latency
        self.avg_latency = elapsed if avg is None else avg * 0.9 + elapsed * 0.1

    def failed(self, kind: str, problem: str) -> None:
        self.errors += 1
        self.m_errors[kind].inc()
        self.last_error = problem
        self.last_error_at = time.time()
