"""The errors a failed call raises, each naming the service, what failed and what to do.

Built only when a call fails (the cold path); every text that may quote the
upstream goes through the service's ``scrub``, so no error holds a secret.
"""

from __future__ import annotations

from typing import TypedDict

from ads_infra.core.errors import (
    CircuitOpenError,
    ExternalServiceError,
    NoInstancesError,
    RateLimitedError,
    ServiceTimeoutError,
    UpstreamError,
)
from ads_infra.external_services.balancer import Balancer
from ads_infra.external_services.policy import Failure, GiveUp
from ads_infra.external_services.registered import RegisteredService
from ads_infra.external_services.response import UpstreamErrorBody

__all__ = ["circuit_open", "client_error", "closed_midway", "given_up", "no_instance"]

_CLIENT_ADVICE = {
    401: "check the service's API key",
    403: "check the API key's permissions",
    404: "check the base URL and path",
}
# Advice by the provider's error code, where the status alone would mislead
# (OpenAI's exhausted quota is a 429, which reads as "slow down").
_CODE_ADVICE = {
    "insufficient_quota": (
        "the account is out of credit or over its spending limit; retrying or lowering "
        "rate_limit will not help: check the provider account's plan and billing"
    ),
    "invalid_api_key": (
        "the key was refused as wrong or revoked: check the service's API key "
        "(ADS_AI_API_KEY for services.ai)"
    ),
}


class _Fields(TypedDict, total=False):
    code: str | None
    type: str | None
    param: str | None


def _fields(error: UpstreamErrorBody | None) -> _Fields:
    if error is None:
        return {}
    return {"code": error.code, "type": error.type, "param": error.param}


def _tag(error: UpstreamErrorBody | None) -> str:
    return f" [{error.code}]" if error is not None and error.code else ""


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


def no_instance(svc: RegisteredService, method: str, pool: Balancer) -> ExternalServiceError:
    """The error for a discovered upstream with no instance to send to (cold path)."""
    instances = pool.instances
    if pool.empty:
        svc.m_errors["connection"].inc()
        return NoInstancesError(
            f"{svc.name}: {method} not sent, no live instance of service "
            f"{instances.service!r} ({svc.target}): {instances.why_empty()}; start or register "
            "one, or check discovery.resolve",
            service=svc.name,
        )
    svc.m_errors["circuit_open"].inc()
    last = f"; last error: {svc.last_error}" if svc.last_error else ""
    return CircuitOpenError(
        f"{svc.name}: {method} not sent, the circuits of all {len(pool.members)} instances of "
        f"service {instances.service!r} are open{last}; the first lets a probe through in "
        f"{pool.retry_after():.1f} s",
        service=svc.name,
    )


def client_error(
    svc: RegisteredService, method: str, status: int, error: UpstreamErrorBody
) -> UpstreamError:
    """The error for an answer no retry can change; counted as a ``client_error``."""
    svc.failed("client_error", f"answered {status}{_tag(error)}")
    advice = _CODE_ADVICE.get(error.code or "") or _CLIENT_ADVICE.get(status, "check the request")
    message = svc.scrub(error.message)
    return UpstreamError(
        f"{svc.name}: {method} answered {status}{_tag(error)}: {message}; {advice}",
        service=svc.name,
        status=status,
        **_fields(error),
    )


def given_up(
    svc: RegisteredService, method: str, failure: Failure, attempts: int, decision: GiveUp
) -> ExternalServiceError:
    """The error for a call the retry policy sends no more."""
    fields = _fields(failure.error)
    where = f"{svc.name}: {method} failed after {attempts} attempt(s): {failure.problem}"
    if decision.deadline is not None:
        waited = f" and a wait of {decision.asked:.1f} s" if decision.asked is not None else ""
        where += (
            f"; another attempt{waited} would pass the call's deadline of {decision.deadline:g} s"
        )
    elif decision.asked is not None:
        return RateLimitedError(
            f"{svc.name}: {method} was refused ({failure.status}) and the upstream "
            f"asks to retry after {decision.asked:.0f} s, more than retry_after_cap "
            f"({svc.config.retry_after_cap:.0f} s); try again later",
            service=svc.name,
            status=failure.status,
            **fields,
        )
    elif decision.told:
        where += " (the upstream said not to retry: x-should-retry: false)"
    if failure.kind == "timeout" and failure.status == 0:
        return ServiceTimeoutError(
            f"{where}; the upstream is slow or down, raise its timeout or try later",
            service=svc.name,
            **fields,
        )
    if failure.kind == "rate_limited":
        return RateLimitedError(
            f"{where}; lower the service's rate_limit or try later",
            service=svc.name,
            status=failure.status,
            **fields,
        )
    if failure.status:
        return UpstreamError(
            f"{where}; the upstream is failing, check its status page or try later",
            service=svc.name,
            status=failure.status,
            **fields,
        )
    return ExternalServiceError(f"{where}; check that {svc.target} is reachable", service=svc.name)
