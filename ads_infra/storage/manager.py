"""FileStorageManager: the seed's file API over any storage backend.

It decides what a file becomes before a backend sees a byte: the caller's name
is cleaned and kept only as metadata (the stored name is random), the
extension must be allowed and match the content, the size limit holds while a
stream arrives, and the content is hashed, gzip-compressed when that can help,
and encrypted when configured. Reads reverse that and verify the size and a checksum
(xxh3-128, or the sha256 of files written before it was recorded: codec.py says why).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote, unquote

import xxhash

from ads_infra.core.errors import (
    ConfigurationError,
    FileTooLargeError,
    IntegrityCheckError,
    InvalidFileNameError,
)
from ads_infra.core.health import HealthStatus
from ads_infra.core.loader import environment_settings
from ads_infra.core.settings import StorageConfig
from ads_infra.storage.backends import strategy_for
from ads_infra.storage.base import (
    INLINE_BYTES,
    MAX_METADATA_BYTES,
    OFFLOAD_BYTES,
    ObjectInfo,
    StorageStrategy,
    metadata_size,
    validate_chunk_size,
    validate_expires_in,
    validate_key,
    validate_metadata,
)
from ads_infra.storage.codec import (
    ENCRYPTED_MAGIC,
    ENCRYPTION_SCHEME,
    Decoder,
    Encoder,
    EncryptionKey,
)
from ads_infra.storage.validation import (
    COMPRESSED_EXTENSIONS,
    ContentChecker,
    clean_filename,
    content_type_for,
)

__all__ = ["FileList", "FileStorageManager"]

ENCRYPTION_KEY_ENV = "ADS_STORAGE_ENCRYPTION_KEY"
GZIP_MAGIC = b"\x1f\x8b"
# A stream no longer than this is read whole before it is stored, so that
# compression is kept only when it shrinks the file.
_SMALL_BYTES = 64 * 1024


def _extension(key: str) -> str:
    return os.path.splitext(key)[1].lower()


def _check_chunk(chunk: object) -> bytes:
    if not isinstance(chunk, bytes | bytearray | memoryview):
        raise TypeError(f"a file stream must yield bytes, got {type(chunk).__name__}")
    return bytes(chunk)


async def _peek(
    source: AsyncIterable[bytes], limit: int
) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """The stream's first bytes (at least ``limit`` of them unless it ends), and the
    rest of it, or None when it ended within them."""
    stream = aiter(source)
    head = bytearray()
    async for chunk in stream:
        head += _check_chunk(chunk)
        if len(head) >= limit:
            return bytes(head), stream
    return bytes(head), None


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in rest:
        yield chunk


def _encoded_stream(source: AsyncIterable[bytes], encoder: Encoder) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        async for chunk in source:
            out = encoder.feed(_check_chunk(chunk))
            if out:
                yield out
        tail = encoder.finish()
        if tail:
            yield tail

    return stream()


class FileList(list[dict[str, Any]]):
    """A page of :meth:`FileStorageManager.list_files`: a list, plus ``next_cursor``."""

    def __init__(self, files: Iterable[dict[str, Any]] = (), *, next_cursor: str | None) -> None:
        super().__init__(files)
        self.next_cursor = next_cursor


class FileStorageManager:
    """Save, read, describe, list and delete files on the configured backend.

    ``FileStorageManager()`` works on defaults (a local ``storage`` folder).
    ``strategy`` replaces the backend built from ``config`` (the container
    passes its Selector's choice).
    """

    def __init__(
        self, config: StorageConfig | None = None, strategy: StorageStrategy | None = None
    ) -> None:
        self.config = config or environment_settings().storage
        self.strategy = strategy or strategy_for(self.config)
        # Unset: gzip on local storage, not on S3, whose objects are read by other
        # tools (presigned URLs, boto3, the aws CLI) that should get the original bytes.
        enabled = self.config.compression_enabled
        self._compress = self.strategy.backend == "local" if enabled is None else enabled
        secret = self.config.encryption_key or os.environ.get(ENCRYPTION_KEY_ENV) or None
        self._key = EncryptionKey(secret) if secret else None
        if self.config.encryption_enabled and self._key is None:
            raise ConfigurationError(
                f"encryption is enabled but no key is set; set {ENCRYPTION_KEY_ENV} "
                "(64 hex characters) or storage.encryption_key",
                key="storage.encryption_key",
            )

    def __repr__(self) -> str:
        return f"FileStorageManager(backend={self.strategy.backend!r}, target={self.target!r})"

    @property
    def target(self) -> str:
        return self.strategy.target

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Prepare and check the backend (create the folder, reach the bucket)."""
        await self.strategy.start()

    async def close(self) -> None:
        await self.strategy.close()

    async def __aenter__(self) -> FileStorageManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def health_check(self) -> HealthStatus:
        return await self.strategy.health_check()

    # --- writes ---------------------------------------------------------------------

    async def save_file(
        self,
        content: bytes | AsyncIterable[bytes],
        filename: str,
        *,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Validate and store ``content``; return the stored name to read it back with.

        ``content`` is bytes or an async stream of bytes. ``filename`` is the
        caller's name: only its extension matters for validation, and a
        cleaned copy is kept as ``original_name``. Raises FileTooLargeError,
        FileTypeNotAllowedError or InvalidFileNameError before anything is kept.
        """
        display, extension = clean_filename(filename, self.config.allowed_extensions)
        # 128 random bits as 32 hex digits (uuid4().hex has 122, for more CPU time).
        stored = f"{os.urandom(16).hex()}{extension}"
        encrypt = self.config.encryption_enabled
        key = self._key if encrypt else None

        def make_encoder(compress: bool) -> Encoder:
            checker = ContentChecker(extension, display)
            return Encoder(
                name=display,
                max_size=self.config.max_file_size,
                check=lambda chunk, final: checker.feed(chunk, final=final),
                compress=compress,
                key=key,
            )

        compress = self._compress and extension not in COMPRESSED_EXTENSIONS
        created = dt.datetime.now(dt.UTC).isoformat()

        def own(size: int, sha256: str, xxh3: str, compressed: bool) -> dict[str, str]:
            meta = {
                "ads-name": quote(display, safe=" ()[]-_.,+=@"),
                "ads-size": str(size),
                "ads-sha256": sha256,
                "ads-xxh3": xxh3,
                "ads-encoding": "gzip" if compressed else "identity",
                "ads-created": created,
            }
            if key is not None:
                meta["ads-encryption"] = ENCRYPTION_SCHEME
                meta["ads-key-id"] = key.key_id
            return meta

        # S3's 2 KiB limit covers the ads-* entries too. The caller gets the room they
        # leave at their largest (a size at the limit, a full sha256), so that a bad
        # request fails here and not after the whole content was read.
        extra: dict[str, str] = {}
        if metadata:
            largest_own = own(self.config.max_file_size, "0" * 64, "0" * 32, True)
            room = MAX_METADATA_BYTES - metadata_size(largest_own)
            extra = validate_metadata(metadata, room=room)
            if any(k.startswith("ads-") for k in extra):
                raise InvalidFileNameError("metadata keys starting with 'ads-' are reserved")

        def describe(encoder: Encoder) -> dict[str, str]:
            return {
                **own(encoder.size, encoder.sha256, encoder.xxh3, encoder.compressing),
                **extra,
            }

        content_type = content_type_for(extension)
        if not isinstance(content, bytes | bytearray | memoryview):
            # A stream that ends within its first chunks is stored as bytes, so that
            # compression can be judged on the whole of it (see below).
            head, rest = await _peek(content, _SMALL_BYTES)
            if rest is not None:
                streamed = make_encoder(compress)
                await self.strategy.put(
                    stored,
                    _encoded_stream(_chain(head, rest), streamed),
                    content_type=content_type,
                    metadata=lambda: describe(streamed),
                )
                return stored
            content = head
        content = bytes(content)
        if len(content) > self.config.max_file_size:
            raise FileTooLargeError(
                f"{display!r} is {len(content)} bytes, over the limit of "
                f"{self.config.max_file_size} (storage.max_file_size); nothing was stored"
            )
        if not (compress or key is not None):
            # Stored as is: checked here, and hashed when the backend asks for the
            # metadata (local storage: in its worker thread, off the event loop).
            ContentChecker(extension, display).feed(content, final=True)

            def describe_plain() -> dict[str, str]:
                sha256 = hashlib.sha256(content).hexdigest()
                xxh3 = xxhash.xxh3_128_hexdigest(content)
                return {**own(len(content), sha256, xxh3, False), **extra}

            await self.strategy.put(
                stored, content, content_type=content_type, metadata=describe_plain
            )
            return stored
        encoder = make_encoder(compress)
        payload = await self._encode(encoder, content)
        if encoder.compressing and not encoder.shrank:
            # gzip adds ~20 bytes of framing: a tiny or incompressible file would be
            # stored larger than it is. Store it as is instead.
            encoder = make_encoder(False)
            payload = await self._encode(encoder, content)
        await self.strategy.put(
            stored, payload, content_type=content_type, metadata=describe(encoder)
        )
        return stored

    @staticmethod
    async def _encode(encoder: Encoder, content: bytes) -> bytes:
        def encode() -> bytes:
            head = encoder.feed(content)
            tail = encoder.finish()
            return head + tail if tail else head

        if len(content) >= OFFLOAD_BYTES and (encoder.compressing or encoder.encrypting):
            return await asyncio.to_thread(encode)
        return encode()

    # --- reads ----------------------------------------------------------------------

    def _decoder(self, name: str, info: ObjectInfo) -> Decoder:
        meta = info.metadata
        return Decoder(
            name=name,
            compressed=meta.get("ads-encoding") == "gzip",
            encrypted=bool(meta.get("ads-encryption")),
            key=self._key,
            key_id=meta.get("ads-key-id"),
            expected_size=_recorded_size(meta),
            expected_sha256=meta.get("ads-sha256"),
            expected_xxh3=meta.get("ads-xxh3"),
            max_size=self.config.max_file_size,
        )

    @staticmethod
    def _check_not_orphaned(name: str, info: ObjectInfo, head: bytes) -> None:
        """An object of ours that lost its metadata (copied without xattrs) must not be
        handed out as if it were plain: its bytes may be ciphertext or gzip.

        ``head`` is at least the object's first ``len(ENCRYPTED_MAGIC)`` bytes (or all
        of a shorter object).
        """
        if "ads-sha256" in info.metadata:
            return
        if head.startswith(ENCRYPTED_MAGIC):
            what = "encrypted"
        # Only for types the manager compresses: a .gz (or any type stored as is) may
        # start like this by nature, while those are text, and UTF-8 never does.
        elif head.startswith(GZIP_MAGIC) and _extension(name) not in COMPRESSED_EXTENSIONS:
            what = "gzip-compressed"
        else:
            return
        raise IntegrityCheckError(
            f"{name!r} looks {what} by ads-infra but its metadata is missing (was it "
            "copied without extended attributes?); restore it with its metadata (rsync -X, "
            "cp --preserve=xattr, tar --xattrs) or keep metadata in files with "
            "storage.local_metadata: sidecar"
        )

    async def get_file(self, filename: str) -> bytes:
        """The file's content, verified against its size and checksum (IntegrityCheckError)."""
        key = validate_key(filename)
        return await self.strategy.get_decoded(key, _Decode(self, key))

    def _decode(self, key: str, info: ObjectInfo, stored: bytes) -> bytes:
        """The plaintext of a whole stored object, verified; may run in a worker thread."""
        self._check_not_orphaned(key, info, stored)
        return self._decoder(key, info).decode_all(stored)

    async def open_file(
        self, filename: str, *, chunk_size: int = 1024 * 1024
    ) -> AsyncIterator[bytes]:
        """Stream the file's content. Encrypted files are authenticated chunk by chunk;
        the size and sha256 are checked at the end, where a mismatch raises
        IntegrityCheckError instead of a clean end of stream."""
        key = validate_key(filename)
        validate_chunk_size(chunk_size)
        info = await self.strategy.stat(key)
        decoder = self._decoder(key, info)
        source = await self.strategy.open(key, chunk_size=chunk_size)

        async def stream() -> AsyncIterator[bytes]:
            # A failed check or an abandoned stream must not keep the backend's file
            # or response open until garbage collection.
            try:
                head = b""
                checked = False
                async for chunk in source:
                    if not checked:
                        head += chunk
                        if len(head) < len(ENCRYPTED_MAGIC):
                            continue  # small chunks: judge the object on its first bytes
                        self._check_not_orphaned(key, info, head)
                        checked, chunk = True, head
                    out = decoder.feed(chunk)
                    if out:
                        yield out
                if not checked:
                    self._check_not_orphaned(key, info, head)
                    out = decoder.feed(head)
                    if out:
                        yield out
                tail = decoder.finish()
                if tail:
                    yield tail
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()

        return stream()

    async def get_file_info(self, filename: str) -> dict[str, Any]:
        """What is known about a stored file, without reading its content."""
        key = validate_key(filename)
        return self._describe(await self.strategy.stat(key))

    @staticmethod
    def _describe(info: ObjectInfo) -> dict[str, Any]:
        meta = info.metadata
        size = _recorded_size(meta)
        return {
            "filename": info.key,
            "original_name": unquote(meta["ads-name"]) if "ads-name" in meta else info.key,
            "size": info.size if size is None else size,
            "stored_size": info.size,
            "content_type": info.content_type,
            "extension": _extension(info.key),
            "sha256": meta.get("ads-sha256"),
            "compressed": meta.get("ads-encoding") == "gzip",
            "encrypted": bool(meta.get("ads-encryption")),
            "created_at": meta.get("ads-created") or info.last_modified.isoformat(),
            "modified_at": info.last_modified.isoformat(),
            "metadata": {k: v for k, v in meta.items() if not k.startswith("ads-")},
        }

    async def file_exists(self, filename: str) -> bool:
        return await self.strategy.exists(validate_key(filename))

    async def delete_file(self, filename: str) -> bool:
        """Delete a stored file; False when there was none."""
        return await self.strategy.delete(validate_key(filename))

    async def list_files(
        self, prefix: str = "", *, limit: int = 100, start_after: str | None = None
    ) -> FileList:
        """Stored files whose name starts with ``prefix``, at most ``limit``: a list of
        ``filename``, ``stored_size``, ``modified_at``.

        The list's ``next_cursor`` is None on the last page; else pass it as
        ``start_after`` for the next page, which resumes where this one ended.
        S3 lists in name order; local storage in its own stable order (shard
        folder by shard folder), so that a page reads one or two of its 256
        folders instead of the whole store.
        """
        page = await self.strategy.list(prefix, limit=limit, start_after=start_after)
        return FileList(
            (
                {
                    "filename": item.key,
                    "stored_size": item.size,
                    "modified_at": item.last_modified.isoformat(),
                }
                for item in page.items
            ),
            next_cursor=page.next_token,
        )

    async def get_file_url(self, filename: str, *, expires_in: int | None = None) -> str | None:
        """A presigned GET URL of the stored bytes (S3); None on local storage.

        The URL serves what is stored: compressed or encrypted files come out so.
        """
        key = validate_key(filename)
        seconds = validate_expires_in(
            self.config.presign_expiry if expires_in is None else expires_in
        )
        return await self.strategy.presigned_url(key, expires_in=seconds)

    async def get_storage_stats(self) -> dict[str, Any]:
        """``total_files`` and ``total_size`` (stored bytes), and how storage is set up."""
        total_files = total_size = 0
        async for item in self.strategy.iter_all():
            total_files += 1
            total_size += item.size
        return {
            "backend": self.strategy.backend,
            "target": self.target,
            "total_files": total_files,
            "total_size": total_size,
            "max_file_size": self.config.max_file_size,
            "compression_enabled": self._compress,
            "encryption_enabled": self.config.encryption_enabled,
        }

    async def cleanup_temp_files(self, older_than: float | dt.timedelta | None = None) -> int:
        """Remove leftovers of interrupted writes older than ``older_than`` (seconds or a
        timedelta; default ``storage.temp_max_age``). Returns how many were removed."""
        if older_than is None:
            seconds = float(self.config.temp_max_age)
        elif isinstance(older_than, dt.timedelta):
            seconds = older_than.total_seconds()
        else:
            seconds = float(older_than)
        return await self.strategy.cleanup_temp(max(seconds, 0.0))


def _recorded_size(meta: dict[str, str]) -> int | None:
    """The plaintext size the metadata records, if it records a sane one."""
    size = meta.get("ads-size", "")
    return int(size) if size.isdigit() and len(size) < 20 else None


class _Decode:
    """The check and decode of one stored file, handed to ``StorageStrategy.get_decoded``."""

    __slots__ = ("_key", "_manager")

    def __init__(self, manager: FileStorageManager, key: str) -> None:
        self._manager = manager
        self._key = key

    def __call__(self, info: ObjectInfo, stored: bytes) -> bytes:
        return self._manager._decode(self._key, info, stored)

    @staticmethod
    def light(info: ObjectInfo, stored: bytes) -> bool:
        """Cheap enough for the event loop: stored as is and checked with xxh3-128 (or
        not at all) up to ``INLINE_BYTES``; else small, and decoding to small (a gzip
        of a few KiB may expand to the size limit; a file written before xxh3 was
        recorded is checked with sha256)."""
        meta = info.metadata
        as_is = meta.get("ads-encoding") != "gzip" and not meta.get("ads-encryption")
        if as_is and (meta.get("ads-xxh3") or "ads-sha256" not in meta):
            return len(stored) <= INLINE_BYTES
        if len(stored) >= OFFLOAD_BYTES:
            return False
        if as_is:
            return True
        size = _recorded_size(meta)
        return size is not None and size < OFFLOAD_BYTES
