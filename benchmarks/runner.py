"""Running areas and printing one report: the table or JSON, the run's conditions, ``--check``.

The report carries what a reader needs to judge the figures: the date, the
load average before and after (the machine is shared), the cores, the
versions, and the configuration each area ran (the shipped defaults, and
the pool sizes and caller counts of the bench).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import Measurement, render_json, render_table

# area name -> module; "db" is the repositories' benchmark, "fastapi" the example app's.
AREAS: dict[str, str] = {
    "cache": "benchmarks.cache",
    "storage": "benchmarks.storage",
    "services": "benchmarks.services",
    "db": "benchmarks.db",
    "fastapi": "benchmarks.webapp",
}

Runner = Callable[[Coroutine[Any, Any, list[Measurement]]], list[Measurement]]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("+changes" if dirty.stdout.strip() else "")


def _shipped() -> str:
    """The defaults the rows run with: what config.yml ships."""
    from ads_infra.core.settings import CacheConfig, DatabaseConfig

    db, cache = DatabaseConfig(), CacheConfig()
    return (
        f"shipped defaults: database.pool_pre_ping={str(db.pool_pre_ping).lower()}, "
        f"cache.auto_pipeline={str(cache.auto_pipeline).lower()}, "
        f"cache.serializer={cache.serializer}"
    )


def main(areas: Sequence[str], *, quick: bool, as_json: bool, check: bool, runner: Runner) -> int:
    """Run ``areas`` (each through ``runner``, which owns the event loop), print, exit code.

    The code is 1 with ``check`` when a row misses a target, else 0.
    """
    started, load_before = time.monotonic(), _load()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    measurements: list[Measurement] = []
    setups: list[str] = []
    for area in areas:
        # What an area left for the disk to write back (the storage area
        # writes and deletes 100,000 files) would otherwise land on the next
        # area's fsyncs, PostgreSQL's commits among them: each starts settled.
        os.sync()
        module = importlib.import_module(AREAS[area])
        setups.append(f"{area}: {module.SETUP}")
        measurements.extend(runner(module.run(quick=quick)))
    run = {
        "date": date,
        "load average before (1/5/15 min)": load_before,
        "after": _load(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "commit": _commit(),
        "mode": "quick" if quick else "full",
        "seconds": round(time.monotonic() - started),
        "config": "; ".join([_shipped(), *setups]),
    }
    if as_json:
        print(render_json(measurements, run))
    else:
        from rich.console import Console

        # Piped output (CI logs, docs) gets room for every column.
        Console(width=None if sys.stdout.isatty() else 220).print(render_table(measurements, run))
    missed = [m for m in measurements if m.meets_target is False]
    if missed:
        print(f"bench: {len(missed)} of {len(measurements)} rows missed a target", file=sys.stderr)
        for m in missed:
            print(f"  {m.area} {m.operation}: {'; '.join(m.misses())}", file=sys.stderr)
    return 1 if check and missed else 0
