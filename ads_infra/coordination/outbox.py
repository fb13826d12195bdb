"""A durable outbox on a Redis Stream: analytics events that survive a killed process.

Why a Redis Stream and not a PostgreSQL table: the coordination Redis is
already every process's shared link (analytics does not otherwise depend on
the database), an ``XADD`` costs one sub-millisecond round trip on the
``track()`` path, and a consumer group gives what an outbox table would have
to build by hand: one delivery per entry across processes, a pending list
per consumer, and ``XAUTOCLAIM`` to take over a dead consumer's entries.
The entries are as durable as that Redis is (its AOF/RDB settings): a killed
*process* loses nothing once ``track()`` returned.

Layout under ``<prefix>:outbox:<name>``: the stream (field ``m``: the encoded
event), its consumer group ``senders`` (one consumer per process: the
Coordinator's origin), and a hash ``...:counts`` of fleet-wide ``accepted``,
``delivered`` and ``dropped``. Each entry is counted once, in the script that
acknowledges it: ``XACK`` reports whether the entry was still pending, so an
entry sent twice (a slow consumer's entries claimed by another) is counted
once, and ``accepted = delivered + dropped + (entries still in the stream)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

__all__ = ["StreamOutbox"]

logger = logging.getLogger("ads_infra.coordination")

GROUP = "senders"

# KEYS: stream, counts. ARGV: message, max entries. 1: added; 0: full, counted as dropped.
_ADD = """
redis.call('HINCRBY', KEYS[2], 'accepted', 1)
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], 'dropped', 1)
  return 0
end
redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
return 1
"""

# KEYS: stream, counts. ARGV: group, counter field, ids... Returns how many were still pending.
_SETTLE = """
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
if n > 0 then redis.call('HINCRBY', KEYS[2], ARGV[2], n) end
return n
"""


def _entries(rows: Any) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    for entry_id, fields in rows or ():
        ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        out.append((ident, (fields or {}).get(b"m")))
    return out


class StreamOutbox:
    """One process's consumer of the outbox ``name``; every method may raise a Redis error."""

    def __init__(
        self, client: Redis, prefix: str, name: str, consumer: str, claim_after: float
    ) -> None:
        self._client = client
        self.stream = f"{prefix}:outbox:{name}"
        self.counts_key = f"{self.stream}:counts"
        self.consumer = consumer
        self._claim_ms = max(1, round(claim_after * 1000))
        self._add: Any = client.register_script(_ADD)
        self._settle: Any = client.register_script(_SETTLE)
        self._group_ready = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def add(self, message: bytes, max_entries: int) -> bool:
        """Append ``message`` (counted as accepted); False when the stream was full (dropped)."""
        return bool(
            await self._add(keys=[self.stream, self.counts_key], args=[message, max_entries])
        )

    async def take(self, count: int) -> list[tuple[str, bytes]]:
        """Up to ``count`` entries for this process to send.

        First its own unacknowledged entries (a failed send's), then entries
        pending longer than ``claim_after`` on other consumers (a dead
        process's), then new ones.
        """
        await self._ensure_group()
        try:
            got = await self._read("0", count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted: start again
            await self._ensure_group()
            got = []
        if len(got) < count:
            claimed = await self._client.xautoclaim(
                self.stream, GROUP, self.consumer, self._claim_ms, "0-0", count=count - len(got)
            )
            got += _entries(claimed[1])
        if len(got) < count:
            got += await self._read(">", count - len(got))
        ready: list[tuple[str, bytes]] = [(i, m) for i, m in got if m is not None]
        gone = [ident for ident, message in got if message is None]
        if gone:  # deleted while pending (trimmed by hand): nothing to send, not ours to count
            await self._client.xack(self.stream, GROUP, *gone)
        return ready

    async def _read(self, start: str, count: int) -> list[tuple[str, bytes | None]]:
        rows: Any = await self._client.xreadgroup(
            GROUP, self.consumer, {self.stream: start}, count=count
        )
        return _entries(rows[0][1]) if rows else []

    async def settle(self, ids: Sequence[str], outcome: str) -> int:
        """Acknowledge and delete ``ids``, counting them under ``outcome`` (delivered|dropped).

        Returns how many were still pending: the ones counted here.
        """
        if not ids:
            return 0
        keys = [self.stream, self.counts_key]
        return int(await self._settle(keys=keys, args=[GROUP, outcome, *ids]))

    async def counts(self) -> dict[str, int]:
        """Fleet-wide ``accepted``, ``delivered``, ``dropped``, and ``waiting`` in the stream."""
        raw: Any = await self._client.hgetall(self.counts_key)
        counts = {bytes(k).decode(): int(v) for k, v in raw.items()}
        waiting = await self._client.xlen(self.stream)
        return {
            "accepted": counts.get("accepted", 0),
            "delivered": counts.get("delivered", 0),
            "dropped": counts.get("dropped", 0),
            "waiting": int(waiting),
        }
