"""A circuit breaker for one upstream: closed, open, half-open with exactly one probe.

Written here rather than taken from a library: pybreaker is thread-based and
counts every exception, aiobreaker and purgatory are thinly maintained, and
none lets the request path decide *which* outcomes are failures (a 404 is
not, a 429 is) or guarantees a single half-open probe under asyncio
concurrency. The whole state machine is a few integer comparisons: every
check is O(1) and takes no lock, because asyncio runs it on one thread
between awaits.

Results are tagged with the *generation* in which their call was admitted,
so a slow call admitted while the circuit was closed cannot decide the fate
of a later half-open probe.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

__all__ = ["CircuitBreaker", "CircuitState"]

REJECTED = -1


class CircuitState(enum.IntEnum):
    """Breaker states; the value is what the Prometheus gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


# The states as module globals, for the checks every call makes: on Python 3.11
# reading a member off its Enum class goes through a Python-level descriptor
# (``CircuitState.CLOSED`` costs as much as a small function call), a global
# is one dict lookup.
CLOSED = CircuitState.CLOSED
HALF_OPEN = CircuitState.HALF_OPEN
OPEN = CircuitState.OPEN


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures, for ``recovery_timeout`` s.

    Call :meth:`admit` before sending; it returns a generation token, or
    ``REJECTED`` (-1) when nothing may be sent. Report the outcome with
    :meth:`success`, :meth:`failure` or :meth:`abandon` (cancelled before an
    outcome), passing the token back.
    """

    __slots__ = (
        "_clock",
        "_on_change",
        "_probe_in_flight",
        "failure_threshold",
        "failures",
        "generation",
        "opened_at",
        "previous",
        "recovery_timeout",
        "state",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.state = CLOSED
        self.previous = CLOSED  # the state before the last change
        self.failures = 0
        self.generation = 0
        self.opened_at = 0.0
        self._probe_in_flight = False
        self._clock = clock
        self._on_change = on_change

    # --- admission --------------------------------------------------------------

    def admit(self) -> int:
        """A token to send one request under, or REJECTED."""
        state = self.state
        if state is CLOSED:
            return self.generation
        if state is OPEN:
            if self._clock() - self.opened_at < self.recovery_timeout:
                return REJECTED
            self._move(HALF_OPEN)
        if self._probe_in_flight:
            return REJECTED
        self._probe_in_flight = True
        return self.generation

    def would_reject(self) -> bool:
        """True when :meth:`admit` would surely reject now (claims nothing)."""
        state = self.state
        if state is CLOSED:
            return False
        if state is OPEN:
            return self._clock() - self.opened_at < self.recovery_timeout
        return self._probe_in_flight

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state is not OPEN:
            return 0.0
        return max(0.0, self.recovery_timeout - (self._clock() - self.opened_at))

    # --- outcomes ---------------------------------------------------------------

    def success(self, token: int) -> None:
        if token != self.generation:
            return  # admitted under an older state: says nothing about this one
        self.failures = 0
        if self.state is not CLOSED:
            self._probe_in_flight = False
            self._move(CLOSED)

    def failure(self, token: int) -> None:
        if token != self.generation:
            return
        if self.state is HALF_OPEN:
            self._open()
            return
        self.failures += 1
        if self.failures >= self.failure_threshold:
            self._open()

    def abandon(self, token: int) -> None:
        """The call was cancelled: free the probe slot so the next caller probes."""
        if token == self.generation and self.state is HALF_OPEN:
            self._probe_in_flight = False

    @property
    def probing(self) -> bool:
        """True while this breaker's half-open probe is out."""
        return self.state is HALF_OPEN and self._probe_in_flight

    def follow_open(self, left: float) -> None:
        """Another process holds the circuit open: be open here, probe-able in ``left`` s."""
        self.opened_at = self._clock() - max(0.0, self.recovery_timeout - left)
        self._probe_in_flight = False
        if self.state is not OPEN:
            self._move(OPEN)

    def reset(self) -> None:
        self.failures = 0
        self._probe_in_flight = False
        if self.state is not CLOSED:
            self._move(CLOSED)

    # --- internals --------------------------------------------------------------

    def _open(self) -> None:
        self.opened_at = self._clock()
        self._probe_in_flight = False
        self._move(OPEN)

    def _move(self, state: CircuitState) -> None:
        self.previous, self.state = self.state, state
        self.generation += 1
        if state is CLOSED:
            self.failures = 0
        if self._on_change is not None:
            self._on_change(state)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state.label}, failures={self.failures}/"
            f"{self.failure_threshold}, recovery_timeout={self.recovery_timeout})"
        )
