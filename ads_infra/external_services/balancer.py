"""Client-side balancing across a discovered service's instances, a breaker per instance.

An upstream resolved through discovery (``discovery.resolve``) sends each
attempt to one instance of its :class:`~ads_infra.discovery.InstanceSet`,
picked round robin or by fewest calls in flight, skipping an instance whose
breaker (the same :class:`CircuitBreaker` every upstream has) is open. The
backend replaces the set in the background; the balancer notices through the
set's ``version`` (one integer comparison per pick) and rebuilds its table,
keeping the breaker and count of each instance still present and dropping
those of instances gone. An instance is its URL and the backend's id for it
(etcd: its key, which holds its lease), so one that registers again starts
afresh even if no call saw it leave.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ads_infra.core.redact import mask_url
from ads_infra.core.settings import LoadBalancing
from ads_infra.discovery.instances import InstanceSet
from ads_infra.external_services.breaker import REJECTED, CircuitBreaker, CircuitState

__all__ = ["Balancer", "Member"]


class Member:
    """One instance as the balancer sees it: its URL, breaker and calls in flight."""

    __slots__ = ("breaker", "calls", "key", "outstanding", "url")

    def __init__(self, url: str, key: str, breaker: CircuitBreaker) -> None:
        self.url = url
        self.key = key
        self.breaker = breaker
        self.outstanding = 0
        self.calls = 0

    def describe(self) -> dict[str, object]:
        return {
            # The URL comes from the discovery backend and may carry user:password@.
            "url": mask_url(self.url),
            "state": self.breaker.state.label,
            "outstanding": self.outstanding,
            "calls": self.calls,
        }


def _outstanding(member: Member) -> int:
    return member.outstanding


class Balancer:
    """Picks the instance of ``instances`` each attempt goes to.

    :meth:`admit` returns ``(member, token)`` for an instance whose breaker
    admitted the attempt (report the outcome to ``member.breaker`` with the
    token, and call :meth:`done` when it is over), ``None`` when every
    instance's breaker refuses, and raises nothing: an empty set is for the
    caller to report (:attr:`empty`).
    """

    __slots__ = (
        "_clock",
        "_cursor",
        "_least",
        "_on_change",
        "_version",
        "failure_threshold",
        "instances",
        "members",
        "recovery_timeout",
    )

    def __init__(
        self,
        instances: InstanceSet,
        strategy: LoadBalancing = LoadBalancing.ROUND_ROBIN,
        *,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self.instances = instances
        self._least = strategy is LoadBalancing.LEAST_OUTSTANDING
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self._clock = clock
        self._on_change = on_change
        self.members: list[Member] = []
        self._version = -1
        self._cursor = 0

    @property
    def empty(self) -> bool:
        self._sync()
        return not self.members

    def _sync(self) -> None:
        if self._version == self.instances.version:
            return
        self._version = self.instances.version
        known = {(m.url, m.key): m for m in self.members}
        self.members = [
            known.get((i.url, i.key)) or self._member(i.url, i.key)
            for i in self.instances.instances
        ]

    def _member(self, url: str, key: str) -> Member:
        on_change = self._on_change
        listener = None if on_change is None else (lambda state: on_change(url, state))
        breaker = CircuitBreaker(
            self.failure_threshold, self.recovery_timeout, clock=self._clock, on_change=listener
        )
        return Member(url, key, breaker)

    def admit(self) -> tuple[Member, int] | None:
        """The instance this attempt goes to and its breaker token; None if all refuse."""
        if self._version != self.instances.version:
            self._sync()
        members = self.members
        count = len(members)
        if not count:
            return None
        start = self._cursor % count
        self._cursor = start + 1
        order: Iterable[Member]
        if self._least:
            # Fewest in flight; among equals the round-robin order decides (a stable sort).
            order = sorted((members[(start + i) % count] for i in range(count)), key=_outstanding)
        else:
            # Round robin: the instance whose turn it is, nearly always admitted, is
            # tried before building the order of the others.
            member = members[start]
            token = member.breaker.admit()
            if token != REJECTED:
                member.outstanding += 1
                member.calls += 1
                return member, token
            order = [members[(start + i) % count] for i in range(1, count)]
        for member in order:
            token = member.breaker.admit()
            if token != REJECTED:
                member.outstanding += 1
                member.calls += 1
                return member, token
        return None

    def reconfigure(self, failure_threshold: int, recovery_timeout: float) -> None:
        """New breaker thresholds for every instance, present and to come; states kept."""
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        for member in self.members:
            member.breaker.failure_threshold = failure_threshold
            member.breaker.recovery_timeout = recovery_timeout

    @staticmethod
    def done(member: Member) -> None:
        """The attempt sent to ``member`` is over."""
        member.outstanding -= 1

    def available(self) -> int:
        """How many instances a call could go to now."""
        self._sync()
        return sum(1 for m in self.members if not m.breaker.would_reject())

    def retry_after(self) -> float:
        """Seconds until the first open instance lets a probe through."""
        self._sync()
        return min((m.breaker.retry_after() for m in self.members), default=0.0)

    def describe(self) -> list[dict[str, object]]:
        self._sync()
        return [m.describe() for m in self.members]
