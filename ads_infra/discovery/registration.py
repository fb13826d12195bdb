"""This process's own instances in etcd: keys under one lease, kept alive, revoked on close.

Each ``SERVICE=URL`` of ``discovery.register`` is the key
``<key_prefix><SERVICE>/<instance id>`` holding the URL, attached to one lease
of ``ttl`` seconds that a background task refreshes every third of it. A
process that dies stops refreshing, and etcd deletes its keys when the lease
runs out: that deletion is what every watcher sees. If the lease was lost
(etcd away longer than the TTL), a new one is granted and the keys written
again. :meth:`Registration.close` revokes the lease, deregistering at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from ads_infra.core.errors import DiscoveryError
from ads_infra.core.redact import mask_url
from ads_infra.discovery.etcd_client import EtcdClient

__all__ = ["Registration"]

logger = logging.getLogger("ads_infra.discovery")


class Registration:
    """``entries`` (service, URL) registered under ``prefix`` with a ``ttl``-second lease."""

    def __init__(
        self, client: EtcdClient, prefix: str, entries: list[tuple[str, str]], ttl: int
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.entries = [(service, url.rstrip("/")) for service, url in entries]
        self.ttl = ttl
        self.lease: int | None = None
        self.keys: list[str] = []
        self._task: asyncio.Task[None] | None = None
        # One id per process: the keys of two processes never collide.
        self._id = f"{socket.gethostname()}-{os.getpid()}"

    async def start(self) -> None:
        """Register now (raises DiscoveryError when etcd cannot be reached), then keep alive."""
        if not self.entries or self._task is not None:
            return
        await self._register()
        self._task = asyncio.create_task(self._keep_alive(), name="etcd-keepalive")

    async def _register(self) -> None:
        lease = await self.client.grant(self.ttl)
        keys = []
        for index, (service, url) in enumerate(self.entries):
            key = f"{self.prefix}{service}/{self._id}-{lease:x}-{index}"
            await self.client.put(key, url, lease=lease)
            keys.append(key)
        self.lease, self.keys = lease, keys
        # A URL may carry user:password@; the log shows it masked, as everywhere else.
        shown = ", ".join(f"{service}={mask_url(url)}" for service, url in self.entries)
        logger.info("registered %s under lease %x (ttl %d s)", shown, lease, self.ttl)

    async def _keep_alive(self) -> None:
        interval = self.ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                left = await self.client.keep_alive(self.lease) if self.lease else 0
                if left == 0:
                    logger.warning("etcd lease %s was lost; registering again", self.lease)
                    await self._register()
                interval = self.ttl / 3
            except DiscoveryError as exc:
                # Try again sooner: the lease still has up to two thirds of its TTL.
                logger.warning("keeping the registration alive failed: %s", exc)
                interval = min(self.ttl / 3, 0.5)

    async def close(self) -> None:
        """Stop refreshing and revoke the lease (its keys go at once); never raises."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lease, self.lease = self.lease, None
        if lease is not None:
            try:
                await self.client.revoke(lease)
            except DiscoveryError as exc:
                # The keys go when the lease runs out, ttl seconds from the last refresh.
                logger.warning("deregistering failed (%s); the keys expire in %d s", exc, self.ttl)
