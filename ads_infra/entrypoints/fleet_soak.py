"""``ads-infra soak --processes N``: N soak processes on the same backends, one verdict.

Each worker is ``ads-infra soak --worker I --json`` in its own process, with
the same configuration (so with ``coordination.backend: redis`` they share
rate limits, breakers, single flight and cache coherence). Worker ``I`` soaks
as its own user (``SOAK_USER_ID + I``), so no worker's cleanup deletes rows
another is about to verify. The parent migrates the database once first
(concurrent migrations would race), waits for every worker, and adds up
their reports; latency percentiles are computed over every worker's samples
(each writes them to a file in a temporary directory). A worker still
running ``seconds + 120`` s after the start is killed and counted as failed.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["FleetReport", "run_fleet"]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class FleetReport:
    """The workers' reports added up: what ``soak --processes N`` prints and judges."""

    def __init__(
        self, reports: list[dict[str, Any]], latencies: dict[str, list[float]], failures: list[str]
    ) -> None:
        self.reports = reports
        self.failures = failures  # workers that printed no report (crashed), with their stderr
        self.latencies = latencies

    def _sum(self, key: str) -> dict[str, int]:
        total: collections.Counter[str] = collections.Counter()
        for report in self.reports:
            total.update(report.get(key, {}))
        return dict(total)

    @property
    def lost(self) -> int:
        return sum(int(r["writes_lost"]) for r in self.reports)

    @property
    def unhandled(self) -> int:
        return sum(int(r["unhandled_exceptions"]) for r in self.reports)

    def to_dict(self) -> dict[str, Any]:
        everything = [v for values in self.latencies.values() for v in values]
        latency = {
            op: {"p50": _percentile(v, 0.5) * 1000, "p99": _percentile(v, 0.99) * 1000}
            for op, v in sorted(self.latencies.items())
        }
        latency["all"] = {
            "p50": _percentile(everything, 0.5) * 1000,
            "p99": _percentile(everything, 0.99) * 1000,
        }
        operations = self._sum("operations")
        return {
            "processes": len(self.reports) + len(self.failures),
            "seconds": max((r["seconds"] for r in self.reports), default=0.0),
            "operations": operations,
            "operations_total": sum(operations.values()),
            "per_process_operations": [int(r["operations_total"]) for r in self.reports],
            "errors": self._sum("errors"),
            "unhandled_exceptions": self.unhandled,
            "latency_ms": latency,
            "writes_acknowledged": self._sum("writes_acknowledged"),
            "writes_found": self._sum("writes_found"),
            "writes_lost": self.lost,
            "workers_failed": len(self.failures),
            "worker_failures": [f[-500:] for f in self.failures],
        }

    def summary_lines(self) -> list[str]:
        d = self.to_dict()
        lat = d["latency_ms"]["all"]
        return [
            f"soak: {d['processes']} processes, {d['operations_total']:,} operations in "
            f"{d['seconds']:.1f} s ({d['operations']})",
            f"errors by kind: {d['errors'] or 'none'}; unhandled exceptions: "
            f"{d['unhandled_exceptions']}; workers failed: {d['workers_failed']}",
            f"latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms (all processes' samples)",
            f"writes acknowledged {sum(d['writes_acknowledged'].values()):,}, found "
            f"{sum(d['writes_found'].values()):,}, lost {d['writes_lost']}",
            *(f"  worker failed: {f}" for f in d["worker_failures"]),
        ]


def run_fleet(
    *, config_file: str | None, processes: int, seconds: float, concurrency: int, keep: bool
) -> FleetReport:
    """Run ``processes`` soak workers to completion (the database already migrated)."""
    with tempfile.TemporaryDirectory(prefix="ads-soak-") as tmp:
        procs = []
        for index in range(processes):
            command = [sys.executable, "-m", "ads_infra.entrypoints.cli"]
            if config_file:
                command += ["--config", config_file]
            command += ["soak", "--json", "--worker", str(index)]
            command += ["--seconds", str(seconds), "--concurrency", str(concurrency)]
            command += ["--latencies-file", str(Path(tmp) / f"{index}.json")]
            if keep:
                command.append("--keep")
            # stderr to a file: a chatty worker must not block on a pipe nobody reads yet.
            with (Path(tmp) / f"{index}.err").open("w") as err:
                # Our own interpreter and our own arguments: nothing untrusted runs.
                proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)  # noqa: S603
            procs.append(proc)
        reports: list[dict[str, Any]] = []
        failures: list[str] = []
        latencies: dict[str, list[float]] = collections.defaultdict(list)
        # A worker runs ``seconds``, then settles (<= 15 s) and verifies: past this
        # it is hung, and is killed and reported rather than waited for forever.
        deadline = time.monotonic() + seconds + 120.0
        for index, proc in enumerate(procs):
            try:
                out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                failures.append(f"worker {index} still running {seconds + 120:.0f} s in: killed")
                continue
            try:
                reports.append(json.loads(out))
            except ValueError:
                stderr = (Path(tmp) / f"{index}.err").read_text()
                failures.append(f"worker {index} exited {proc.returncode}: {stderr.strip()}")
                continue
            path = Path(tmp) / f"{index}.json"
            if path.exists():
                for op, values in json.loads(path.read_text()).items():
                    latencies[op].extend(values)
        return FleetReport(reports, dict(latencies), failures)
