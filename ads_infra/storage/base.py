"""The storage backend interface and what every backend shares: object info, keys, pages.

A strategy stores opaque bytes under a key. It knows nothing of file types,
checksums, compression or encryption: :class:`FileStorageManager` does those
and hands the strategy the bytes to keep and a flat ``str -> str`` metadata
map (S3 user-metadata rules: lowercase ASCII keys, ASCII values).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TypeAlias, TypeVar

from ads_infra.core.errors import InvalidFileNameError
from ads_infra.core.health import HealthStatus
from ads_infra.core.settings import MAX_PRESIGN_SECONDS

__all__ = [
    "INLINE_BYTES",
    "MAX_METADATA_BYTES",
    "OFFLOAD_BYTES",
    "RESERVED_METADATA_KEYS",
    "ListPage",
    "Metadata",
    "ObjectInfo",
    "Payload",
    "StorageStrategy",
    "complete_or_undo",
    "decodes_on_loop",
    "metadata_size",
    "resolve_metadata",
    "validate_chunk_size",
    "validate_expires_in",
    "validate_key",
    "validate_metadata",
]

# What a strategy accepts to store: the whole content, or an async stream of chunks.
Payload: TypeAlias = bytes | AsyncIterable[bytes]
# Metadata, or a function that returns it once the payload has been consumed: a
# streamed file's checksum is known only at its end.
Metadata: TypeAlias = dict[str, str] | Callable[[], dict[str, str]] | None

T = TypeVar("T")

MAX_KEY_BYTES = 512
# From this size, work on a whole object's bytes at the speed of a cryptographic
# hash, a decompressor or a cipher (sha256, zlib, AES-GCM) runs in a worker thread
# instead of holding up the event loop (hashlib, zlib and AES-GCM release the GIL).
OFFLOAD_BYTES = 256 * 1024
# Up to this size, work at memory speed stays on the event loop: checking the
# size and xxh3-128 of an object stored as is, and reading a local one whose
# pages the kernel has in memory (local_nowait.py). For such work a thread hop
# takes longer than the work itself, at one caller and at many. It is the default
# chunk of a streamed read (``open_file``), whose chunks pass through the loop too.
INLINE_BYTES = 1024 * 1024
# S3 allows 2 KiB of user metadata per object; keeping every backend inside that
# limit means an object can move between backends without losing any.
MAX_METADATA_BYTES = 2048
_DRIVE = re.compile(r"^[A-Za-z]:")
_METADATA_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Names S3 keeps as object attributes (sent as HTTP headers), not user metadata.
# obstore sends an attribute named like one as that header whatever its case, so
# "content-type" would make a presigned URL serve a .txt as text/html, and
# reads return it as an attribute, not as the caller's metadata.
RESERVED_METADATA_KEYS = frozenset(
    {
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-type",
        "expires",
        "storage-class",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object (sizes are stored bytes)."""

    key: str
    size: int
    last_modified: dt.datetime
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    etag: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing; pass ``next_token`` as ``start_after`` for the next one.

    ``next_token`` is the page's last key when more follow, None on the last page.
    """

    items: list[ObjectInfo]
    next_token: str | None = None


# Passes every check below: no separator, control character or drive; short enough.
_PLAIN_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_KEY_BYTES}}}").fullmatch


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe relative object key, else raise InvalidFileNameError.

    Keys are ``/``-separated like S3 keys. Refused: empty, NUL and control
    characters, backslashes, absolute paths, drive letters, ``.``/``..`` and
    empty segments, more than 512 UTF-8 bytes. Each backend may refuse more
    (the local one: keys whose encoded file name is too long).
    """
    if type(key) is str and _PLAIN_NAME(key) and key not in (".", ".."):
        return key  # one segment of letters, digits, '.', '_', '-' (what save_file returns)
    if not isinstance(key, str):
        raise InvalidFileNameError(f"a file name must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidFileNameError("the file name is empty; pass the name save_file returned")
    # Printable ASCII holds no control, format or surrogate character: the common
    # case skips the check of each character's Unicode category.
    if not (key.isascii() and key.isprintable()) and any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in key
    ):
        raise InvalidFileNameError(
            f"file name {ascii(key)[:80]} contains control characters; use printable "
            "characters only"
        )
    if "\\" in key or key.startswith("/") or _DRIVE.match(key):
        raise InvalidFileNameError(
            f"file name {ascii(key)[:80]} is an absolute or Windows path; use a relative name "
            "like 'a/b.png'"
        )
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidFileNameError(
            f"file name {ascii(key)[:80]} has an empty, '.' or '..' segment; such names could "
            "leave the storage root"
        )
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidFileNameError(
            f"file name {ascii(key)[:80]} is longer than {MAX_KEY_BYTES} bytes"
        )
    return key


async def complete_or_undo(
    work: Awaitable[T],
    undo: Callable[[T], Awaitable[object]] | None = None,
    *,
    stop: Callable[[], object] | None = None,
) -> T:
    """Await ``work`` to its end even if the caller is cancelled meanwhile.

    A write that publishes from a worker thread (which cancellation cannot stop)
    or from obstore (whose upload goes on after its awaitable is cancelled) would
    otherwise publish after its caller was told it failed. On cancellation,
    ``stop()`` is called once (to make ``work`` give up early, e.g. fail its body
    stream), ``work`` is awaited to its end, ``undo(result)`` removes what it
    published if it succeeded, and the CancelledError is re-raised.
    """
    future = asyncio.ensure_future(work)
    cancel: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError as exc:
            if cancel is None and stop is not None:
                stop()
            cancel = exc
    if cancel is None:
        return future.result()
    succeeded = not future.cancelled() and future.exception() is None
    if succeeded and undo is not None:
        # The caller is owed its CancelledError, not the undo's error: if the undo
        # fails, the object stays, as it would have without this function.
        with contextlib.suppress(Exception):
            await complete_or_undo(undo(future.result()))
    raise cancel


def resolve_metadata(metadata: Metadata) -> dict[str, str]:
    """The metadata a strategy stores: call it if it is late-bound (after the payload)."""
    if metadata is None:
        return {}
    return metadata() if callable(metadata) else dict(metadata)


def validate_chunk_size(chunk_size: object) -> int:
    """``chunk_size`` if it is a whole number of bytes >= 1, else ValueError."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"chunk_size must be a whole number of bytes >= 1, got {chunk_size!r}; "
            "omit it for 1 MiB chunks"
        )
    return chunk_size


def validate_expires_in(expires_in: object) -> int:
    """``expires_in`` if it is a presigned URL lifetime S3 accepts, else ValueError."""
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 1 <= expires_in <= MAX_PRESIGN_SECONDS
    ):
        raise ValueError(
            f"expires_in must be whole seconds from 1 to {MAX_PRESIGN_SECONDS} (7 days, "
            f"S3's limit for presigned URLs), got {expires_in!r}"
        )
    return expires_in


def metadata_size(metadata: dict[str, str]) -> int:
    """Bytes of user metadata as S3 counts them: UTF-8 keys plus values."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())


def validate_metadata(
    metadata: dict[str, str] | None, *, room: int = MAX_METADATA_BYTES
) -> dict[str, str]:
    """Check user metadata against the rules every backend can keep (S3's).

    ``room`` is how many of S3's 2 KiB are left for it (the manager keeps its
    own ``ads-*`` entries beside the caller's).
    """
    if not metadata:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidFileNameError(
            f"metadata must be a dict of str to str, got {type(metadata).__name__}"
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise InvalidFileNameError(
                f"metadata key {ascii(key)[:40]} is not allowed; use lowercase letters, "
                "digits and '-' (at most 64)"
            )
        if key in RESERVED_METADATA_KEYS:
            raise InvalidFileNameError(
                f"metadata key {key!r} is reserved: S3 treats it as an HTTP header, not "
                f"metadata; reserved: {', '.join(sorted(RESERVED_METADATA_KEYS))}. "
                f"Choose another name (e.g. 'x-{key}')"
            )
        if not isinstance(value, str) or not value.isascii() or not value.isprintable():
            raise InvalidFileNameError(
                f"metadata value for {key!r} must be printable ASCII; percent-encode other text"
            )
    total = metadata_size(metadata)
    if total > room:
        own = (
            f" ({MAX_METADATA_BYTES - room} of S3's {MAX_METADATA_BYTES} are taken by the "
            "file's own ads-* metadata)"
            if room < MAX_METADATA_BYTES
            else ""
        )
        raise InvalidFileNameError(
            f"metadata is {total} bytes (keys plus values); at most {room} fit{own}; "
            "shorten or drop some entries"
        )
    return dict(metadata)


def decodes_on_loop(
    decode: Callable[[ObjectInfo, bytes], object], info: ObjectInfo, data: bytes
) -> bool:
    """Whether ``decode(info, data)`` is cheap enough to run on the event loop.

    ``decode.light(info, data)`` where the decoder has it (the manager's: a file
    of up to ``INLINE_BYTES`` stored as is and checked with xxh3-128, else a small
    file, stored as is or decoding to a small one; a small gzip may expand to
    the size limit), else whether the stored bytes are under ``OFFLOAD_BYTES``.
    """
    light = getattr(decode, "light", None)
    if light is not None:
        return bool(light(info, data))
    return len(data) < OFFLOAD_BYTES


class StorageStrategy(abc.ABC):
    """A storage backend. Constructors do no I/O; ``start()`` checks the backend.

    Every write is atomic (a reader sees the whole object or nothing) and, unless
    ``overwrite=True``, create-only: an existing object is never replaced
    silently (:class:`~ads_infra.errors.ObjectExistsError`). A stream that raises
    midway, or a create cancelled at any point, leaves nothing behind under the key.
    """

    backend: str = ""

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """Where it stores, safe to print (a path, a bucket and endpoint)."""

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Prepare and check the backend (create the folder, reach the bucket)."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release what ``start`` or first use opened."""

    @abc.abstractmethod
    async def put(
        self,
        key: str,
        data: Payload,
        *,
        content_type: str = "application/octet-stream",
        metadata: Metadata = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically; create-only unless ``overwrite``.

        A callable ``metadata`` is called once, only after ``data`` is fully
        consumed, and possibly in a worker thread (local storage calls it there,
        after writing the data): it must not use the event loop.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> bytes:
        """The whole stored object. StoredFileNotFoundError when absent."""

    async def get_with_info(self, key: str) -> tuple[ObjectInfo, bytes]:
        """Info and content together (backends override it to save a round trip)."""
        return await self.stat(key), await self.get(key)

    async def get_decoded(self, key: str, decode: Callable[[ObjectInfo, bytes], T]) -> T:
        """``decode(info, content)`` of the stored object: how the manager reads a file.

        ``decode`` is pure CPU work on the bytes (checks, decompression,
        decryption) and may run in a worker thread: it must not use the event
        loop. Here it runs in one unless :func:`decodes_on_loop`; local storage
        runs it in the thread that read the bytes.
        """
        info, data = await self.get_with_info(key)
        if decodes_on_loop(decode, info, data):
            return decode(info, data)
        return await asyncio.to_thread(decode, info, data)

    @abc.abstractmethod
    async def open(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """A stream of the stored bytes; raises StoredFileNotFoundError before returning."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Size, time, content type and metadata. StoredFileNotFoundError when absent."""

    @abc.abstractmethod
    async def list(
        self, prefix: str = "", *, limit: int = 1000, start_after: str | None = None
    ) -> ListPage:
        """Objects whose key starts with ``prefix``, at most ``limit``, resuming after
        the key ``start_after`` (the previous page's ``next_token``).

        The order is the backend's own and stable: S3's is key order; local
        storage's is shard folder by shard folder, keys in order within each.
        Items carry key, size and time; content type and metadata need :meth:`stat`.
        """

    async def presigned_url(self, key: str, *, expires_in: int = 3600) -> str | None:
        """A time-limited GET URL where the backend has them; None otherwise."""
        return None

    @abc.abstractmethod
    async def cleanup_temp(self, older_than: float) -> int:
        """Remove leftovers of interrupted writes older than ``older_than`` seconds."""

    @abc.abstractmethod
    async def health_check(self) -> HealthStatus:
        """Reachability of the backend; never raises."""

    async def iter_all(
        self, prefix: str = "", *, page_size: int = 1000
    ) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``, page by page."""
        token: str | None = None
        while True:
            page = await self.list(prefix, limit=page_size, start_after=token)
            for item in page.items:
                yield item
            if page.next_token is None:
                return
            token = page.next_token
