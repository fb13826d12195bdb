"""Fleet-wide coordination over one Redis: what makes many processes behave as one.

:class:`Coordinator` owns the coordination Redis client and hands out the
pieces the other packages use through protocols they define themselves
(``external_services.fleet``, ``cache.fleet``), so neither imports this one:

- :mod:`.ratelimit`: a GCRA pacer shared by every process (Lua, atomic), with
  a local fallback of ``rate / expected_processes`` while Redis is away;
- :mod:`.breakers`: circuit-breaker state in Redis, one half-open probe
  fleet-wide;
- :mod:`.bus`: the one pub/sub connection per process (cache invalidations,
  single-flight "value landed" notices), with reset callbacks on disconnect;
- :mod:`.flight`: the ``get_or_set`` lock (redis-py's ``Lock``: token, TTL,
  released only by its owner).
"""

from ads_infra.coordination.client import Coordinator

__all__ = ["Coordinator"]
