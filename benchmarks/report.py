"""Measurements, the timing helpers and the renderings (table, JSON) of ``ads-infra bench``.

A row is ours against one baseline measured in the same process and run, as
a ratio ``ours / baseline``. Each row states its own targets: a bound on the
ratio (``>=`` for a speed, ``<=`` for bytes or milliseconds), on our p99
against the baseline's p99, on an absolute value, or on the ratio to each
peer. A row missing any of them is marked, and ``--check`` turns that into a
non-zero exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Op = Callable[[], Awaitable[Any]]


@dataclasses.dataclass
class Measurement:
    """One operation: ours against a baseline (and optional peers).

    ``ratio`` is ours / baseline. When ``higher_is_better`` (a rate) the
    ``target`` is a floor on the ratio; otherwise (bytes, milliseconds) a
    ceiling. ``limit`` bounds ``ours`` itself in its unit the same way.
    ``p99_target``: our p99 at most that many times the baseline's p99.
    ``peer_target``: a floor on ours / peer for every peer (rates only).
    """

    area: str
    operation: str
    ours: float
    baseline_name: str
    baseline: float
    unit: str = "ops/s"
    higher_is_better: bool = True
    peers: dict[str, float] = dataclasses.field(default_factory=dict)
    target: float | None = None
    peer_target: float | None = None
    limit: float | None = None
    p99_target: float | None = None
    concurrency: int | None = None
    # Latencies of one operation in milliseconds (None where latency is not the point).
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None
    rounds: int | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    def peer_ratios(self) -> dict[str, float]:
        ours = self.ours
        return {name: ours / value if value else float("nan") for name, value in self.peers.items()}

    @property
    def p99_ratio(self) -> float | None:
        if self.p99_ms is None or not self.baseline_p99_ms:
            return None
        return self.p99_ms / self.baseline_p99_ms

    def misses(self) -> list[str]:
        """What this row fails of its targets (empty: every target met, or none set)."""
        out: list[str] = []

        def better(value: float, bound: float) -> bool:
            return value >= bound if self.higher_is_better else value <= bound

        sign = ">=" if self.higher_is_better else "<="
        if self.target is not None and not better(self.ratio, self.target):
            out.append(f"ratio {self.ratio:.2f}x, wanted {sign}{self.target}x")
        if self.limit is not None and not better(self.ours, self.limit):
            out.append(f"{self.ours:,.1f} {self.unit}, wanted {sign}{self.limit:,} {self.unit}")
        ratio99 = self.p99_ratio
        if self.p99_target is not None and (ratio99 is None or ratio99 > self.p99_target):
            shown = "n/a" if ratio99 is None else f"{ratio99:.2f}x"
            out.append(f"p99 {shown} of baseline's, wanted <={self.p99_target}x")
        if self.peer_target is not None:
            for name, ratio in self.peer_ratios().items():
                if not ratio >= self.peer_target:
                    out.append(f"{ratio:.2f}x {name}, wanted >={self.peer_target}x")
        return out

    @property
    def has_target(self) -> bool:
        return any(
            t is not None for t in (self.target, self.limit, self.p99_target, self.peer_target)
        )

    @property
    def meets_target(self) -> bool | None:
        return not self.misses() if self.has_target else None

    def targets_text(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        parts = []
        if self.target is not None:
            parts.append(f"{sign}{self.target}x")
        if self.limit is not None:
            parts.append(f"{sign}{self.limit:,} {self.unit}")
        if self.p99_target is not None:
            parts.append(f"p99<={self.p99_target}x")
        if self.peer_target is not None:
            parts.append(f"peers>={self.peer_target}x")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(
            ratio=_finite(self.ratio),
            peer_ratios={k: _finite(v) for k, v in self.peer_ratios().items()},
            p99_ratio=self.p99_ratio,
            meets_target=self.meets_target,
            misses=self.misses(),
        )
        return data


def _finite(value: float) -> float | None:
    """JSON has no NaN: a ratio without a baseline is null."""
    return value if math.isfinite(value) else None


# --- timing -----------------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    """One contender over every round: ops/s of each round, latency of each operation (s)."""

    rates: list[float] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)

    @property
    def rate(self) -> float:
        """The median round: a noisy neighbour in some rounds does not decide it."""
        return statistics.median(self.rates) if self.rates else float("nan")

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000

    @property
    def p50_ms(self) -> float | None:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float | None:
        return self.percentile_ms(99)


async def measure_ops(
    op: Op,
    *,
    operations: int,
    concurrency: int = 1,
    warmup: int = 0,
    latencies: list[float] | None = None,
) -> float:
    """Run ``op`` ``operations`` times across ``concurrency`` tasks; return ops/s.

    With ``latencies``, the duration of each operation (seconds) is appended
    to it: two clock reads per operation, which is noise next to a round trip
    but not next to a dict lookup, so the in-memory rows pass None.
    """
    for _ in range(warmup):
        await op()
    per_task, extra = divmod(operations, concurrency)
    clock = time.perf_counter

    async def worker(count: int) -> None:
        for _ in range(count):
            await op()

    async def timed_worker(count: int) -> None:
        assert latencies is not None
        record = latencies.append
        for _ in range(count):
            started = clock()
            await op()
            record(clock() - started)

    run = worker if latencies is None else timed_worker
    started = clock()
    await asyncio.gather(*(run(per_task + (1 if i < extra else 0)) for i in range(concurrency)))
    elapsed = clock() - started
    return operations / elapsed if elapsed > 0 else float("inf")


async def compare(
    contenders: dict[str, Op],
    *,
    operations: int,
    rounds: int,
    concurrency: int = 1,
    warmup: int = 0,
    latency: bool = True,
) -> dict[str, Sample]:
    """Every contender over ``rounds`` interleaved rounds, rotating who goes first.

    Short interleaved rounds put every side through the same stretch of a
    shared machine's noise; each side's median round is its figure.
    """
    samples = {name: Sample() for name in contenders}
    for op in contenders.values():  # warm connections, caches and code paths
        await measure_ops(op, operations=max(warmup, concurrency), concurrency=concurrency)
    order = list(contenders)
    for round_no in range(rounds):
        shift = round_no % len(order)
        for name in order[shift:] + order[:shift]:
            sample = samples[name]
            sample.rates.append(
                await measure_ops(
                    contenders[name],
                    operations=operations,
                    concurrency=concurrency,
                    latencies=sample.latencies if latency else None,
                )
            )
    return samples


def row(
    area: str,
    operation: str,
    ours: Sample,
    baseline_name: str,
    baseline: Sample,
    *,
    peers: dict[str, Sample] | None = None,
    concurrency: int | None = None,
    **kwargs: Any,
) -> Measurement:
    """A rate Measurement from Samples: medians of rounds, p50/p99 when latencies were kept."""
    return Measurement(
        area,
        operation,
        ours.rate,
        baseline_name,
        baseline.rate,
        peers={name: s.rate for name, s in (peers or {}).items()},
        concurrency=concurrency,
        p50_ms=ours.p50_ms,
        p99_ms=ours.p99_ms,
        baseline_p50_ms=baseline.p50_ms,
        baseline_p99_ms=baseline.p99_ms,
        rounds=len(ours.rates),
        **kwargs,
    )


# --- renderings ---------------------------------------------------------------------------


def render_json(measurements: Sequence[Measurement], run: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {"run": run or {}, "measurements": [m.to_dict() for m in measurements]}, indent=2
    )


def _value(value: float, unit: str) -> str:
    return f"{value:,.1f} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"


def _latency(p50: float | None, p99: float | None) -> str:
    if p50 is None or p99 is None:
        return ""
    return f"{p50:.2f} / {p99:.2f}"


def render_table(measurements: Sequence[Measurement], run: dict[str, Any] | None = None) -> Any:
    """A rich Table: ours, baseline, ratio, p50/p99 of both sides, peers, targets and verdict."""
    from rich.table import Table

    caption = ""
    if run:
        caption = "; ".join(f"{k}: {v}" for k, v in run.items() if k != "config") + (
            "\nconfig: " + run["config"] if run.get("config") else ""
        )
    table = Table(title="ads-infra bench (ratio = ours / baseline, same run)", caption=caption)
    for column in (
        "area", "operation", "c", "ours", "baseline", "ratio", "p50/p99 ms ours",
        "p50/p99 ms base", "peers (ours/peer)", "target",
    ):  # fmt: skip
        table.add_column(column, justify="right" if column in ("ours", "ratio", "c") else "left")
    for m in measurements:
        peers = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in m.peer_ratios().items())
        verdict = {True: "ok", False: "MISSED", None: ""}[m.meets_target]
        table.add_row(
            m.area,
            m.operation,
            "" if m.concurrency is None else str(m.concurrency),
            _value(m.ours, m.unit),
            f"{m.baseline_name} {_value(m.baseline, '')}".strip(),
            f"{m.ratio:.2f}x",
            _latency(m.p50_ms, m.p99_ms),
            _latency(m.baseline_p50_ms, m.baseline_p99_ms),
            peers,
            " ".join(p for p in (m.targets_text(), verdict) if p),
        )
    return table


def render_markdown(measurements: Sequence[Measurement]) -> str:
    """The same rows as a Markdown table (docs/benchmarks.md)."""
    lines = [
        "| area | operation | callers | ours | baseline (same run) | ratio | p50 / p99 ms ours "
        "| p50 / p99 ms baseline | peers (ours / peer) | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in measurements:
        peers = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in m.peer_ratios().items())
        verdict = {True: "met", False: "**MISSED**", None: ""}[m.meets_target]
        lines.append(
            "| "
            + " | ".join(
                (
                    m.area,
                    m.operation,
                    "" if m.concurrency is None else str(m.concurrency),
                    _value(m.ours, m.unit),
                    f"{m.baseline_name} {_value(m.baseline, '')}".strip(),
                    f"{m.ratio:.2f}x",
                    _latency(m.p50_ms, m.p99_ms),
                    _latency(m.baseline_p50_ms, m.baseline_p99_ms),
                    peers,
                    " ".join(p for p in (m.targets_text(), verdict) if p),
                )
            )
            + " |"
        )
    return "\n".join(lines)
