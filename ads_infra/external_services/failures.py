"""The errors a failed call raises, each naming the service, what failed and what to do.

Built only when a call fails (the cold path); every text that may quote the
upstream goes through the service's ``scrub``, so no error holds a secret.
"""

from __future__ import annotations

from ads_infra.core.errors import (
    CircuitOpenError,
    ExternalServiceError,
    RateLimitedError,
    ServiceTimeoutError,
    UpstreamError,
)
from ads_infra.external_services.policy import Failure, GiveUp
from ads_infra.external_services.registered import RegisteredService
from ads_infra.external_services.response import upstream_message

__all__ = ["circuit_open", "client_error", "closed_midway", "given_up"]

_CLIENT_ADVICE = {
    401: "check the service's API key",
    403: "check the API key's permissions",
    404: "check the base URL and path",
}


def closed_midway(svc: RegisteredService, method: str) -> ExternalServiceError:
    return ExternalServiceError(
        f"{svc.name}: {method} was cut off because the manager was closed while it was "
        "in flight; close the manager only after its calls have finished",
        service=svc.name,
    )


def circuit_open(svc: RegisteredService, method: str) -> CircuitOpenError:
    """The error for a call the breaker refused; counted as a ``circuit_open`` error."""
    svc.m_errors["circuit_open"].inc()
    last = f"; last error: {svc.last_error}" if svc.last_error else ""
    return CircuitOpenError(
        f"{svc.name}: {method} not sent, the circuit is open after "
        f"{svc.breaker.failure_threshold} consecutive failures{last}; it lets one probe "
        f"through in {svc.breaker.retry_after():.1f} s",
        service=svc.name,
    )


def client_error(svc: RegisteredService, method: str, status: int, payload: bytes) -> UpstreamError:
    """The error for a 4xx other than 429; counted as a ``client_error``."""
    svc.failed("client_error", f"answered {status}")
    advice = _CLIENT_ADVICE.get(status, "check the request")
    message = svc.scrub(upstream_message(payload))
    return UpstreamError(
        f"{svc.name}: {method} answered {status}: {message}; {advice}",
        service=svc.name,
        status=status,
    )


def given_up(
    svc: RegisteredService, method: str, failure: Failure, attempts: int, decision: GiveUp
) -> ExternalServiceError:
    """The error for a call the retry policy sends no more."""
    if decision.asked is not None:
        return RateLimitedError(
            f"{svc.name}: {method} was refused ({failure.status}) and the upstream "
            f"asks to retry after {decision.asked:.0f} s, more than retry_after_cap "
            f"({svc.config.retry_after_cap:.0f} s); try again later",
            service=svc.name,
            status=failure.status,
        )
    where = f"{svc.name}: {method} failed after {attempts} attempt(s): {failure.problem}"
    if failure.kind == "timeout":
        return ServiceTimeoutError(
            f"{where}; the upstream is slow or down, raise its timeout or try later",
            service=svc.name,
        )
    if failure.kind == "rate_limited":
        return RateLimitedError(
            f"{where}; lower the service's rate_limit or try later",
            service=svc.name,
            status=failure.status,
        )
    if failure.kind == "server_error":
        return UpstreamError(
            f"{where}; the upstream is failing, check its status page or try later",
            service=svc.name,
            status=failure.status,
        )
    return ExternalServiceError(f"{where}; check that {svc.target} is reachable", service=svc.name)
