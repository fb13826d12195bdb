"""The balancer's choices, without I/O: round robin, least outstanding, breakers, set changes."""

from __future__ import annotations

from collections import Counter

from ads_infra.core.settings import LoadBalancing
from ads_infra.discovery.instances import Instance, InstanceSet
from ads_infra.external_services.balancer import Balancer, Member


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _set(*urls: str) -> InstanceSet:
    instances = InstanceSet("ai")
    instances.replace(Instance(url) for url in urls)
    return instances


def _pick(balancer: Balancer) -> Member:
    picked = balancer.admit()
    assert picked is not None
    member, token = picked
    member.breaker.success(token)
    Balancer.done(member)
    return member


def test_round_robin_takes_each_instance_in_turn() -> None:
    balancer = Balancer(_set("http://a", "http://b", "http://c"))
    picks = [_pick(balancer).url for _ in range(9)]
    assert picks == ["http://a", "http://b", "http://c"] * 3


def test_least_outstanding_prefers_the_instance_with_fewest_calls_in_flight() -> None:
    balancer = Balancer(_set("http://a", "http://b"), LoadBalancing.LEAST_OUTSTANDING)
    first = balancer.admit()
    assert first is not None and first[0].url == "http://a"  # a: 1 in flight
    second = balancer.admit()
    assert second is not None and second[0].url == "http://b"  # b: 1 in flight
    Balancer.done(second[0])  # b finishes, a is still busy
    picks = [_pick(balancer).url for _ in range(3)]
    assert picks == ["http://b"] * 3


def test_an_open_breaker_takes_its_instance_out_until_it_may_probe() -> None:
    clock = Clock()
    balancer = Balancer(
        _set("http://a", "http://b"), failure_threshold=1, recovery_timeout=10, clock=clock
    )
    picked = balancer.admit()
    assert picked is not None and picked[0].url == "http://a"
    picked[0].breaker.failure(picked[1])  # a's circuit opens
    Balancer.done(picked[0])
    assert [_pick(balancer).url for _ in range(4)] == ["http://b"] * 4
    assert balancer.available() == 1
    clock.now = 11.0  # a may let one probe through; it succeeds and closes
    assert Counter(_pick(balancer).url for _ in range(4)) == {"http://a": 2, "http://b": 2}
    assert balancer.available() == 2


def test_every_breaker_open_admits_nothing() -> None:
    balancer = Balancer(_set("http://a"), failure_threshold=1, recovery_timeout=10, clock=Clock())
    picked = balancer.admit()
    assert picked is not None
    picked[0].breaker.failure(picked[1])
    Balancer.done(picked[0])
    assert balancer.admit() is None
    assert balancer.retry_after() == 10.0
    assert not balancer.empty


def test_a_changed_set_keeps_the_state_of_instances_still_present_and_drops_the_rest() -> None:
    instances = _set("http://a", "http://b")
    balancer = Balancer(instances, failure_threshold=1, recovery_timeout=10, clock=Clock())
    picked = balancer.admit()
    assert picked is not None and picked[0].url == "http://a"
    picked[0].breaker.failure(picked[1])  # a: open
    Balancer.done(picked[0])
    instances.replace([Instance("http://a"), Instance("http://c")])  # b gone, c new
    assert [m.url for m in balancer.members] == ["http://a", "http://b"]  # not synced yet
    assert [_pick(balancer).url for _ in range(2)] == ["http://c", "http://c"]
    assert [m.url for m in balancer.members] == ["http://a", "http://c"]
    # a registers again (a new key: a new lease) before any call saw it leave.
    instances.replace([Instance("http://a", "a-lease-2"), Instance("http://c")])
    assert balancer.available() == 2  # a starts afresh, its old open breaker dropped


def test_an_empty_set_is_reported_as_empty() -> None:
    instances = InstanceSet("copywriter")
    balancer = Balancer(instances)
    assert balancer.admit() is None and balancer.empty
    assert "not been resolved" in instances.why_empty()
    instances.replace([])
    assert "no instance is registered or alive" in instances.why_empty()


def test_the_set_bumps_its_version_only_when_its_instances_change() -> None:
    instances = _set("http://b", "http://a")
    version = instances.version
    instances.replace([Instance("http://a"), Instance("http://b")])
    assert instances.version == version and instances.urls == ["http://a", "http://b"]
    instances.mark_stale("etcd down", since=100.0)
    instances.mark_stale("still down", since=200.0)
    assert instances.stale_since == 100.0 and instances.urls == ["http://a", "http://b"]
    instances.replace([Instance("http://a")])
    assert instances.version == version + 1 and instances.stale_since is None
