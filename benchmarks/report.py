"""Measurements, the timing helper and the two renderings (table, JSON) of ``ads-infra bench``."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any


@dataclasses.dataclass
class Measurement:
    """One operation: ours against a baseline (and optional peers), in ops/s.

    ``ratio`` is ours / baseline; ``target`` is the ratio an issue asks for
    (None when it asks none). A peer ratio is ours / peer.
    """

    area: str
    operation: str
    ours: float
    baseline_name: str
    baseline: float
    unit: str = "ops/s"
    peers: dict[str, float] = dataclasses.field(default_factory=dict)
    target: float | None = None
    peer_target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    def peer_ratios(self) -> dict[str, float]:
        return {name: self.ours / ops if ops else float("nan") for name, ops in self.peers.items()}

    @property
    def meets_target(self) -> bool | None:
        checks: list[bool] = []
        if self.target is not None:
            checks.append(self.ratio >= self.target)
        if self.peer_target is not None:
            checks.extend(r >= self.peer_target for r in self.peer_ratios().values())
        return all(checks) if checks else None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(
            ratio=self.ratio, peer_ratios=self.peer_ratios(), meets_target=self.meets_target
        )
        return data


async def measure_ops(
    op: Callable[[], Awaitable[Any]],
    *,
    operations: int,
    concurrency: int = 1,
    warmup: int = 0,
) -> float:
    """Run ``op`` ``operations`` times across ``concurrency`` tasks; return ops/s."""
    import asyncio

    for _ in range(warmup):
        await op()
    per_task, extra = divmod(operations, concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            await op()

    started = time.perf_counter()
    await asyncio.gather(*(worker(per_task + (1 if i < extra else 0)) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return operations / elapsed if elapsed > 0 else float("inf")


def render_json(measurements: list[Measurement]) -> str:
    return json.dumps([m.to_dict() for m in measurements], indent=2)


def render_table(measurements: list[Measurement]) -> Any:
    """A rich Table: operation, ours, baseline, ratio, peers, target."""
    from rich.table import Table

    table = Table(title="ads-infra bench (ratios: ours / baseline, same run)")
    for column in ("area", "operation", "ours", "baseline", "ratio", "peers (ours/peer)", "target"):
        table.add_column(column, justify="right" if column in ("ours", "ratio") else "left")
    for m in measurements:
        peers = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in m.peer_ratios().items())
        verdict = {True: "ok", False: "MISSED", None: ""}[m.meets_target]
        wanted = " ".join(
            part
            for part in (
                f">={m.target}x" if m.target is not None else "",
                f"peers>={m.peer_target}x" if m.peer_target is not None else "",
                verdict,
            )
            if part
        )
        table.add_row(
            m.area,
            m.operation,
            f"{m.ours:,.0f} {m.unit}",
            f"{m.baseline_name} {m.baseline:,.0f}",
            f"{m.ratio:.2f}x",
            peers,
            wanted,
        )
    return table
