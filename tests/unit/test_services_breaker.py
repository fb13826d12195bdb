"""The circuit breaker's state machine, on a hand-driven clock."""

from __future__ import annotations

import pytest

from ads_infra.external_services.breaker import REJECTED, CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, recovery: float = 10.0) -> tuple[CircuitBreaker, Clock, list[str]]:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(
        threshold, recovery, clock=clock, on_change=lambda s: changes.append(s.label)
    )
    return breaker, clock, changes


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.failure(breaker.admit())


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _, changes = make(threshold=3)
    fail(breaker, 2)
    breaker.success(breaker.admit())  # a success resets the count
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 2
    fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN and changes == ["open"]


def test_open_rejects_until_recovery_timeout_then_admits_one_probe() -> None:
    breaker, clock, changes = make(threshold=1, recovery=10.0)
    fail(breaker, 1)
    clock.now += 9.99
    assert breaker.would_reject() and breaker.admit() == REJECTED
    assert breaker.retry_after() == pytest.approx(0.01)
    clock.now += 0.01
    assert not breaker.would_reject()
    probe = breaker.admit()
    assert probe != REJECTED and breaker.state is CircuitState.HALF_OPEN
    assert [breaker.admit() for _ in range(5)] == [REJECTED] * 5  # exactly one probe
    assert breaker.would_reject()
    breaker.success(probe)
    assert breaker.state is CircuitState.CLOSED and changes == ["open", "half_open", "closed"]
    assert breaker.admit() != REJECTED


def test_failed_probe_reopens_for_a_full_timeout() -> None:
    breaker, clock, _ = make(threshold=1, recovery=5.0)
    fail(breaker, 1)
    clock.now += 5.0
    breaker.failure(breaker.admit())
    assert breaker.state is CircuitState.OPEN and breaker.opened_at == clock.now
    clock.now += 4.9
    assert breaker.admit() == REJECTED


def test_stale_results_do_not_decide_the_probe() -> None:
    breaker, clock, _ = make(threshold=2, recovery=1.0)
    slow = breaker.admit()  # admitted while closed, still in flight
    fail(breaker, 2)
    clock.now += 1.0
    probe = breaker.admit()
    breaker.success(slow)  # a late answer from before the circuit opened
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.failure(slow)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.success(probe)
    assert breaker.state is CircuitState.CLOSED


def test_abandoned_probe_lets_the_next_caller_probe() -> None:
    breaker, clock, _ = make(threshold=1, recovery=1.0)
    fail(breaker, 1)
    clock.now += 1.0
    probe = breaker.admit()
    assert breaker.admit() == REJECTED
    breaker.abandon(probe)  # the probing task was cancelled
    assert breaker.admit() != REJECTED
    assert breaker.admit() == REJECTED


def test_reset_and_validation() -> None:
    breaker, _, _ = make(threshold=1)
    fail(breaker, 1)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    assert "closed" in repr(breaker)
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(0)
