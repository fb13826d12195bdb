"""Cache payloads: serialization and compression, marked so that a reader knows.

Plain JSON is stored as-is (``redis-cli GET`` shows it, any client can read
it). Every other format starts with one marker byte below 0x09, a byte JSON
can never start with, so reads never guess:

=====  ==========================
0x01   zlib-compressed JSON
0x02   msgpack
0x03   zlib-compressed msgpack
0x04   pickle
0x05   zlib-compressed pickle
=====  ==========================

Pickle runs code on load, so it is read only when ``serializer="pickle"`` was
chosen explicitly; a pickled payload found by any other reader is refused.
"""

from __future__ import annotations

import math
import pickle
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from ads_infra.core.errors import CacheSerializationError, ConfigurationError

__all__ = ["Codec"]

_JSON_Z = 0x01
_MSGPACK = 0x02
_MSGPACK_Z = 0x03
_PICKLE = 0x04
_PICKLE_Z = 0x05
_LAST_MARKER = 0x08  # JSON starts with whitespace (>= 0x09) or a printable byte

# zlib level 1: cache payloads are small and hot; the first level already
# takes most of the gain on JSON at a fraction of the CPU of the default 6.
_ZLIB_LEVEL = 1


def _load_msgpack() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    try:
        import msgpack
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "serializer 'msgpack' needs the msgpack package; install ads-infra[msgpack]",
            key="cache.serializer",
        ) from None

    def dumps(value: Any) -> bytes:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]

    def loads(data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False)

    return dumps, loads


DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024


def refuse_non_finite(value: Any) -> None:
    """CacheSerializationError when ``value`` holds a NaN or an infinity anywhere.

    JSON has no such numbers: orjson writes them as ``null``, so a NaN set in
    the cache would read back as None (a miss). Walked only when the output
    holds a ``null``, so the common value costs nothing.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise CacheSerializationError(
                f"cannot cache {item!r}: JSON has no NaN or infinity, and it would read "
                "back as None; store None, a string, or use the msgpack serializer"
            )
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


class Codec:
    """Turns values into marked bytes and back.

    ``compression_threshold=None`` never compresses (the memory backend: the
    bytes never leave the process). Payloads above the threshold are
    compressed only when that makes them smaller.
    """

    __slots__ = (
        "_dumps",
        "_loads_other",
        "allow_pickle",
        "compression_threshold",
        "max_value_bytes",
        "serializer",
    )

    def __init__(
        self,
        serializer: str = "json",
        *,
        compression_threshold: int | None = 1024,
        allow_pickle: bool | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    ) -> None:
        self.serializer = serializer
        self.max_value_bytes = max_value_bytes
        self.compression_threshold = compression_threshold
        self.allow_pickle = serializer == "pickle" if allow_pickle is None else allow_pickle
        if serializer == "json":
            self._dumps: Callable[[Any], bytes] = orjson.dumps
        elif serializer == "msgpack":
            self._dumps = _load_msgpack()[0]
        elif serializer == "pickle":
            self._dumps = pickle.dumps
        else:
            raise ConfigurationError(
                f"unknown serializer {serializer!r}; use json, msgpack or pickle",
                key="cache.serializer",
            )
        self._loads_other: Callable[[bytes], Any] | None = None

    @property
    def plain_json(self) -> bool:
        """True when every payload this codec writes is bare orjson output."""
        return self.serializer == "json" and self.compression_threshold is None

    def encode(self, value: Any) -> bytes:
        """Serialize ``value``; raise CacheSerializationError when it cannot be."""
        try:
            data = self._dumps(value)
        except Exception as exc:  # msgpack: OverflowError; pickle: AttributeError, ...
            raise CacheSerializationError(
                f"cannot serialize a {type(value).__name__} with the {self.serializer} "
                f"serializer ({exc}); cache JSON-compatible values (dict, list, str, "
                "numbers, bool, None) or choose another cache.serializer"
            ) from None
        if self.serializer == "json" and data.rfind(b"null") >= 0:  # see MemoryCacheStrategy
            refuse_non_finite(value)  # orjson writes NaN and infinities as null
        threshold = self.compression_threshold
        if threshold is not None and len(data) > threshold:
            packed = zlib.compress(data, _ZLIB_LEVEL)
            if len(packed) < len(data):
                marker = {"json": _JSON_Z, "msgpack": _MSGPACK_Z, "pickle": _PICKLE_Z}
                return bytes((marker[self.serializer],)) + packed
        if self.serializer == "json":
            return data
        return bytes((_MSGPACK if self.serializer == "msgpack" else _PICKLE,)) + data

    def decode(self, data: bytes) -> Any:
        """Read a payload written by any Codec (pickle only when allowed)."""
        if data and data[0] > _LAST_MARKER:
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise CacheSerializationError(
                    f"a cached payload is not valid JSON ({exc}); delete the key or "
                    "check which writer stored it"
                ) from None
        return self._decode_marked(data)

    def _inflate(self, body: memoryview) -> bytes:
        # A payload in Redis may be planted: 1 MB of zlib can hold 1 GB of spaces.
        # Inflate no more than a value may be, in one bounded step.
        inflater = zlib.decompressobj()
        out = inflater.decompress(body, self.max_value_bytes + 1)
        if len(out) > self.max_value_bytes or inflater.unconsumed_tail:
            raise CacheSerializationError(
                f"a cached payload expands beyond {self.max_value_bytes:,} bytes "
                "(cache.max_value_bytes); it was not read: delete the key"
            )
        return out

    def _decode_marked(self, data: bytes) -> Any:
        if not data:
            raise CacheSerializationError("a cached payload is empty; delete the key")
        marker, body = data[0], memoryview(data)[1:]
        try:
            if marker in (_JSON_Z, _MSGPACK_Z, _PICKLE_Z):
                body = memoryview(self._inflate(body))
            if marker == _JSON_Z:
                return orjson.loads(body)
            if marker in (_MSGPACK, _MSGPACK_Z):
                if self._loads_other is None:
                    self._loads_other = _load_msgpack()[1]
                return self._loads_other(bytes(body))
            if marker in (_PICKLE, _PICKLE_Z):
                if not self.allow_pickle:
                    raise CacheSerializationError(
                        "a cached payload is pickled but this cache does not allow pickle "
                        "(it runs code on load); set cache.serializer to pickle only if "
                        "every writer is trusted"
                    )
                return pickle.loads(body)  # noqa: S301  (opt-in, see module docstring)
        except CacheSerializationError:
            raise
        except Exception as exc:
            raise CacheSerializationError(
                f"a cached payload could not be read ({type(exc).__name__}: {exc}); delete the key"
            ) from None
        raise CacheSerializationError(
            f"a cached payload has the unknown format marker 0x{marker:02x}; delete the key"
        )
