"""Two watches sharing one client move to the next endpoint together when one dies.

The discovery's watch and the configuration watch share the discovery's
:class:`EtcdClient`. When the endpoint in use goes away both see it fail: the
client must move to the next endpoint once, not once per watcher (with two
endpoints, twice is back to the dead one, every round).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ads_infra.discovery.etcd_client import EtcdClient, WatchEvent
from tests.etcd_server import EtcdServer
from tests.integration.discovery.conftest import eventually

PREFIX = "/failover/"


async def _follow(client: EtcdClient, seen: list[WatchEvent]) -> None:
    async for event in client.watch_prefix(PREFIX):
        seen.append(event)


async def test_two_watches_fail_over_to_the_next_endpoint(
    etcd_server: EtcdServer, tmp_path: Path
) -> None:
    second = EtcdServer(tmp_path / "second")
    second.start()
    writer = EtcdClient([second.url])
    client = EtcdClient([etcd_server.url, second.url], timeout=0.5)
    tasks: list[asyncio.Task[None]] = []
    try:
        # The second endpoint is ahead in revisions, so resuming there misses nothing.
        for i in range(20):
            await writer.put(f"/other/{i}", "x")
        seen: list[list[WatchEvent]] = [[], []]
        tasks = [asyncio.create_task(_follow(client, events)) for events in seen]
        await eventually(lambda: client.down_since is None and client._client is not None)
        await asyncio.sleep(0.2)  # both watches established on the first endpoint
        etcd_server.stop()
        await eventually(lambda: client.down_since is not None)
        await writer.put(f"{PREFIX}a", "http://127.0.0.1:9")
        await eventually(lambda: all(any(e.key == f"{PREFIX}a" for e in s) for s in seen))
        assert client.endpoint == second.url
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        await writer.close()
        second.stop()
