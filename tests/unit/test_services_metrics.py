"""The per-attempt counts become Prometheus families at scrape time, with no I/O."""

from __future__ import annotations

from bisect import bisect_left

from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from ads_infra.external_services.metrics import LATENCY_BUCKETS


def _sample(manager: ExternalServiceManager, name: str, **labels: str) -> float | None:
    return manager.metrics_registry.get_sample_value(name, {"service": "svc", **labels})


def test_buckets_count_what_is_at_most_their_bound_and_replacing_keeps_counts() -> None:
    manager = ExternalServiceManager()
    manager.register_service("svc", ExternalServiceConfig(base_url="http://127.0.0.1:9"))
    svc = manager._services["svc"]
    for elapsed in (0.005, 0.0051, 31.0):  # on a bound, just past it, past every bound
        svc.requests += 1
        svc.latency_counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        svc.latency_sum += elapsed
    bucket = "ads_external_request_duration_seconds_bucket"
    assert _sample(manager, bucket, le="0.005") == 1
    assert _sample(manager, bucket, le="0.01") == 2
    assert _sample(manager, bucket, le="30.0") == 2
    assert _sample(manager, bucket, le="+Inf") == 3

    manager.register_service("svc", ExternalServiceConfig(base_url="http://127.0.0.1:9"))
    assert _sample(manager, "ads_external_requests_total") == 3  # a counter never goes down
    assert _sample(manager, "ads_external_request_duration_seconds_count") == 3
    assert _sample(manager, "ads_external_request_duration_seconds_sum") == 0.005 + 0.0051 + 31.0
