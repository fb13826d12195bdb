"""A small etcd v3 client over aetcd: endpoints in turn, leases, and a resumable prefix watch.

aetcd (asyncio, gRPC) was chosen over etcetra: it is maintained, works with
etcd 3.4 (Debian bookworm's), and has every call this needs: lease grant and
keep-alive, put with a lease, get by prefix, watch by prefix from a revision.
It knows one endpoint; this wrapper moves to the next of ``discovery.etcd_url``
when one cannot be reached, and turns aetcd's errors into
:class:`~ads_infra.core.errors.DiscoveryError`.

:meth:`EtcdClient.watch_prefix` is public on purpose: it is the one way
anything in the package follows a prefix (service instances here, a
configuration prefix elsewhere), and it never loses an event: after a
disconnect it resumes from the revision after the last event it yielded, and
when that revision was compacted away it reads the prefix again and yields
what changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import aetcd  # type: ignore[import-untyped]
from aetcd import exceptions as aetcd_errors

from ads_infra.core.errors import DiscoveryError
from ads_infra.core.redact import mask_url

__all__ = ["EtcdClient", "WatchEvent"]

logger = logging.getLogger("ads_infra.discovery")

# Waits between reconnection attempts: short first (a restart takes a second), capped.
_FIRST_RETRY = 0.1
_MAX_RETRY = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change under a watched prefix: ``value`` is None when the key was deleted."""

    key: str
    value: str | None
    revision: int


class EtcdClient:
    """One connection to an etcd cluster, to the first of ``endpoints`` that answers.

    ``timeout`` bounds each request. ``down_since`` (wall clock) and
    ``problem`` say since when and why etcd could not be reached; both are
    None while it can.
    """

    def __init__(self, endpoints: Sequence[str], *, timeout: float = 2.0) -> None:
        if not endpoints:
            raise DiscoveryError("etcd: no endpoint given; set ADS_ETCD_URL")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._index = 0
        self._client: Any = None
        self.down_since: float | None = None
        self.problem: str | None = None
        self._listeners: list[Callable[[bool], None]] = []

    def on_reachability(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(False)`` when etcd becomes unreachable, ``listener(True)`` when back."""
        self._listeners.append(listener)

    def _tell(self, up: bool) -> None:
        for listener in self._listeners:
            try:
                listener(up)
            except Exception:
                logger.exception("an etcd reachability listener failed")

    @property
    def endpoint(self) -> str:
        """The endpoint in use (or tried next)."""
        return self.endpoints[self._index]

    # --- connection ---------------------------------------------------------------

    async def _connected(self) -> Any:
        if self._client is None:
            parts = urlsplit(self.endpoint)
            client = aetcd.Client(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 2379,
                # etcd's own authentication, from http://user:password@host:port.
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                timeout=self.timeout,
                connect_wait_timeout=max(1, int(self.timeout)),
            )
            self._client = client
            try:
                # Opens the channel (it connects on the first call), and authenticates
                # when the URL holds credentials: that one is a request already.
                await client.connect()
            except (aetcd_errors.ClientError, OSError, TimeoutError) as exc:
                raise await self._failed(exc, client) from None
        return self._client

    async def _failed(self, exc: BaseException, failed: Any) -> DiscoveryError:
        """Note the failure of ``failed`` (a connection), move to the next endpoint, and
        the error to raise.

        Several callers share the connection (two watches, the keep-alive) and
        each sees it fail: only the first moves on. The others' connection is
        already replaced, and moving again would skip (with two endpoints: go
        back to) an endpoint, or close the connection another caller just made.
        """
        if failed is not self._client:
            problem = self.problem or f"{mask_url(self.endpoint)}: {_reason(exc)}"
            return self._error(problem)
        problem = f"{mask_url(self.endpoint)}: {_reason(exc)}"
        self.problem = problem
        if self.down_since is None:
            self.down_since = time.time()
            logger.warning("etcd unreachable: %s", problem)
            self._tell(False)
        self._client = None
        self._index = (self._index + 1) % len(self.endpoints)
        with contextlib.suppress(Exception):
            await failed.close()
        return self._error(problem)

    def _error(self, problem: str) -> DiscoveryError:
        return DiscoveryError(
            f"etcd: {problem}; check that etcd runs at ADS_ETCD_URL "
            f"({', '.join(mask_url(e) for e in self.endpoints)})"
        )

    def _ok(self) -> None:
        if self.down_since is not None:
            logger.info("etcd reachable again at %s", mask_url(self.endpoint))
            self.down_since = None
            self.problem = None
            self._tell(True)

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = await self._connected()
        try:
            result = await getattr(client, method)(*args, **kwargs)
        except (aetcd_errors.ClientError, OSError, TimeoutError) as exc:
            raise await self._failed(exc, client) from None
        self._ok()
        return result

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    # --- keys and leases -------------------------------------------------------------

    async def get_prefix(self, prefix: str) -> tuple[int, dict[str, str]]:
        """Every key under ``prefix`` with its value, and the revision they are read at."""
        result = await self._call("get_prefix", prefix.encode())
        values = {_key(kv.key): _value(kv.value) for kv in result}
        return int(result.header.revision), values

    async def put(self, key: str, value: str, *, lease: int | None = None) -> None:
        await self._call("put", _raw(key), value.encode(), lease=lease)

    async def delete(self, key: str) -> None:
        await self._call("delete", _raw(key))

    async def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; its id."""
        lease = await self._call("lease", ttl)
        return int(lease.id)

    async def keep_alive(self, lease: int) -> int:
        """Refresh ``lease``; the seconds it now has left (0: it had expired, and is gone)."""
        reply = await self._call("refresh_lease", lease)
        return max(0, int(reply.TTL)) if reply is not None else 0

    async def revoke(self, lease: int) -> None:
        """Drop ``lease`` and every key it holds."""
        await self._call("revoke_lease", lease)

    # --- watching -----------------------------------------------------------------------

    async def watch_prefix(
        self,
        prefix: str,
        *,
        start_revision: int | None = None,
        on_live: Callable[[], None] | None = None,
    ) -> AsyncGenerator[WatchEvent]:
        """Every change under ``prefix``, for as long as the caller iterates.

        Without ``start_revision`` it first yields every key under ``prefix``
        (a PUT each), then the changes after them. It survives etcd going
        away: it retries (``down_since``/``problem`` say so meanwhile) and
        resumes from the revision after the last event yielded; if etcd has
        compacted that revision away, it reads the prefix again and yields a
        PUT for each key and a DELETE for each key gone since. The keys it
        has yielded as present are held (not their values) to make that
        DELETE possible. ``on_live()`` is called each time the watch is
        established: what was yielded so far is current.
        """
        present: set[str] = set()
        revision = start_revision
        delay = _FIRST_RETRY
        while True:
            try:
                if revision is None:
                    revision, changes = await self._resync(prefix, present)
                    for key, value in changes:
                        yield WatchEvent(key, value, revision)
                    revision += 1
                client = await self._connected()
                try:
                    watch = await client.watch_prefix(prefix.encode(), start_revision=revision)
                except (aetcd_errors.ClientError, OSError, TimeoutError) as exc:
                    if isinstance(exc, aetcd_errors.RevisionCompactedError):
                        raise
                    raise await self._failed(exc, client) from None
                self._ok()
                delay = _FIRST_RETRY
                if on_live is not None:
                    on_live()
                try:
                    async for event in watch:
                        key = _key(event.kv.key)
                        revision = int(event.kv.mod_revision) + 1
                        if event.kind == "DELETE":
                            present.discard(key)
                            yield WatchEvent(key, None, revision - 1)
                        else:
                            present.add(key)
                            yield WatchEvent(key, _value(event.kv.value), revision - 1)
                except aetcd_errors.RevisionCompactedError:
                    raise
                except (aetcd_errors.ClientError, OSError, TimeoutError) as exc:
                    raise await self._failed(exc, client) from None
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(watch.cancel(), self.timeout)
            except aetcd_errors.RevisionCompactedError:
                logger.info("etcd: revision %s of %s compacted; reading it again", revision, prefix)
                revision = None
                continue
            except DiscoveryError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY)

    async def _resync(
        self, prefix: str, present: set[str]
    ) -> tuple[int, list[tuple[str, str | None]]]:
        """Read ``prefix`` whole: its revision, and the changes that bring a reader current."""
        revision, values = await self.get_prefix(prefix)
        gone = sorted(present - values.keys())
        events: list[tuple[str, str | None]] = [(key, None) for key in gone]
        events.extend(sorted(values.items()))
        present.clear()
        present.update(values)
        return revision, events


# Anyone may write under a watched prefix (etcdctl), bytes that are not UTF-8
# included: decoding must not raise, or one such key would end every watch of
# the prefix and every read of it. A key keeps its bytes (surrogateescape: the
# same key, deletable); a value's undecodable bytes become U+FFFD, which no
# reader takes for a URL or a setting's value, and says so naming the key.
def _key(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _raw(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def _value(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
