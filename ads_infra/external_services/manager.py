"""ExternalServiceManager: one aiohttp session and one request path for every upstream.

A little over the usual module size: the request loop and the session's
lifecycle share state that would otherwise pass between modules on every call.

Each registered service gets, on that path: a rate limit (paced), a
timeout, retries with backoff and jitter (honouring ``Retry-After`` up to a
cap), a circuit breaker, Prometheus metrics and a status for health checks.

The manager owns the session and composes the pieces: the breaker decides
whether an attempt may go (``breaker.py``), the policy what its outcome means
and whether to send again (``policy.py``), ``failures.py`` the error the
caller sees, ``status.py`` the reports. The path is kept lean because the
benchmark holds it to >= 0.85x of raw aiohttp: per-service headers, timeouts,
URL prefixes and metric children are computed once at registration
(``registered.py``), nothing is logged or formatted unless an attempt fails,
and the limiter and breaker checks are O(1).
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import HttpConfig, LoadBalancing
from ads_infra.discovery.base import ServiceDiscovery
from ads_infra.external_services import failures, status
from ads_infra.external_services.balancer import Balancer
from ads_infra.external_services.breaker import REJECTED, CircuitBreaker, CircuitState
from ads_infra.external_services.config import ExternalServiceConfig, ServiceType
from ads_infra.external_services.fleet import BreakerSync, FleetLink
from ads_infra.external_services.identity import USER_AGENT
from ads_infra.external_services.metrics import LATENCY_BUCKETS, ServiceMetrics
from ads_infra.external_services.pacing import LocalPacer
from ads_infra.external_services.policy import (
    PERMANENT_ERROR_CODES,
    SUCCESS,
    Failure,
    GiveUp,
    Verdict,
    classify_exception,
    classify_status,
    failure_kind,
    should_retry_hint,
)
from ads_infra.external_services.registered import (
    AttemptHook,
    BreakerListener,
    Call,
    RegisteredService,
    client_timeout,
)
from ads_infra.external_services.response import ServiceResponse, read_bounded, read_error

__all__ = ["ExternalServiceManager"]

logger = logging.getLogger("ads_infra.external_services")


class Closeable(Protocol):
    async def close(self) -> None: ...


class ExternalServiceManager:
    """Registers upstream HTTP services and sends every request to them.

    >>> manager = ExternalServiceManager()
    >>> manager.register_service("crm", ExternalServiceConfig(base_url="https://crm.example"))
    >>> response = await manager.request("crm", "GET", "/v1/contacts")
    >>> await manager.close()

    The aiohttp session is created inside the running loop, on first use or in
    :meth:`start`, and closed by :meth:`close`; a closed manager opens a new
    session if used again. ``clock`` (monotonic seconds) is what the circuit
    breakers time their recovery by; tests pass a hand-driven one.
    """

    def __init__(
        self,
        config: HttpConfig | None = None,
        *,
        metrics_registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        fleet: FleetLink | None = None,
        discovery: ServiceDiscovery | None = None,
        balancing: LoadBalancing | None = None,
    ) -> None:
        self.config = config or HttpConfig()
        # With a discovery backend, an upstream it resolves (discovery.resolve) spreads
        # its calls over the live instances; every other upstream keeps its base URL.
        self._discovery = discovery
        self._balancing = balancing or (
            discovery.config.balancing if discovery is not None else LoadBalancing.ROUND_ROBIN
        )
        # With a fleet link (coordination.backend: redis) rate limits and breakers
        # are shared by every process; without one they are this process's own.
        self._fleet = fleet
        self._sync = (
            BreakerSync(fleet, lambda: {n: s.breaker for n, s in self._services.items()})
            if fleet is not None
            else None
        )
        self._listeners: list[BreakerListener] = []
        self._services: dict[str, RegisteredService] = {}
        self.metrics = ServiceMetrics(metrics_registry, self._services.values)
        self._clock = clock
        self._offline: dict[str, tuple[ServiceType, str]] = {}
        self._dependents: list[Closeable] = []
        self._session: aiohttp.ClientSession | None = None
        # Counts close() calls: a request that sees it change was cut off by our
        # own close, not by the upstream.
        self._closes = 0
        self._closed_signal: asyncio.Future[None] | None = None  # set by close()

    # --- registration -----------------------------------------------------------

    @property
    def fleet(self) -> FleetLink | None:
        """The fleet link (coordination.backend: redis), or None: per process."""
        return self._fleet

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
        replaced = self._services.get(name)
        self._services[name] = svc = RegisteredService(
            name,
            config,
            self.config,
            self.metrics,
            secrets,
            clock=self._clock,
            fleet=self._fleet,
            on_breaker_change=self._breaker_changed,
        )
        if replaced is not None:  # counters only ever grow
            svc.carry_counts(replaced)
        discovered = self._discovery.service_for(name) if self._discovery is not None else None
        if discovered is not None and self._discovery is not None:
            self._use_discovery(svc, discovered, self._discovery)

    def reconfigure_service(self, name: str, config: ExternalServiceConfig) -> None:
        """Give the registered service ``name`` a new config, keeping its state. No I/O.

        Unlike :meth:`register_service`, the breaker's state and the counts stay;
        limits, retries, timeouts and breaker thresholds take effect at once.
        """
        self._service(name).reconfigure(config)

    def _use_discovery(
        self, svc: RegisteredService, service: str, discovery: ServiceDiscovery
    ) -> None:
        name = svc.name

        def changed(url: str, state: CircuitState) -> None:
            level = logging.WARNING if state is CircuitState.OPEN else logging.INFO
            logger.log(level, "%s: instance %s circuit -> %s", name, mask_url(url), state.label)

        pool = Balancer(
            discovery.instances(service),
            self._balancing,
            failure_threshold=svc.config.failure_threshold,
            recovery_timeout=svc.config.recovery_timeout,
            clock=self._clock,
            on_change=changed,
        )
        svc.use_pool(pool, f"{discovery.backend}:{service}")

    def on_breaker_change(self, listener: BreakerListener) -> None:
        """Call ``listener(service, state, previous)`` on every breaker change (to alert).

        With a shared backend that includes changes this process follows from
        another one. A listener that raises is logged and does not stop the others.
        """
        self._listeners.append(listener)

    def _breaker_changed(self, name: str, state: CircuitState, previous: CircuitState) -> None:
        level = logging.WARNING if state is CircuitState.OPEN else logging.INFO
        logger.log(level, "%s: circuit %s -> %s", name, previous.label, state.label)
        for listener in self._listeners:
            try:
                listener(name, state, previous)
            except Exception:
                logger.exception("%s: a breaker listener failed", name)
        if self._sync is not None:
            self._sync.changed(name, self._services[name].breaker, previous)

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

    def _service(self, name: str) -> RegisteredService:
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
            # Upstreams see who calls (aiohttp's default names only aiohttp).
            headers={"User-Agent": USER_AGENT},
            timeout=client_timeout(cfg.total_timeout, cfg.connect_timeout),
        )
        self._closed_signal = loop.create_future()
        if self._sync is not None:
            self._sync.start()
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
        if self._sync is not None:
            await self._sync.close()
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
        per_attempt: AttemptHook | None = None,
    ) -> ServiceResponse:
        """Send one request to ``service`` and return its (2xx/3xx) response.

        Idempotent methods (GET, PUT, DELETE, ...) are retried on connection
        errors, timeouts, 5xx and the service's ``retry_statuses`` (408, 429);
        POST and PATCH only when they carry an ``idempotency_key`` (sent as
        ``Idempotency-Key``). ``x-should-retry`` from the upstream overrides
        that; a provider error code no retry can change (``insufficient_quota``,
        ``invalid_api_key``) is not retried. ``timeout`` (default: the
        service's) bounds each attempt; time queued for the rate limit is not
        part of it; the service's ``deadline`` bounds the whole call.
        ``per_attempt(retry)`` (retry 0 first) gives each attempt's body and
        extra headers, for protocols that stamp every attempt.

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
        if (
            json is None
            and data is None
            and params is None
            and headers is None
            and idempotency_key is None
            and timeout is None
            and per_attempt is None
        ):
            call = svc.plain(method, path)
        else:
            call = svc.prepare(
                method,
                path,
                json=json,
                data=data,
                params=params,
                headers=headers,
                idempotency_key=idempotency_key,
                timeout=timeout,
                per_attempt=per_attempt,
            )
        closes = self._closes
        deadline = svc.config.deadline
        started = time.monotonic() if deadline is not None else 0.0
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(svc, call, closes, attempt - 1, started)
            if isinstance(outcome, ServiceResponse):
                return outcome
            elapsed = time.monotonic() - started if deadline is not None else 0.0
            decision = svc.retry.after(outcome, attempt, call.attempts, elapsed)
            if isinstance(decision, GiveUp):
                raise failures.given_up(svc, call.method, outcome, attempt, decision)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s: %s attempt %d/%d failed (%s); retrying in %.3f s",
                    svc.name,
                    call.method,
                    attempt,
                    call.attempts,
                    outcome.problem,
                    decision.delay,
                )
            await self._pause(decision.delay, closes)

    async def _attempt(
        self, svc: RegisteredService, call: Call, closes: int, retry: int, started: float
    ) -> ServiceResponse | Failure:
        """Send ``call`` once: the response, or the retryable Failure, counted everywhere.

        Raises for what no retry can change: the breaker refuses, the answer is
        a client error, the manager was closed (``closes`` is the close count
        the call started under), or the attempt was cancelled.
        """
        breaker = svc.breaker
        pool = svc.pool
        if pool is None and breaker.would_reject():
            raise failures.circuit_open(svc, call.method)
        if svc.rate_spacing:
            limiter = svc.limiter or svc.make_limiter()
            # A free slot is taken without awaiting; otherwise queue for the next.
            if not (isinstance(limiter, LocalPacer) and limiter.try_take()):
                await limiter.acquire()
            while svc.limiter is not limiter and svc.rate_spacing:
                # A reload changed the rate while this call queued: queue again on
                # the new limiter, so the upstream sees the new rate at once.
                limiter = svc.limiter or svc.make_limiter()
                await limiter.acquire()
        # Read per attempt: close() may have come during the backoff or the
        # rate-limit wait, and its session is gone.
        if closes != self._closes:
            raise failures.closed_midway(svc, call.method)
        session = self._session
        if session is None or session.closed:
            session = self._open_session()
        url = call.url
        member = None
        if pool is None:
            token = breaker.admit()
        else:
            # A discovered upstream: one of its live instances, each with its own breaker.
            picked = pool.admit()
            if picked is None:
                raise failures.no_instance(svc, call.method, pool)
            member, token = picked
            breaker = member.breaker
            url = member.url + url
        if token == REJECTED:
            raise failures.circuit_open(svc, call.method)
        if self._sync is not None and pool is None and breaker.state is CircuitState.HALF_OPEN:
            # One probe fleet-wide: another process may hold this period's.
            try:
                claimed = await self._sync.claim(svc.name, breaker)
            except BaseException:
                breaker.abandon(token)
                raise
            if not claimed:
                raise failures.circuit_open(svc, call.method)
        body, headers = call.for_attempt(retry)
        timeout = call.timeout
        deadline = svc.config.deadline
        if deadline is not None:
            # The last attempt gets what is left of the call's deadline, not a full timeout.
            left = deadline - (time.monotonic() - started)
            if timeout.total is None or left < timeout.total:
                timeout = client_timeout(max(left, 0.001), svc.connect_timeout)
        svc.requests += 1
        sent = time.perf_counter()
        try:
            async with session.request(
                call.method,
                url,
                data=body,
                params=call.params,
                headers=headers,
                timeout=timeout,
            ) as resp:
                limit = svc.config.max_response_bytes
                declared = resp.content_length
                if (
                    declared is not None
                    and declared <= limit
                    and "Content-Encoding" not in resp.headers
                ):
                    # read_bounded's fast path, without a coroutine of its own:
                    # aiohttp stops reading at Content-Length.
                    payload = await resp.read()
                else:
                    payload = await read_bounded(resp, svc.name, limit)
                status_code = resp.status
                resp_headers = resp.headers
        except BaseException as exc:
            if member is not None:
                Balancer.done(member)
            kind = classify_exception(exc)
            if kind is None:
                breaker.abandon(token)  # cancelled: let the next caller probe
                raise
            if kind == "timeout":
                problem = f"no answer within {timeout.total:g} s"
            else:
                problem = svc.scrub(mask_url(f"{type(exc).__name__}: {exc}"))
            failure = Failure(kind, problem)
        else:
            if member is not None:
                Balancer.done(member)
            elapsed = time.perf_counter() - sent
            svc.latency_counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
            svc.latency_sum += elapsed
            verdict = classify_status(status_code, svc.retry_statuses)
            if verdict is SUCCESS:
                breaker.success(token)
                svc.succeeded(elapsed)
                return ServiceResponse(status_code, resp_headers, payload, svc.name)
            # The cold path from here: an error answer.
            error = read_error(payload)
            hint = should_retry_hint(resp_headers.get("x-should-retry"))
            if hint is True:
                verdict = Verdict.RETRYABLE
            if error.code in PERMANENT_ERROR_CODES:
                verdict = Verdict.PERMANENT  # out of quota, a bad key: no retry changes it
            if verdict is Verdict.PERMANENT:
                # The upstream is up and the request (or the account) is wrong: not
                # a breaker failure, and retrying would not help.
                breaker.success(token)
                svc.succeeded(elapsed)
                raise failures.client_error(svc, call.method, status_code, error)
            failure = Failure(
                failure_kind(status_code),
                f"answered {status_code}: {svc.scrub(error.message)}",
                status_code,
                resp_headers.get("Retry-After"),
                resp_headers.get("retry-after-ms"),
                final=hint is False,
                error=error,
            )
        if failure.status == 0 and closes != self._closes:
            # Our own close() cut the attempt off: says nothing about the upstream.
            breaker.abandon(token)
            raise failures.closed_midway(svc, call.method)
        breaker.failure(token)
        svc.failed(failure.kind, failure.problem)
        return failure

    async def _pause(self, delay: float, closes: int) -> None:
        """Wait ``delay`` seconds before a retry; a close() meanwhile ends the wait."""
        closed = self._closed_signal
        if closed is None or closes != self._closes:
            await asyncio.sleep(delay)
        else:
            await asyncio.wait((closed,), timeout=delay)

    async def request_json(self, service: str, method: str, path: str = "", **kwargs: Any) -> Any:
        """:meth:`request`, returning the decoded JSON body (None when empty)."""
        return (await self.request(service, method, path, **kwargs)).json()

    # --- status and health --------------------------------------------------------

    def get_service_status(self, name: str | None = None) -> dict[str, Any]:
        """Status of one service, or ``{name: status}`` of all of them.

        Breaker state, counts, last success and last error (wall-clock epoch
        seconds), latency in ms. No secret.
        """
        if name is not None:
            if name in self._offline:
                return status.offline_status(name, *self._offline[name])
            return status.service_status(self._service(name))
        statuses = {n: status.service_status(s) for n, s in self._services.items()}
        statuses.update({n: status.offline_status(n, *o) for n, o in self._offline.items()})
        return statuses

    async def health_check(self) -> list[HealthStatus]:
        """One report per service (component ``services.<name>``); never raises.

        A service with ``health_path`` is asked (one GET, no retry); any other
        is judged by its breaker: unhealthy while the circuit is open.
        """
        reports = [status.offline_health(n, detail) for n, (_, detail) in self._offline.items()]
        reports.extend(await asyncio.gather(*map(self._check, self._services.values())))
        return reports

    async def _check(self, svc: RegisteredService) -> HealthStatus:
        health_path = svc.config.health_path
        if svc.pool is not None:
            return status.pool_health(svc, svc.pool)
        if health_path is None:
            return status.passive_health(svc)
        return await status.ask_health(self.session, svc, health_path)

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "closed"
        return f"ExternalServiceManager(services={self.services}, session={state})"
