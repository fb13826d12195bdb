"""The Markdown of one ``ads-infra bench --json`` run, for docs/benchmarks.md.

    ads-infra bench --json > run.json
    python -m benchmarks.markdown run.json

Prints the run's conditions (date, load average, cores, commit, config),
the table, and every missed target with what it missed: the page is
generated from one run, so it says nothing that run did not show.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from benchmarks.report import Measurement, render_markdown

_FIELDS = {f for f in Measurement.__dataclass_fields__}


def from_json(data: dict[str, Any]) -> tuple[dict[str, Any], list[Measurement]]:
    rows = [
        Measurement(**{k: v for k, v in m.items() if k in _FIELDS}) for m in data["measurements"]
    ]
    return data["run"], rows


def render(run: dict[str, Any], rows: list[Measurement]) -> str:
    lines = [
        f"Run: {run['date']}, {run['mode']} run of {run['seconds']} s on {run['cores']} cores, "
        f"Python {run['python']}, commit {run['commit']}.",
        "",
        f"Load average (1/5/15 min): {run['load average before (1/5/15 min)']} before, "
        f"{run['after']} after.",
        "",
        f"Config: {run['config']}.",
        "",
        render_markdown(rows),
        "",
    ]
    missed = [m for m in rows if m.meets_target is False]
    met = [m for m in rows if m.meets_target is True]
    lines.append(f"{len(met)} rows met their targets and {len(missed)} missed:")
    lines.append("")
    lines += [
        f"- {m.area} {m.operation}"
        + (f" ({m.concurrency} callers)" if m.concurrency else "")
        + f": {'; '.join(m.misses())}"
        for m in missed
    ]
    notes = [m for m in rows if m.note]
    if notes:
        lines += ["", "Notes of the rows:", ""]
        seen: set[tuple[str, str]] = set()
        for m in notes:
            if (m.operation, m.note) in seen:
                continue
            seen.add((m.operation, m.note))
            lines.append(f"- {m.area} {m.operation}: {m.note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    with open(argv[1]) as f:
        run, rows = from_json(json.load(f))
    sys.stdout.write(render(run, rows))


if __name__ == "__main__":
    main(sys.argv)
