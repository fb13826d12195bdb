"""The code behind ``ads-infra bench``: one module per area, one report format.

Each area module (``benchmarks/cache.py``, ...) exposes::

    async def run(*, quick: bool) -> list[Measurement]

and measures ours against a baseline (raw redis-py, raw asyncpg, raw aiofiles,
raw aiohttp) and peers *in the same process and run*, so every figure is a
ratio that the noise of a shared machine affects on both sides alike.
"""

from benchmarks.report import Measurement, measure_ops, render_json, render_table

# area name -> module; "db" is the repositories' benchmark.
AREAS: dict[str, str] = {
    "cache": "benchmarks.cache",
    "storage": "benchmarks.storage",
    "services": "benchmarks.services",
    "db": "benchmarks.db",
}

__all__ = ["AREAS", "Measurement", "measure_ops", "render_json", "render_table"]
