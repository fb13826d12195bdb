"""The Redis Cluster backend: the Redis backend over redis.asyncio's RedisCluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ads_infra.cache.glob import glob_escape
from ads_infra.cache.redis import RedisCacheStrategy

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisClusterCacheStrategy"]


class RedisClusterCacheStrategy(RedisCacheStrategy):
    """Redis Cluster through redis.asyncio's RedisCluster.

    ``redis_url`` names any node; the client discovers the rest. Multi-key
    operations are split by hash slot (MGET per slot, pipelined SETs), and
    ``delete_pattern`` scans every primary.
    """

    backend: ClassVar[str] = "redis_cluster"

    def _connect(self) -> RedisCluster:  # type: ignore[override]
        from redis.asyncio.cluster import RedisCluster

        kwargs = self._connection_kwargs()
        kwargs.pop("retry")  # the cluster client retries on topology changes itself
        return RedisCluster.from_url(
            self.url, max_connections=self.config.redis_max_connections, **kwargs
        )

    async def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return list(await self.client.mget_nonatomic(list(keys)))

    async def delete_raw(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        # RedisCluster splits a multi-key UNLINK by slot.
        return int(await self.client.unlink(*keys))

    async def delete_pattern_raw(self, prefix: str, pattern: str) -> int:
        match = glob_escape(prefix) + pattern
        cluster: Any = self.client
        await cluster.initialize()
        deleted = 0
        for node in cluster.get_primaries():
            deleted += await self._scan_node(cluster, node, match)
        return deleted

    async def _scan_node(self, cluster: Any, node: Any, match: str) -> int:
        batch_size = self.config.scan_batch_size
        deleted, cursor = 0, 0
        while True:
            reply = await cluster.scan(cursor, match=match, count=batch_size, target_nodes=node)
            cursor, keys = reply
            if isinstance(cursor, dict):  # some versions key the reply by node name
                cursor = next(iter(cursor.values()))
            if keys:
                deleted += int(await cluster.unlink(*keys))
            if not cursor:
                return deleted
