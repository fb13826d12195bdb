"""Printing the demo's report: the tables and sentences ``ads-infra demo`` shows.

The runner (:mod:`.runner`) collects the report as a dict (what ``--json``
prints); this module only renders it.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ads_infra.entrypoints.demo.data import DemoDataset

__all__ = ["print_report"]

MICROS = 1_000_000


def _units(micros: float | int | None) -> str:
    return "-" if micros is None else f"{micros / MICROS:,.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def print_report(report: dict[str, Any], dataset: DemoDataset, console: Console) -> None:
    """Print the demo's report as tables and sentences."""
    r, out = report, console
    out.rule("[bold]ads-infra demo")
    backends = Table(title="Backends", show_header=False)
    for name, target in r["backends"].items():
        backends.add_row(name, str(target))
    out.print(backends)
    seed = r["seed"]
    out.print(
        f"Seeded {seed['users']} users, {seed['campaigns']} campaigns, {seed['groups']} ad "
        f"groups, {seed['ads']} ads and {seed['performance_rows']:,} daily performance rows "
        f"({seed['days']} days) in {seed['seconds']} s."
    )
    cache = r["cache"]
    out.print(
        f"Cache ({cache['backend']}): {cache['reads']} reads, {cache['hits']} hits, "
        f"{cache['misses']} misses, hit rate {cache['hit_rate']:.1%}."
    )
    storage = r["storage"]
    out.print(
        f"Storage: {storage['saved']} creatives stored, {storage['verified']} read back "
        f"byte for byte; {storage['total_files']} files in storage."
    )
    copy = Table(title="Ad copy from the AI provider")
    for column in ("campaign", "headline", "description", "provider"):
        copy.add_column(column)
    for row in r["ai"]:
        copy.add_row(row["campaign"], row["headline"], row["description"], row["provider"])
    out.print(copy)
    _print_analytics(report, dataset, console)
    _print_optimization(report, console)
    for name, value in r["external"].items():
        out.print(f"{name.capitalize()}: {value}")
    _print_stats(report, console)
    out.print(f"Done in {r['seconds']} s.")


def _print_analytics(report: dict[str, Any], data: DemoDataset, console: Console) -> None:
    table = Table(title=f"Campaigns {data.start_date} to {data.end_date} (derived from sums)")
    for column in (
        "user", "campaign", "impr.", "clicks", "conv.", "cost", "CTR", "CPC", "CPM", "CPA",
        "ROAS", "conv. rate",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column in ("campaign",) else "right")
    for row in report["analytics"]:
        table.add_row(
            str(row["user_id"]), row["name"], f"{row['impressions']:,}", f"{row['clicks']:,}",
            f"{float(row['conversions']):,.1f}", _units(row["cost_micros"]), _pct(row["ctr"]),
            _units(row["cpc_micros"]), _units(row["cpm_micros"]), _units(row["cpa_micros"]),
            "-" if row["roas"] is None else f"{row['roas']:.2f}", _pct(row["conversion_rate"]),
        )  # fmt: skip
    console.print(table)


def _print_optimization(report: dict[str, Any], console: Console) -> None:
    table = Table(title="Optimization suggestions (highest score first)")
    for column in ("user", "type", "suggestion", "score", "evidence"):
        table.add_column(column)
    for s in sorted(report["optimization"], key=lambda s: -s["score"]):
        evidence = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in s["evidence"].items()
            if k not in ("start_date", "end_date")
        )
        table.add_row(str(s["user_id"]), s["type"], s["title"], f"{s['score']:.2f}", evidence)
    console.print(table)


def _print_stats(report: dict[str, Any], console: Console) -> None:
    stats = report["stats"]
    table = Table(title="Statistics", show_header=False)
    pool = stats["pool"]
    table.add_row(
        "database pool",
        f"{pool['backend']} {pool['pool_class']}: size {pool['pool_size']}, checked in "
        f"{pool['checked_in']}, active {pool['active_connections']}, transactions "
        f"{pool['transactions']}, retries {pool['retries']}, failures {pool['failures']}",
    )
    cache = stats["cache"]
    table.add_row(
        "cache",
        f"hits {cache['hits']}, misses {cache['misses']}, hit rate {cache['hit_rate']:.1%}, "
        f"sets {cache['sets']}, deletes {cache['deletes']}, errors {cache['errors']}, "
        f"fallbacks {cache['fallbacks']}",
    )
    storage = stats["storage"]
    table.add_row(
        "storage",
        f"{storage['backend']}: {storage['total_files']} files, {storage['total_size']:,} bytes",
    )
    for name, status in stats["services"].items():
        table.add_row(f"service {name}", ", ".join(f"{k}={v}" for k, v in status.items()))
    console.print(table)
