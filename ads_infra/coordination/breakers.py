"""Circuit-breaker state shared through Redis: one open circuit, one probe, fleet-wide.

Each process keeps its own :class:`~ads_infra.external_services.breaker.CircuitBreaker`
(the request path's checks stay O(1) and local); this store is what they
agree through. A service's key holds the moment (Redis clock, ms) its
circuit may be probed again; no key means closed. Processes read the keys
every ``breaker_sync_interval`` seconds and follow them, so one process
opening a circuit opens it everywhere within about that interval.

The half-open probe is claimed with ``SET NX`` on a second key, in the same
script that checks the circuit is due: only one process probes per period,
and a crashed prober's claim expires with the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

__all__ = ["SharedBreakers"]

# KEYS: breaker key, probe key. ARGV: probe claim ms, this process's id.
# > 0: claimed. 0: the fleet's circuit is closed. < 0: -(ms until it may be probed).
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = tonumber(redis.call('GET', KEYS[1]) or '-1')
if due < 0 then return 0 end
if now < due then return -(due - now) end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then return 1 end
local left = redis.call('PTTL', KEYS[2])
if left < 1 then left = 1 end
return -left
"""

# KEYS: breaker key, probe key. ARGV: recovery ms, 1 to replace an open circuit's time.
# Returns ms until the fleet's circuit may be probed.
_OPEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local recovery = tonumber(ARGV[1])
local due = tonumber(redis.call('GET', KEYS[1]) or '-1')
if due < 0 or ARGV[2] == '1' then
  due = now + recovery
  redis.call('SET', KEYS[1], string.format('%d', due), 'PX', recovery * 4 + 60000)
  redis.call('DEL', KEYS[2])
end
return due - now
"""

# KEYS: the breaker keys. Returns, per key, ms until due (may be <= 0), or false: closed.
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local due = redis.call('GET', key)
  if due then out[i] = tostring(tonumber(due) - now) else out[i] = false end
end
return out
"""


class SharedBreakers:
    """Reads and writes the fleet's circuit states; every method may raise a Redis error."""

    def __init__(self, client: Redis, prefix: str, owner: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:breaker:"
        self._owner = owner
        self._claim: Any = client.register_script(_CLAIM)
        self._open: Any = client.register_script(_OPEN)
        self._read: Any = client.register_script(_READ)

    def _keys(self, name: str) -> list[str]:
        return [self._prefix + name, self._prefix + name + ":probe"]

    async def claim_probe(self, name: str, recovery_timeout: float) -> float:
        """0 when this process may probe (or the fleet closed meanwhile); else seconds to wait."""
        ms = max(1, round(recovery_timeout * 1000))
        got = int(await self._claim(keys=self._keys(name), args=[ms, self._owner]))
        return 0.0 if got >= 0 else -got / 1000

    async def opened(self, name: str, recovery_timeout: float, *, replace: bool) -> float:
        """Record an opening (``replace``: a failed probe restarts the period); seconds left."""
        ms = max(1, round(recovery_timeout * 1000))
        left = int(await self._open(keys=self._keys(name), args=[ms, "1" if replace else "0"]))
        return max(0.0, left / 1000)

    async def closed(self, name: str) -> None:
        await self._client.delete(*self._keys(name))

    async def read(self, names: Sequence[str]) -> dict[str, float | None]:
        """``{name: seconds until due (<= 0: due now), or None when closed}``."""
        if not names:
            return {}
        rows = await self._read(keys=[self._prefix + n for n in names])
        return {
            n: (int(r) / 1000 if r is not None else None) for n, r in zip(names, rows, strict=True)
        }
