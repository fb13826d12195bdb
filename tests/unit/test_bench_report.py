"""The bench's report: what a row's targets mean, the JSON it prints, and --check's exit code.

No timing here: speed is measured only by ``ads-infra bench``.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Any

import pytest

from benchmarks import Measurement, Sample, main, row


def test_a_rate_row_misses_on_its_ratio_its_p99_and_each_peer() -> None:
    m = Measurement(
        "db", "get", 80.0, "raw", 100.0, target=0.8, p99_target=1.5, p99_ms=3.0,
        baseline_p99_ms=1.0, peers={"orm": 100.0}, peer_target=1.0,
    )  # fmt: skip
    assert m.ratio == pytest.approx(0.8)
    misses = m.misses()
    assert len(misses) == 2
    assert "p99 3.00x" in misses[0] and "0.80x orm" in misses[1]
    assert m.meets_target is False


def test_a_lower_is_better_row_has_a_ceiling_and_an_absolute_limit() -> None:
    held = Measurement("cache", "bytes", 1300.0, "payload", 690.0, unit="B",
                       higher_is_better=False, target=2.0)  # fmt: skip
    assert held.meets_target is True
    slow = Measurement("cache", "invalidate", 120.0, "floor", 0.5, unit="ms",
                       higher_is_better=False, limit=50.0)  # fmt: skip
    assert slow.misses() == ["120.0 ms, wanted <=50.0 ms"]
    assert Measurement("x", "no target", 1.0, "raw", 2.0).meets_target is None


def test_row_takes_medians_of_rounds_and_percentiles_of_every_operation() -> None:
    ours = Sample(rates=[90.0, 100.0, 500.0], latencies=[0.001] * 99 + [0.1])
    raw = Sample(rates=[100.0, 110.0, 120.0], latencies=[0.001] * 100)
    m = row("db", "get", ours, "raw", raw, concurrency=50, target=0.8, p99_target=1.5)
    assert (m.ours, m.baseline, m.rounds) == (100.0, 110.0, 3)
    assert m.p50_ms == pytest.approx(1.0) and m.p99_ms == pytest.approx(1.0)
    assert m.meets_target is True


def _fake(rows: list[Measurement]) -> Any:
    def runner(coro: Coroutine[Any, Any, list[Measurement]]) -> list[Measurement]:
        coro.close()  # the area is not run: its rows are given
        return rows

    return runner


def test_check_exits_non_zero_when_a_row_misses(capsys: pytest.CaptureFixture[str]) -> None:
    missed = [Measurement("services", "GET", 80.0, "raw", 100.0, target=0.9)]
    met = [Measurement("services", "GET", 95.0, "raw", 100.0, target=0.9)]
    args: dict[str, Any] = {"quick": True, "as_json": True}
    assert main(["services"], check=True, runner=_fake(missed), **args) == 1
    assert main(["services"], check=False, runner=_fake(missed), **args) == 0
    assert main(["services"], check=True, runner=_fake(met), **args) == 0
    out = capsys.readouterr()
    report = json.loads(out.out.split("\n}\n")[0] + "\n}")
    assert report["measurements"][0]["misses"] == ["ratio 0.80x, wanted >=0.9x"]
    assert {"date", "config", "cores"} <= set(report["run"])
    assert "load average before (1/5/15 min)" in report["run"]
    assert "services GET: ratio 0.80x" in out.err
