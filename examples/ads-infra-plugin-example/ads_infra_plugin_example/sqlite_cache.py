"""A cache backend on one SQLite file: ``cache.cache_type: sqlite``.

Entries live in one table of the file named by ``cache.options.path``, so the
processes of one host share them and they survive a restart, with no server to
run. SQLite (the standard library's ``sqlite3``) rather than a hand-made file
format: every write is a transaction, and in WAL mode readers in other
processes never wait for a writer.

``sqlite3`` calls block, so they never run on the event loop: one worker
thread owns the connection (a connection belongs to the thread that opened
it) and runs every call in turn. A file that cannot be opened or read
raises ConnectionError, which the manager's fallback and health understand as
"unreachable", as they do a Redis that is down. Expired rows are skipped on read and swept
every ``purge_every`` writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, TypeVar

from ads_infra.cache import CacheConfig, CacheStrategy, compile_glob
from ads_infra.core.errors import ConfigurationError
from ads_infra.core.section import ConfigSection

__all__ = ["SQLiteCacheOptions", "SQLiteCacheStrategy"]

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cache_entries ("
    " key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at)",
)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
# Keys per statement: under SQLite's limit on bound parameters (999 before 3.32).
_BATCH = 500
# Keys read per step of a pattern delete: bounds its memory and how long it holds
# the worker thread, so other calls interleave with a long scan.
_SCAN_PAGE = 1000


@dataclasses.dataclass(frozen=True, repr=False)
class SQLiteCacheOptions(ConfigSection):
    """``cache.options`` of the sqlite backend.

    ``path`` is the database file (its folder is created); ``busy_timeout``
    the seconds a write waits for another process's; ``purge_every`` how many
    writes pass between sweeps of expired entries.
    """

    _section: ClassVar[str] = "cache.options"

    path: str = "./var/cache.sqlite3"
    busy_timeout: float = dataclasses.field(default=5.0, metadata={"min": 0})
    purge_every: int = dataclasses.field(default=1000, metadata={"min": 1})

    def validate(self) -> None:
        if not self.path.strip():
            raise ConfigurationError("must not be empty; e.g. ./var/cache.sqlite3", key="path")


def _chunks(keys: Sequence[str]) -> list[Sequence[str]]:
    return [keys[i : i + _BATCH] for i in range(0, len(keys), _BATCH)]


def _marks(count: int) -> str:
    return ",".join("?" * count)


class SQLiteCacheStrategy(CacheStrategy):
    """Cache entries in a SQLite file, for every process of the host that opens it."""

    backend: ClassVar[str] = "sqlite"
    options_type: ClassVar[type[ConfigSection]] = SQLiteCacheOptions

    def __init__(
        self, config: CacheConfig | None = None, options: SQLiteCacheOptions | None = None
    ) -> None:
        super().__init__(config)
        self.options = options or SQLiteCacheOptions()
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None  # used on the worker thread only
        self._writes = 0

    def __repr__(self) -> str:
        return f"SQLiteCacheStrategy(path={self.options.path!r})"

    @property
    def target(self) -> str:
        return self.options.path

    # --- the worker thread ---------------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ads-sqlite-cache")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._with_connection, work
        )

    def _with_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._connection is None:
                self._connection = self._connect()
            return work(self._connection)
        except (sqlite3.DatabaseError, OSError) as exc:
            # The manager's fallback and health treat ConnectionError (an OSError) as
            # "the backend cannot answer" (docs/plugins.md); the connection is dropped
            # so that the next call opens the file again.
            self._disconnect()
            raise ConnectionError(f"sqlite cache {self.options.path}: {exc}") from exc

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        path = self.options.path
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: each statement commits on its own unless a BEGIN opens
        # a transaction, which set_many does for its batch.
        connection = sqlite3.connect(
            Path(path).expanduser() if path != ":memory:" else path,
            timeout=self.options.busy_timeout,
            isolation_level=None,
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            connection.execute(statement)
        return connection

    # --- hooks ---------------------------------------------------------------------

    async def get_raw(self, key: str) -> bytes | None:
        return (await self.get_many_with_ttl_raw([key]))[0][0]

    async def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        return [data for data, _ in await self.get_many_with_ttl_raw(keys)]

    async def get_many_with_ttl_raw(self, keys: Sequence[str]) -> list[tuple[bytes | None, float]]:
        wanted = list(keys)

        def read(db: sqlite3.Connection) -> list[tuple[bytes | None, float]]:
            now = time.time()
            found: dict[str, tuple[bytes, float | None]] = {}
            for chunk in _chunks(wanted):
                marks = _marks(len(chunk))
                query = f"SELECT key, value, expires_at FROM cache_entries WHERE key IN ({marks})"  # noqa: S608  (only '?' marks)
                rows = db.execute(f"{query} AND {_LIVE}", (*chunk, now))
                found.update((key, (value, expires)) for key, value, expires in rows)
            out: list[tuple[bytes | None, float]] = []
            for key in wanted:
                if key not in found:
                    out.append((None, 0.0))
                    continue
                value, expires = found[key]
                out.append((value, math.inf if expires is None else expires - now))
            return out

        return await self._run(read)

    async def set_raw(self, key: str, data: bytes, ttl: float) -> None:
        await self.set_many_raw([(key, data)], ttl)

    async def set_many_raw(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        rows = list(items)
        self._writes += len(rows)
        purge = self._writes >= self.options.purge_every
        if purge:
            self._writes = 0

        def write(db: sqlite3.Connection) -> None:
            now = time.time()
            expires = now + ttl if ttl > 0 else None
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO cache_entries (key, value, expires_at) "
                    "VALUES (?, ?, ?)",
                    [(key, data, expires) for key, data in rows],
                )
                if purge:
                    db.execute(
                        "DELETE FROM cache_entries WHERE expires_at IS NOT NULL "
                        "AND expires_at <= ?",
                        (now,),
                    )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._run(write)

    async def delete_raw(self, keys: Sequence[str]) -> int:
        doomed = list(keys)

        def delete(db: sqlite3.Connection) -> int:
            now, removed = time.time(), 0
            for chunk in _chunks(doomed):
                marks = _marks(len(chunk))
                # Count only live entries, as Redis's DEL does; drop expired ones too.
                removed += db.execute(
                    f"DELETE FROM cache_entries WHERE key IN ({marks}) AND {_LIVE}",  # noqa: S608
                    (*chunk, now),
                ).rowcount
                db.execute(f"DELETE FROM cache_entries WHERE key IN ({marks})", chunk)  # noqa: S608
            return removed

        return await self._run(delete)

    async def exists_raw(self, key: str) -> bool:
        def exists(db: sqlite3.Connection) -> bool:
            query = f"SELECT 1 FROM cache_entries WHERE key = ? AND {_LIVE}"  # noqa: S608
            return db.execute(query, (key, time.time())).fetchone() is not None

        return await self._run(exists)

    async def delete_pattern_raw(self, prefix: str, pattern: str) -> int:
        match = compile_glob(pattern).match
        start = len(prefix.encode())

        def step(db: sqlite3.Connection, after: str | None) -> tuple[int, str | None]:
            """Delete the matches among the next page of keys; return the page's last key,
            or None when the keys with the prefix are all seen."""
            # Keys sort by their UTF-8 bytes, so those with the prefix come in one run.
            query = "SELECT key FROM cache_entries WHERE key {} ? ORDER BY key LIMIT ?"
            page = [
                key
                for (key,) in db.execute(
                    query.format(">=" if after is None else ">"),
                    (prefix if after is None else after, _SCAN_PAGE),
                )
            ]
            inside = [key for key in page if key.startswith(prefix)]
            doomed = [k for k in inside if match(k.encode("utf-8", "surrogatepass"), start)]
            now, count = time.time(), 0
            for chunk in _chunks(doomed):
                count += db.execute(
                    f"DELETE FROM cache_entries WHERE key IN ({_marks(len(chunk))}) "  # noqa: S608
                    f"AND {_LIVE}",
                    (*chunk, now),
                ).rowcount
            more = len(page) == _SCAN_PAGE and len(inside) == len(page)
            return count, page[-1] if more else None

        removed, after = 0, None
        while True:
            count, last = await self._run(functools.partial(step, after=after))
            removed += count
            if last is None:
                return removed
            after = last

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """Close the file; the next call opens it again."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)
