"""The code behind ``ads-infra bench``: one module per area, one report format.

Each area module (``benchmarks/cache.py``, ...) exposes::

    SETUP: str                                        # what it runs, for the report
    async def run(*, quick: bool) -> list[Measurement]

and measures ours, as shipped (the defaults of ``ads_infra.core.settings``),
against the strongest honest baseline (raw redis-py with a batcher, raw
asyncpg doing the same statements, a one-hop thread for local files, raw
aiohttp, a minimal FastAPI app) and peers *in the same process and run*, so
every figure is a ratio that the noise of a shared machine affects on both
sides alike. Each figure is the median of repeated interleaved rounds.
"""

from benchmarks.report import (
    Measurement,
    Sample,
    compare,
    measure_ops,
    render_json,
    render_markdown,
    render_table,
    row,
)
from benchmarks.runner import AREAS, main

__all__ = [
    "AREAS",
    "Measurement",
    "Sample",
    "compare",
    "main",
    "measure_ops",
    "render_json",
    "render_markdown",
    "render_table",
    "row",
]
