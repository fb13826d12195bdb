"""The Redis backend: redis.asyncio over one blocking pool, with auto-pipelining.

:class:`AutoPipeline` coalesces the single-key commands concurrent callers
issue in one event-loop iteration into one round trip; the Redis Cluster
backend (:mod:`ads_infra.cache.cluster`) builds on :class:`RedisCacheStrategy`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ads_infra.cache.base import MAX_TTL, NEVER, CacheStrategy
from ads_infra.cache.codec import Codec
from ads_infra.cache.glob import glob_escape
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import CacheConfig, CacheType

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["AutoPipeline", "RedisCacheStrategy"]

T = TypeVar("T")


def _seconds_left(pttl: int) -> float:
    """PTTL's answer in seconds: -1 is no expiry, -2 (or anything else < 0) a missing key."""
    if pttl == -1:
        return NEVER
    return max(pttl, 0) / 1000


def _ex_px(ttl: float) -> tuple[int | None, int | None]:
    """SET's expiry arguments (EX, PX): EX for whole seconds, PX otherwise, none for 0."""
    if not ttl:
        return None, None
    if ttl == int(ttl):
        return int(ttl), None
    return None, max(1, round(ttl * 1000))


class AutoPipeline:
    """Sends the commands issued during one event-loop iteration as one pipeline.

    Concurrent callers each awaiting their own GET or SET would otherwise
    each take a pooled connection and a network round trip; here they share
    one write and one read (like ioredis' ``enableAutoPipelining``, which
    redis-py lacks). A lone caller waits one loop iteration at most. Each
    caller gets its own reply or its own error.
    """

    __slots__ = ("_client", "_pending", "_tasks", "_timeout")

    def __init__(self, client: Any, timeout: float | None = None) -> None:
        """``timeout`` bounds each batch's round trip (None: unbounded)."""
        self._client = client
        self._timeout = timeout
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, *command: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush, loop)
        self._pending.append((command, future))
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._pending:  # aclose() sent them already
            return
        batch, self._pending = self._pending, []
        task = loop.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            # One deadline for the batch. redis-py's socket_timeout arms a timer
            # per reply read (a heap push and a cancel each), which cost a sixth
            # of a pipelined GET's CPU time; the connections of an auto-pipelined
            # client have none, and every other call is bounded by the strategy.
            async with (
                asyncio.timeout(self._timeout),
                self._client.pipeline(transaction=False) as pipe,
            ):
                for command, _ in batch:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # handed to every caller, whose manager decides
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                if isinstance(reply, BaseException):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def aclose(self) -> None:
        """Send what is queued and wait for batches in flight (callers wait for them)."""
        self._flush(asyncio.get_running_loop())
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class RedisCacheStrategy(CacheStrategy):
    """Redis through redis.asyncio with one blocking connection pool.

    The pool (``redis_max_connections``) is created on first use inside the
    running loop; callers beyond the pool size wait up to ``pool_timeout``.
    ``close()`` releases it with ``aclose()``.
    """

    backend: ClassVar[str] = "redis"
    supports_tags: ClassVar[bool] = True

    def __init__(self, config: CacheConfig | None = None, *, codec: Codec | None = None) -> None:
        config = config or CacheConfig(cache_type=CacheType.REDIS)
        super().__init__(config, codec=codec)
        self.url = self.config.redis_url or "redis://127.0.0.1:6379/0"
        self._client: Any = None
        self._pipeline: AutoPipeline | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.target!r}, namespace={self.config.namespace!r})"

    @property
    def target(self) -> str:
        return mask_url(self.url)

    @property
    def _auto_pipelined(self) -> bool:
        return self.config.auto_pipeline and self.backend == "redis"

    def _connection_kwargs(self) -> dict[str, Any]:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        cfg = self.config
        return {
            # Auto-pipelined: bounded per batch and per call here (_bounded), not
            # per reply read by redis-py.
            "socket_timeout": None if self._auto_pipelined else cfg.socket_timeout or None,
            "socket_connect_timeout": cfg.socket_timeout or None,
            # One immediate retry replaces a pooled connection the server
            # closed; anything longer is the fallback breaker's job.
            "retry": Retry(NoBackoff(), 1),
        }

    def _connect(self) -> Redis:
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.config.redis_max_connections,
            timeout=self.config.pool_timeout,
            **self._connection_kwargs(),
        )
        return Redis.from_pool(pool)

    @property
    def client(self) -> Any:
        """The redis.asyncio client (Redis or RedisCluster), created on first use.

        No I/O happens here; connections open on the first command.
        """
        if self._client is None:
            self._client = self._connect()
            if self._auto_pipelined:
                self._pipeline = AutoPipeline(self._client, self.config.socket_timeout or None)
        return self._client

    async def _bounded(self, call: Awaitable[T]) -> T:
        """``call`` within ``socket_timeout`` when the connections have no timeout of their own."""
        if not self._auto_pipelined:
            return await call
        async with asyncio.timeout(self.config.socket_timeout or None):
            return await call

    def _submit(self, *command: Any) -> Awaitable[Any]:
        """Run one command: through the auto-pipeline when it is on."""
        client = self._client if self._client is not None else self.client
        if self._pipeline is not None:
            return self._pipeline.submit(*command)
        return client.execute_command(*command)  # type: ignore[no-any-return]  # auto_pipeline off

    async def ping(self) -> None:
        await self._bounded(self.client.ping())

    async def close(self) -> None:
        client, self._client = self._client, None
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            await pipeline.aclose()
        if client is not None:
            await client.aclose()

    async def get_raw(self, key: str) -> bytes | None:
        return await self._submit("GET", key)  # type: ignore[no-any-return]

    async def set_raw(self, key: str, data: bytes, ttl: float) -> None:
        if not ttl:
            await self._submit("SET", key, data)
        elif ttl == int(ttl):
            await self._submit("SET", key, data, "EX", int(ttl))
        else:
            await self._submit("SET", key, data, "PX", max(1, round(ttl * 1000)))

    async def delete_raw(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self._submit("UNLINK", *keys))

    async def exists_raw(self, key: str) -> bool:
        return bool(await self._submit("EXISTS", key))

    async def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return list(await self._bounded(self.client.mget(keys)))

    async def get_with_ttl_raw(self, key: str) -> tuple[bytes | None, float]:
        if self._pipeline is None:
            return await super().get_with_ttl_raw(key)
        data, left = self._pipeline.submit("GET", key), self._pipeline.submit("PTTL", key)
        return await data, _seconds_left(await left)  # both in one pipeline

    async def get_many_with_ttl_raw(self, keys: Sequence[str]) -> list[tuple[bytes | None, float]]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.pttl(key)
            replies = await self._bounded(pipe.execute())
        return [(replies[i], _seconds_left(replies[i + 1])) for i in range(0, len(replies), 2)]

    async def set_many_raw(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        if not items:
            return
        ex, px = _ex_px(ttl)
        async with self.client.pipeline(transaction=False) as pipe:
            for key, data in items:
                pipe.set(key, data, ex=ex, px=px)
            await self._bounded(pipe.execute())

    async def _scan_unlink(self, client: Any, match: str, **scan_kwargs: Any) -> int:
        # SCAN + UNLINK in batches: never KEYS (which blocks the server for the
        # whole keyspace), and UNLINK frees memory off the main thread.
        batch_size = self.config.scan_batch_size
        deleted, cursor = 0, 0
        while True:
            cursor, keys = await self._bounded(
                client.scan(cursor, match=match, count=batch_size, **scan_kwargs)
            )
            if keys:
                deleted += int(await self._bounded(self.client.unlink(*keys)))
            if not cursor:
                return deleted

    async def delete_pattern_raw(self, prefix: str, pattern: str) -> int:
        return await self._scan_unlink(self.client, glob_escape(prefix) + pattern)

    async def set_tagged_raw(
        self, items: Sequence[tuple[str, bytes]], ttl: float, tag_keys: Sequence[str]
    ) -> None:
        if not items:
            return
        ex, px = _ex_px(ttl)
        keys = [key for key, _ in items]
        # A tag's set keeps the longest TTL of its members (NX sets it on a new
        # set, GT only ever lengthens it); members without expiry get MAX_TTL,
        # as good as forever, so one rule covers both.
        tag_ms = max(1, round(ttl * 1000)) if ttl else MAX_TTL * 1000
        async with self.client.pipeline(transaction=False) as pipe:
            for key, data in items:
                pipe.set(key, data, ex=ex, px=px)
            for tag in tag_keys:
                pipe.sadd(tag, *keys)
                pipe.pexpire(tag, tag_ms, nx=True)
                pipe.pexpire(tag, tag_ms, gt=True)
            await self._bounded(pipe.execute())

    async def delete_tagged_raw(self, tag_keys: Sequence[str]) -> tuple[int, list[str]]:
        # SPOP takes members out atomically, a batch at a time: a key tagged
        # meanwhile is either taken (and deleted) or stays in the set for the
        # next invalidation, never dropped from the set while still cached.
        # SMEMBERS then DEL would lose such a key; one SPOP of everything
        # would hold an unbounded reply in memory.
        batch_size = self.config.scan_batch_size
        client = self.client
        deleted, named = 0, list[str]()
        for tag in tag_keys:
            while True:
                members = await self._bounded(client.spop(tag, batch_size))
                if not members:
                    break
                try:
                    deleted += int(await self._bounded(client.unlink(*members)))
                except BaseException:
                    # SPOP took them out of the set but they may still be cached: put
                    # them back (best effort), so invalidating the tag again finds them.
                    # A set SPOP emptied is gone: recreated, it gets the longest TTL.
                    with contextlib.suppress(Exception):
                        async with client.pipeline(transaction=False) as pipe:
                            pipe.sadd(tag, *members)
                            pipe.pexpire(tag, MAX_TTL * 1000, nx=True)
                            await self._bounded(pipe.execute())
                    raise
                named.extend(member.decode() for member in members)
                if len(members) < batch_size:
                    break  # that emptied the set, and Redis deleted it
        return deleted, named
