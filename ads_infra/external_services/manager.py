"""ExternalServiceManager: one aiohttp session and one request path for every upstream.

Each registered service gets, on that path: a rate limit (aiolimiter), a
timeout, retries with backoff and jitter (honouring ``Retry-After`` up to a
cap), a circuit breaker, Prometheus metrics and a status for health checks.

The request path is kept lean because the benchmark holds it to >= 0.85x of
raw aiohttp: per-service headers, timeouts, URL prefixes and metric children
are computed once at registration, nothing is logged or formatted unless an
attempt fails, and the limiter and breaker checks are O(1).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiolimiter import AsyncLimiter
from multidict import CIMultiDictProxy
from prometheus_client import CollectorRegistry

from ads_infra.core.errors import (
    CircuitOpenError,
    ConfigurationError,
    ExternalServiceError,
    RateLimitedError,
    ServiceTimeoutError,
    UpstreamError,
)
from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import Secret, mask_url
from ads_infra.core.section import ConfigSection
from ads_infra.core.section import url_problem as _url_problem
from ads_infra.core.settings import HttpConfig
from ads_infra.external_services.breaker import REJECTED, CircuitBreaker, CircuitState
from ads_infra.external_services.metrics import ServiceMetrics
from ads_infra.external_services.retry import (
    IDEMPOTENT_METHODS,
    backoff_delay,
    parse_retry_after,
)

__all__ = [
    "AuthScheme",
    "ExternalServiceConfig",
    "ExternalServiceManager",
    "ServiceResponse",
    "ServiceType",
]

logger = logging.getLogger("ads_infra.external_services")

MASK = "********"
ERROR_KINDS = (
    "timeout",
    "connection",
    "server_error",
    "rate_limited",
    "client_error",
    "circuit_open",
)


class ServiceType(enum.StrEnum):
    """What an external service is for (the seed's names)."""

    AI_PROVIDER = "ai_provider"
    ANALYTICS = "analytics"
    NOTIFICATION = "notification"
    WEBHOOK = "webhook"
    CUSTOM = "custom"


class AuthScheme(enum.StrEnum):
    """How ``api_key`` is sent: ``Authorization: Bearer <key>`` or HTTP Basic
    with the key as user name and no password (Segment's write keys)."""

    BEARER = "bearer"
    BASIC = "basic"
    NONE = "none"


@dataclasses.dataclass(frozen=True, repr=False)
class ExternalServiceConfig(ConfigSection):
    """One upstream HTTP API (the seed's fields, plus retry, timeout and breaker).

    ``rate_limit`` requests per ``rate_period`` seconds (None: unlimited) are
    *paced*, one every ``rate_period / rate_limit`` seconds, so the upstream
    never sees more than ``rate_limit`` in any window of ``rate_period``
    seconds, even under heavy concurrency (a bucket that allows a burst lets
    through up to twice the limit in one window).

    ``max_retries`` is 3, a few seconds at most with the default backoff; a
    ``Retry-After`` longer than ``retry_after_cap`` seconds is not waited for:
    the call fails at once with :class:`~ads_infra.errors.RateLimitedError`.
    The breaker opens after ``failure_threshold`` consecutive failed attempts
    (connection errors, timeouts, 429 and 5xx; other 4xx are the caller's
    fault and do not count) and lets one probe through after
    ``recovery_timeout`` seconds.
    """

    _section: ClassVar[str] = "service"

    service_type: ServiceType = ServiceType.CUSTOM
    base_url: str = ""
    # Given as a str (the seed does) or a Secret; always held as a Secret.
    api_key: Secret | str | None = None
    rate_limit: int | None = dataclasses.field(default=100, metadata={"min": 1})
    rate_period: float = dataclasses.field(default=1.0, metadata={"min": 0})
    timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    max_retries: int = dataclasses.field(default=3, metadata={"min": 0})
    retry_backoff: float = dataclasses.field(default=0.5, metadata={"min": 0})
    retry_max_delay: float = dataclasses.field(default=10.0, metadata={"min": 0})
    retry_after_cap: float = dataclasses.field(default=60.0, metadata={"min": 0})
    failure_threshold: int = dataclasses.field(default=5, metadata={"min": 1})
    recovery_timeout: float = dataclasses.field(default=30.0, metadata={"min": 0})
    auth_scheme: AuthScheme = AuthScheme.BEARER
    health_path: str | None = None

    def validate(self) -> None:
        if not self.base_url:
            raise ConfigurationError(
                "is required: the service's root URL, e.g. https://api.openai.com",
                key="base_url",
            )
        problem = _url_problem(self.base_url, ("http", "https"))
        if problem:
            raise ConfigurationError(f"{mask_url(self.base_url)!r} {problem}", key="base_url")
        self._normalize(base_url=self.base_url.rstrip("/"))
        if self.rate_period <= 0:
            raise ConfigurationError("must be > 0 seconds", key="rate_period")
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ConfigurationError("must be a finite number of seconds > 0", key="timeout")
        if self.health_path is not None and not self.health_path.startswith("/"):
            raise ConfigurationError(
                f"{self.health_path!r} must start with '/' (it is appended to base_url)",
                key="health_path",
            )
        parts = urlsplit(self.base_url)
        has_key = isinstance(self.api_key, Secret) and bool(self.api_key.get_secret_value())
        if (
            (parts.username or parts.password)
            and has_key
            and self.auth_scheme is not AuthScheme.NONE
        ):
            # aiohttp refuses to send both, and only when the request is made.
            raise ConfigurationError(
                "holds credentials (user:password@) and api_key is set too; only one can be "
                "sent: remove the credentials from the URL, or the api_key",
                key="base_url",
            )


class ServiceResponse:
    """A completed HTTP response: status, headers and the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"ServiceResponse(status={self.status}, bytes={len(self.body)})"


class Closeable(Protocol):
    async def close(self) -> None: ...


class _Service:
    """Everything the request path needs for one service, computed once."""

    __slots__ = (
        "avg_latency",
        "breaker",
        "config",
        "errors",
        "headers",
        "json_headers",
        "last_error",
        "last_error_at",
        "last_latency",
        "last_success",
        "limiter",
        "m_errors",
        "m_latency",
        "m_requests",
        "max_attempts",
        "name",
        "rate_spacing",
        "requests",
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
    ) -> None:
        self.name = name
        self.config = config
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
            sorted({s for s in (*secrets, *extra_secrets) if s}, key=len, reverse=True)
        )
        self.headers = headers
        self.json_headers = {**headers, "Content-Type": "application/json"}
        self.timeout = _client_timeout(config.timeout, http.connect_timeout)
        self.max_attempts = config.max_retries + 1
        self.rate_spacing = (
            config.rate_period / config.rate_limit if config.rate_limit is not None else 0.0
        )
        self.limiter: AsyncLimiter | None = None  # loop-bound: made on first use
        self.breaker = CircuitBreaker(
            config.failure_threshold,
            config.recovery_timeout,
            on_change=metrics.breaker_state.labels(name).set,
        )
        metrics.breaker_state.labels(name).set(0)
        self.m_requests = metrics.requests.labels(name)
        self.m_latency = metrics.latency.labels(name)
        self.m_errors = {kind: metrics.errors.labels(name, kind) for kind in ERROR_KINDS}
        self.requests = 0
        self.errors = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_latency: float | None = None
        self.avg_latency: float | None = None

    def make_limiter(self) -> AsyncLimiter:
        # Capacity 1, refilled every rate_spacing seconds: pacing, no burst.
        self.limiter = AsyncLimiter(1, self.rate_spacing)
        return self.limiter

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

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


def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """``total`` bounds the whole attempt; ``connect`` only opening a new socket.

    Not aiohttp's ``connect=``: that also counts waiting for a free pooled
    connection, so with a slow upstream and more callers than the pool, calls
    would fail locally as timeouts (and open the breaker) without the upstream
    ever being slow to connect.
    """
    return aiohttp.ClientTimeout(total=total or None, sock_connect=connect or None)


def _upstream_message(payload: bytes, limit: int = 300) -> str:
    """The human part of an error body: OpenAI's ``error.message``, or the text."""
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        data = None
    message: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code") or error.get("type")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
    if message is None:
        message = payload[:limit].decode("utf-8", errors="replace").strip()
    text = str(message)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ExternalServiceManager:
    """Registers upstream HTTP services and sends every request to them.

    >>> manager = ExternalServiceManager()
    >>> manager.register_service("crm", ExternalServiceConfig(base_url="https://crm.example"))
    >>> response = await manager.request("crm", "GET", "/v1/contacts")
    >>> await manager.close()

    The aiohttp session is created inside the running loop, on first use or in
    :meth:`start`, and closed by :meth:`close`; a closed manager opens a new
    session if used again.
    """

    def __init__(
        self,
        config: HttpConfig | None = None,
        *,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config or HttpConfig()
        self.metrics = ServiceMetrics(metrics_registry)
        self._services: dict[str, _Service] = {}
        self._offline: dict[str, tuple[ServiceType, str]] = {}
        self._dependents: list[Closeable] = []
        self._session: aiohttp.ClientSession | None = None
        # Counts close() calls: a request that sees it change was cut off by our
        # own close, not by the upstream.
        self._closes = 0
        self._closed_signal: asyncio.Future[None] | None = None  # set by close()

    # --- registration -----------------------------------------------------------

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The Prometheus registry holding this manager's metrics."""
        return self.metrics.registry

    def register_service(
        self, name: str, config: ExternalServiceConfig, *, secrets: tuple[str, ...] = ()
    ) -> None:
        """Register (or replace) the upstream ``name``. No I/O.

        ``secrets`` are further strings (a webhook URL's path) masked wherever
        the manager reports on this service; the API key always is.
        """
        if not name or not isinstance(name, str):
            raise ConfigurationError("a service needs a non-empty name", key="name")
        if not isinstance(config, ExternalServiceConfig):
            raise ConfigurationError(
                f"expected an ExternalServiceConfig, got {type(config).__name__}", key=name
            )
        self._offline.pop(name, None)
        self._services[name] = _Service(name, config, self.config, self.metrics, secrets)

    def register_offline(self, name: str, service_type: ServiceType, detail: str = "") -> None:
        """Record a service that runs in-process (no HTTP): always healthy."""
        self._services.pop(name, None)
        self._offline[name] = (service_type, detail)

    def unregister_service(self, name: str) -> None:
        self._services.pop(name, None)
        self._offline.pop(name, None)

    def attach(self, dependent: Closeable) -> None:
        """Close ``dependent`` (e.g. a buffering AnalyticsService) before the session."""
        if dependent not in self._dependents:
            self._dependents.append(dependent)

    @property
    def services(self) -> list[str]:
        return [*self._services, *self._offline]

    def has_service(self, name: str) -> bool:
        return name in self._services or name in self._offline

    def get_config(self, name: str) -> ExternalServiceConfig:
        return self._service(name).config

    def scrub(self, name: str, text: str) -> str:
        """``text`` with the secrets of service ``name`` masked."""
        svc = self._services.get(name)
        return svc.scrub(text) if svc is not None else text

    def breaker(self, name: str) -> CircuitBreaker:
        return self._service(name).breaker

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            known = ", ".join(sorted(self._services)) or "none"
            raise ConfigurationError(
                f"no external service named {name!r} is registered (registered: {known}); "
                "call register_service() first",
                key=name,
            ) from None

    # --- lifecycle --------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use inside the running loop."""
        session = self._session
        if session is None or session.closed:
            session = self._open_session()
        return session

    def _open_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()  # fail clearly outside a loop, before binding anything
        cfg = self.config
        connector = aiohttp.TCPConnector(
            limit=cfg.connector_limit, limit_per_host=cfg.connector_limit_per_host
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=_client_timeout(cfg.total_timeout, cfg.connect_timeout),
        )
        self._closed_signal = loop.create_future()
        return self._session

    async def start(self) -> None:
        """Open the session now (inside the running loop)."""
        _ = self.session

    async def close(self) -> None:
        """Flush and close dependents (analytics), then the session. Idempotent."""
        for dependent in list(self._dependents):
            try:
                await dependent.close()
            except Exception as exc:  # one failing dependent must not leak the session
                logger.error("closing %s failed: %s", type(dependent).__name__, exc)
        session, self._session = self._session, None
        self._closes += 1
        signal, self._closed_signal = self._closed_signal, None
        if signal is not None and not signal.done():
            signal.set_result(None)
        if session is not None and not session.closed:
            await session.close()
        for service in self._services.values():
            service.limiter = None  # bound to this loop; a later loop gets a new one

    async def __aenter__(self) -> ExternalServiceManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the request path ---------------------------------------------------------

    async def request(
        self,
        service: str,
        method: str,
        path: str = "",
        *,
        json: Any = None,
        data: bytes | str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (per-attempt, not per call)
    ) -> ServiceResponse:
        """Send one request to ``service`` and return its (2xx/3xx) response.

        Idempotent methods (GET, PUT, DELETE, ...) are retried on connection
        errors, timeouts, 429 and 5xx; POST and PATCH only when they carry an
        ``idempotency_key`` (sent as ``Idempotency-Key``). ``timeout`` (default:
        the service's) bounds each attempt; time queued for the rate limit is
        not part of it.

        Raises UpstreamError (4xx, or 5xx after retries), RateLimitedError,
        ServiceTimeoutError, CircuitOpenError or ExternalServiceError
        (connection failed, or :meth:`close` ran while the call was in flight or
        waiting to retry); none of them holds the API key. ValueError, before
        anything is sent, for a ``path`` not starting with ``/`` or a
        ``timeout`` that is not a finite number > 0.
        """
        svc = self._services.get(service)
        if svc is None:
            svc = self._service(service)  # raises the explanatory error
        if path and path[0] != "/":
            # Appended to the base URL as is: "v1/x" would give "http://host:80v1/x",
            # or even another port ("http://host:80" + "81/x").
            raise ValueError(
                f"{svc.name}: the path {svc.scrub(path)!r} must start with '/' "
                f"(it is appended to the base URL): use '/{svc.scrub(path)}'"
            )
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            # aiohttp reads 0 (or less) as "no timeout at all".
            raise ValueError(
                f"{svc.name}: timeout must be a finite number of seconds > 0, got {timeout!r}; "
                "pass None for the service's own"
            )
        method = method.upper()
        closes = self._closes
        if json is not None:
            body: bytes | str | None = orjson.dumps(json)
            hdrs = svc.json_headers
        else:
            body = data
            hdrs = svc.headers
        if headers or idempotency_key:
            hdrs = {**hdrs, **headers} if headers else dict(hdrs)
            if idempotency_key:
                hdrs["Idempotency-Key"] = idempotency_key
        attempts = svc.max_attempts if idempotency_key or method in IDEMPOTENT_METHODS else 1
        client_timeout = svc.timeout
        if timeout is not None:
            client_timeout = _client_timeout(timeout, self.config.connect_timeout)
        url = svc.url_prefix + path
        breaker = svc.breaker
        attempt = 0
        while True:
            attempt += 1
            if breaker.would_reject():
                raise self._circuit_open(svc, method)
            if svc.rate_spacing:
                await (svc.limiter or svc.make_limiter()).acquire()
            # Read per attempt: close() may have come during the backoff or the
            # rate-limit wait, and its session is gone.
            if closes != self._closes:
                raise self._closed_midway(svc, method)
            session = self._session
            if session is None or session.closed:
                session = self._open_session()
            token = breaker.admit()
            if token == REJECTED:
                raise self._circuit_open(svc, method)
            svc.requests += 1
            svc.m_requests.inc()
            status = 0
            started = time.perf_counter()
            try:
                async with session.request(
                    method, url, data=body, params=params, headers=hdrs, timeout=client_timeout
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
                    resp_headers = resp.headers
            except TimeoutError:
                kind = "timeout"
                problem = f"no answer within {client_timeout.total} s"
            except aiohttp.ClientError as exc:
                kind = "connection"
                problem = svc.scrub(mask_url(f"{type(exc).__name__}: {exc}"))
            except BaseException:
                breaker.abandon(token)  # cancelled: let the next caller probe
                raise
            else:
                elapsed = time.perf_counter() - started
                svc.m_latency.observe(elapsed)
                if status < 400:
                    breaker.success(token)
                    svc.succeeded(elapsed)
                    return ServiceResponse(status, resp_headers, payload)
                if status != 429 and status < 500:
                    # The upstream is up and says the request is wrong: not a
                    # breaker failure, and retrying would not help.
                    breaker.success(token)
                    svc.succeeded(elapsed)
                    raise self._client_error(svc, method, status, payload)
                kind = "rate_limited" if status == 429 else "server_error"
                problem = f"answered {status}: {svc.scrub(_upstream_message(payload))}"
            if status == 0 and closes != self._closes:
                # Our own close() cut the attempt off: says nothing about the upstream.
                breaker.abandon(token)
                raise self._closed_midway(svc, method)
            breaker.failure(token)
            svc.failed(kind, problem)
            if attempt >= attempts:
                raise self._exhausted(svc, method, kind, problem, status, attempt)
            delay = backoff_delay(attempt, svc.config.retry_backoff, svc.config.retry_max_delay)
            if status in (429, 503):
                asked = parse_retry_after(resp_headers.get("Retry-After"))
                if asked is not None:
                    if asked > svc.config.retry_after_cap:
                        raise RateLimitedError(
                            f"{svc.name}: {method} was refused ({status}) and the upstream "
                            f"asks to retry after {asked:.0f} s, more than retry_after_cap "
                            f"({svc.config.retry_after_cap:.0f} s); try again later",
                            service=svc.name,
                            status=status,
                        )
                    delay = asked  # exactly what was asked: sooner would be refused again
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s: %s attempt %d/%d failed (%s); retrying in %.3f s",
                    svc.name,
                    method,
                    attempt,
                    attempts,
                    problem,
                    delay,
                )
            closed = self._closed_signal
            if closed is None or closes != self._closes:
                await asyncio.sleep(delay)
            else:
                await asyncio.wait((closed,), timeout=delay)  # close() ends the wait early

    async def request_json(self, service: str, method: str, path: str = "", **kwargs: Any) -> Any:
        """:meth:`request`, returning the decoded JSON body (None when empty)."""
        return (await self.request(service, method, path, **kwargs)).json()

    # --- errors (cold path) -------------------------------------------------------

    def _closed_midway(self, svc: _Service, method: str) -> ExternalServiceError:
        return ExternalServiceError(
            f"{svc.name}: {method} was cut off because the manager was closed while it was "
            "in flight; close the manager only after its calls have finished",
            service=svc.name,
        )

    def _circuit_open(self, svc: _Service, method: str) -> CircuitOpenError:
        svc.m_errors["circuit_open"].inc()
        last = f"; last error: {svc.last_error}" if svc.last_error else ""
        return CircuitOpenError(
            f"{svc.name}: {method} not sent, the circuit is open after "
            f"{svc.breaker.failure_threshold} consecutive failures{last}; it lets one probe "
            f"through in {svc.breaker.retry_after():.1f} s",
            service=svc.name,
        )

    def _client_error(
        self, svc: _Service, method: str, status: int, payload: bytes
    ) -> UpstreamError:
        svc.failed("client_error", f"answered {status}")
        advice = {
            401: "check the service's API key",
            403: "check the API key's permissions",
            404: "check the base URL and path",
        }.get(status, "check the request")
        message = svc.scrub(_upstream_message(payload))
        return UpstreamError(
            f"{svc.name}: {method} answered {status}: {message}; {advice}",
            service=svc.name,
            status=status,
        )

    def _exhausted(
        self, svc: _Service, method: str, kind: str, problem: str, status: int, attempts: int
    ) -> ExternalServiceError:
        where = f"{svc.name}: {method} failed after {attempts} attempt(s): {problem}"
        if kind == "timeout":
            return ServiceTimeoutError(
                f"{where}; the upstream is slow or down, raise its timeout or try later",
                service=svc.name,
            )
        if kind == "rate_limited":
            return RateLimitedError(
                f"{where}; lower the service's rate_limit or try later",
                service=svc.name,
                status=status,
            )
        if kind == "server_error":
            return UpstreamError(
                f"{where}; the upstream is failing, check its status page or try later",
                service=svc.name,
                status=status,
            )
        return ExternalServiceError(
            f"{where}; check that {svc.target} is reachable", service=svc.name
        )

    # --- status and health --------------------------------------------------------

    def get_service_status(self, name: str | None = None) -> dict[str, Any]:
        """Status of one service, or ``{name: status}`` of all of them.

        Breaker state, counts, last success and last error (wall-clock epoch
        seconds), latency in ms. No secret.
        """
        if name is not None:
            if name in self._offline:
                return self._offline_status(name)
            return self._status(self._service(name))
        statuses = {n: self._status(s) for n, s in self._services.items()}
        statuses.update({n: self._offline_status(n) for n in self._offline})
        return statuses

    def _offline_status(self, name: str) -> dict[str, Any]:
        service_type, detail = self._offline[name]
        return {
            "name": name,
            "service_type": service_type.value,
            "backend": "offline",
            "state": "closed",
            "healthy": True,
            "detail": detail,
        }

    def _status(self, svc: _Service) -> dict[str, Any]:
        breaker = svc.breaker
        cfg = svc.config

        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds * 1000, 3)

        return {
            "name": svc.name,
            "service_type": cfg.service_type.value,
            "backend": "http",
            "base_url": svc.target,
            "state": breaker.state.label,
            "healthy": breaker.state is not CircuitState.OPEN,
            "consecutive_failures": breaker.failures,
            "opens_after": breaker.failure_threshold,
            "retry_in_s": round(breaker.retry_after(), 3),
            "requests": svc.requests,
            "errors": svc.errors,
            "last_success": svc.last_success,
            "last_error": svc.last_error,
            "last_error_at": svc.last_error_at,
            "latency_ms": ms(svc.last_latency),
            "avg_latency_ms": ms(svc.avg_latency),
            "rate_limit": cfg.rate_limit,
            "rate_period": cfg.rate_period,
        }

    async def health_check(self) -> list[HealthStatus]:
        """One report per service (component ``services.<name>``); never raises.

        A service with ``health_path`` is asked (one GET, no retry); any other
        is judged by its breaker: unhealthy while the circuit is open.
        """
        reports = [
            HealthStatus(
                component=f"services.{name}",
                backend="offline",
                healthy=True,
                latency_ms=0.0,
                detail=detail or "in-process, no network",
            )
            for name, (_, detail) in self._offline.items()
        ]
        checks = [self._check(svc) for svc in self._services.values()]
        reports.extend(await asyncio.gather(*checks))
        return reports

    async def _check(self, svc: _Service) -> HealthStatus:
        component = f"services.{svc.name}"
        breaker = svc.breaker
        if svc.config.health_path is None:
            if breaker.state is CircuitState.OPEN:
                detail = f"circuit open; last error: {svc.last_error}"
            elif svc.last_success is None and svc.last_error is None:
                detail = "no calls yet"
            else:
                detail = f"circuit {breaker.state.label}"
                if svc.last_error:
                    detail += f"; last error: {svc.last_error}"
            latency = svc.avg_latency
            return HealthStatus(
                component=component,
                backend="http",
                healthy=breaker.state is not CircuitState.OPEN,
                latency_ms=None if latency is None else latency * 1000,
                detail=detail,
                target=svc.target,
            )
        started = time.perf_counter()
        try:
            async with self.session.get(
                svc.url_prefix + svc.config.health_path, headers=svc.headers, timeout=svc.timeout
            ) as resp:
                await resp.read()
                healthy, detail = resp.status < 500, f"answered {resp.status}"
        except TimeoutError:
            healthy, detail = False, f"no answer within {svc.timeout.total} s"
        except aiohttp.ClientError as exc:
            healthy, detail = False, svc.scrub(mask_url(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # a health check reports; it must not raise (e.g. a bad URL)
            healthy = False
            detail = "check failed: " + svc.scrub(mask_url(f"{type(exc).__name__}: {exc}"))
        return HealthStatus(
            component=component,
            backend="http",
            healthy=healthy,
            latency_ms=(time.perf_counter() - started) * 1000,
            detail=detail,
            target=svc.target,
        )

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "closed"
        return f"ExternalServiceManager(services={self.services}, session={state})"
