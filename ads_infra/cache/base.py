"""The cache backend interface, and the TTL rules every backend applies.

:class:`CacheStrategy` owns what every backend shares (the namespace prefix,
the codec, the public value-level API); a backend implements only the
byte-level hooks (``get_raw``, ``set_raw``, ...), which take keys that already
carry the namespace. :class:`~ads_infra.cache.CacheManager` calls the hooks
directly (through its remote tier) and adds statistics, fallback, two-level
caching and single flight.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ads_infra.cache.codec import Codec
from ads_infra.core.settings import CacheConfig

__all__ = ["MAX_TTL", "NEVER", "CacheStrategy", "expiry_seconds", "tag_keys"]

NEVER = math.inf  # the expiry of an entry stored without TTL, and the time it has left
MAX_TTL = 10**9  # seconds, ~31 years: far inside Redis's limit for EX/PX


def expiry_seconds(ttl: float | None, default_ttl: int) -> float:
    """The TTL to apply: ``None`` means the default, ``0`` (or infinity) no expiry."""
    if ttl is None:
        return float(default_ttl)
    if not ttl >= 0:  # also catches NaN
        raise ValueError(f"ttl must be >= 0 seconds (0 = no expiry), got {ttl}")
    if ttl == math.inf:
        return 0.0
    if ttl > MAX_TTL:
        raise ValueError(f"ttl must be <= {MAX_TTL:,} seconds (0 = no expiry), got {ttl}")
    return float(ttl)


# Between the namespace and a tag's name in the key of the tag's set. A NUL
# byte keeps the set's key apart from any key a caller would write, while
# ``clear()`` (the pattern ``*``) still deletes it with the namespace.
_TAG_MARK = "\x00tag:"
MAX_TAG_LENGTH = 1024


def tag_keys(prefix: str, tags: Iterable[str]) -> list[str]:
    """The keys of the sets that hold the members of ``tags``, under ``prefix``.

    Raises TypeError for one string instead of an iterable of them (``tags="u1"``
    would tag ``u`` and ``1``) and ValueError for an empty or oversized tag.
    """
    if isinstance(tags, (str, bytes)):
        raise TypeError(f"tags must be an iterable of strings, e.g. tags=[{tags!r}]")
    keys = []
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"a tag must be a string, not {type(tag).__name__}")
        if not 0 < len(tag) <= MAX_TAG_LENGTH:
            raise ValueError(f"a tag must be 1 to {MAX_TAG_LENGTH} characters long")
        keys.append(prefix + _TAG_MARK + tag)
    return keys


class CacheStrategy(abc.ABC):
    """A cache backend. Public methods take plain keys and values.

    Every key of a shared backend lives under ``{namespace}:`` (``prefix``);
    the in-process store is private and needs none. ``ttl=None`` uses
    ``config.default_ttl``; ``ttl=0`` stores without expiry.
    """

    backend: ClassVar[str] = ""

    def __init__(self, config: CacheConfig | None = None, *, codec: Codec | None = None) -> None:
        self.config = config or CacheConfig()
        self.prefix = f"{self.config.namespace}:"
        self.codec = codec or self._default_codec(self.config)

    @staticmethod
    def _default_codec(config: CacheConfig) -> Codec:
        threshold = config.compression_threshold if config.compression_enabled else None
        return Codec(
            config.serializer,
            compression_threshold=threshold,
            max_value_bytes=config.max_value_bytes,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.config.namespace!r})"

    @property
    def target(self) -> str:
        """Where the backend points, safe to print."""
        return "process memory"

    # --- hooks: keys carry the namespace, values are codec bytes ----------------

    @abc.abstractmethod
    async def get_raw(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set_raw(self, key: str, data: bytes, ttl: float) -> None: ...

    @abc.abstractmethod
    async def delete_raw(self, keys: Sequence[str]) -> int: ...

    @abc.abstractmethod
    async def exists_raw(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]: ...

    @abc.abstractmethod
    async def set_many_raw(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None: ...

    @abc.abstractmethod
    async def delete_pattern_raw(self, prefix: str, pattern: str) -> int:
        """Delete keys ``prefix + k`` where ``k`` matches the glob ``pattern``."""

    async def get_many_with_ttl_raw(self, keys: Sequence[str]) -> list[tuple[bytes | None, float]]:
        """Each key's payload and the seconds it has left (inf: no expiry).

        What the manager's two-level mode reads, so that a local copy never
        outlives the entry it copies. This default knows no TTLs.
        """
        return [(data, NEVER) for data in await self.get_many_raw(keys)]

    async def get_with_ttl_raw(self, key: str) -> tuple[bytes | None, float]:
        return (await self.get_many_with_ttl_raw([key]))[0]

    # --- tags: optional hooks; a backend without them refuses tagged writes -------

    supports_tags: ClassVar[bool] = False

    async def set_tagged_raw(
        self, items: Sequence[tuple[str, bytes]], ttl: float, tag_keys: Sequence[str]
    ) -> None:
        """Store ``items`` and add their keys to each tag's set, in one round trip.

        A tag's set lives at least as long as the longest-lived key in it, so
        deleting the tag finds every key still alive.
        """
        raise NotImplementedError(f"the {self.backend or type(self).__name__} cache has no tags")

    async def delete_tagged_raw(self, tag_keys: Sequence[str]) -> tuple[int, list[str]]:
        """Delete every key in the tags' sets, and the sets.

        Returns how many keys were deleted and the keys the sets named (some
        may have expired already). Proportional to the tags' members, whatever
        the size of the keyspace.
        """
        raise NotImplementedError(f"the {self.backend or type(self).__name__} cache has no tags")

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise when the backend cannot answer."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the strategy reconnects on next use."""

    # --- public value-level API ------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        data = await self.get_raw(self.prefix + key)
        return default if data is None else self.codec.decode(data)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        seconds = expiry_seconds(ttl, self.config.default_ttl)
        await self.set_raw(self.prefix + key, self.codec.encode(value), seconds)

    async def delete(self, key: str) -> bool:
        return await self.delete_raw([self.prefix + key]) > 0

    async def exists(self, key: str) -> bool:
        return await self.exists_raw(self.prefix + key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        wanted = list(keys)
        found = await self.get_many_raw([self.prefix + k for k in wanted])
        decode = self.codec.decode
        return {k: decode(d) for k, d in zip(wanted, found, strict=True) if d is not None}

    async def set_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> None:
        seconds = expiry_seconds(ttl, self.config.default_ttl)
        encode, prefix = self.codec.encode, self.prefix
        await self.set_many_raw([(prefix + k, encode(v)) for k, v in mapping.items()], seconds)

    async def delete_pattern(self, pattern: str) -> int:
        """Delete every key of this namespace matching the glob ``pattern``."""
        return await self.delete_pattern_raw(self.prefix, pattern)

    async def clear(self) -> int:
        """Delete every key of this namespace (never anything else)."""
        return await self.delete_pattern_raw(self.prefix, "*")
