"""Configuration from etcd: the keys under ``discovery.config_prefix``, followed into the reloader.

With ``discovery.backend: etcd`` and a ``config_prefix`` (empty: off), each
key under the prefix is one dotted setting, its value YAML
(``/ads-infra/config/services.ai.rate_limit`` = ``5``), laid over the file by
:meth:`~ads_infra.core.reloader.ConfigReloader.reload_overlay`
(docs/reload.md). :class:`EtcdConfigWatch` reads the prefix when it starts and
applies it before ``start()`` returns, then follows it with the discovery's
own client (one connection, one resumable watch): every etcd revision (one
put, or every key of one transaction) is one reload of the whole prefix, so a
transaction applies whole or not at all. While etcd is away the configuration
in force stays; the watch resumes from where it was when etcd is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ads_infra.core.overlay import clipped
from ads_infra.core.reloader import ConfigReloader, ReloadResult
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.base import ServiceDiscovery

if TYPE_CHECKING:
    from ads_infra.discovery.etcd_client import EtcdClient, WatchEvent

__all__ = ["EtcdConfigWatch", "config_watch_for"]

logger = logging.getLogger("ads_infra.config")


class _Live:
    """Queued when the watch is (re)established: every event queued before it is current."""


_LIVE = _Live()


class EtcdConfigWatch:
    """Lays the keys under ``prefix`` over the configuration file, and follows them.

    ``client`` is shared (the discovery's): this watch starts after it
    connects and stops before it closes. ``timeout`` bounds how long
    ``start()`` waits for the first reading; past it the file's configuration
    stays in force and etcd's keys apply once it answers. ``last`` is the
    outcome of the latest reload from etcd (None before one).
    """

    def __init__(
        self, client: EtcdClient, prefix: str, reloader: ConfigReloader, *, timeout: float
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.reloader = reloader
        self.timeout = timeout
        self.origin = f"etcd:{prefix}"
        self.last: ReloadResult | None = None
        self._values: dict[str, str] = {}  # dotted setting -> its YAML text, as etcd holds it
        self._queue: asyncio.Queue[WatchEvent | _Live] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        client.on_reachability(self._reachability)

    async def start(self) -> None:
        """Read the prefix, apply it (waiting up to ``timeout``), then follow it."""
        if self._tasks:
            return
        self._queue = asyncio.Queue()
        self._ready = asyncio.Event()
        watch = self.client.watch_prefix(self.prefix, on_live=self._on_live)
        self._tasks = [
            asyncio.create_task(self._pump(watch), name="etcd-config-watch"),
            asyncio.create_task(self._follow(), name="etcd-config-reload"),
        ]
        try:
            await asyncio.wait_for(self._ready.wait(), self.timeout)
        except TimeoutError:
            logger.warning(
                "configuration from %s not read at startup (%s); the file's is in force, "
                "etcd's keys apply once it answers",
                self.origin,
                self.client.problem or "no answer",
            )

    async def close(self) -> None:
        """Stop following (the client is the discovery's: it closes it)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_live(self) -> None:
        self._queue.put_nowait(_LIVE)

    def _reachability(self, up: bool) -> None:
        if not self._tasks:
            return
        if up:
            logger.info("configuration from %s followed again", self.origin)
        else:
            logger.warning(
                "configuration from %s: etcd unreachable; the configuration in force stays, "
                "changes made meanwhile apply once it is back",
                self.origin,
            )

    async def _pump(self, watch: AsyncIterator[WatchEvent]) -> None:
        # The queue is unbounded because _follow drains it as fast as reloads run;
        # what it holds is bounded by what etcd sends, as in the client's own queue.
        try:
            async for event in watch:
                self._queue.put_nowait(event)
        finally:
            with contextlib.suppress(Exception):
                await watch.aclose()  # type: ignore[attr-defined]

    async def _follow(self) -> None:
        held: WatchEvent | _Live | None = None
        while True:
            item = held if held is not None else await self._queue.get()
            held = None
            if isinstance(item, _Live):
                self._ready.set()
                continue
            # One revision is one reload. etcd sends a revision's events in one
            # watch response, and the client yields them with no wait between
            # them, so they are all queued by the time this runs; an event of a
            # later revision (or the watch's live mark) waits for the next round.
            batch = [item]
            while not self._queue.empty():
                next_item = self._queue.get_nowait()
                if isinstance(next_item, _Live) or next_item.revision != item.revision:
                    held = next_item
                    break
                batch.append(next_item)
            for event in batch:
                self._take(event)
            try:
                self.last = await self.reloader.reload_overlay(dict(self._values), self.origin)
            except Exception:
                # A component failing in an unforeseen way must not end the watch.
                logger.exception("configuration from %s: the reload failed", self.origin)

    def _take(self, event: WatchEvent) -> None:
        key, value = clipped(event.key.removeprefix(self.prefix), event.value)
        if value is None:
            self._values.pop(key, None)  # deleted: the file's value again
        else:
            self._values[key] = value


def config_watch_for(
    backend: ServiceDiscovery, config: DiscoveryConfig, reloader: ConfigReloader
) -> EtcdConfigWatch | None:
    """The watch of ``config.config_prefix`` when ``backend`` is etcd's and it is set, else None."""
    client: EtcdClient | None = getattr(backend, "client", None)
    if backend.backend != "etcd" or client is None or not config.config_prefix:
        return None
    return EtcdConfigWatch(client, config.config_prefix, reloader, timeout=config.timeout * 2)
