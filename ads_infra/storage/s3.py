"""S3 (and any S3-compatible endpoint) storage on obstore.

One class, a little over the usual module size: the create-only probe
(s3_create_only.py) and the error mapping (s3_errors.py) already live beside it.

obstore does everything asked here natively (content type and user metadata
as attributes, If-None-Match conditional PUT, multipart uploads aborted on
error, listing with an offset, presigned GET URLs) except one thing: its
multipart upload takes no put mode (object_store's ``PutMultipartOpts`` has no
``mode``; ``put(mode="create")`` forces a single PUT of the whole body held in
memory). S3 and moto do honour ``If-None-Match: *`` on CompleteMultipartUpload,
but only a raw client could send it, and aiobotocore would pin botocore below
the boto3 the tests use. So a create-only multipart write first *reserves* the
key with a conditional zero-byte PUT marked ``ads-pending`` (the conditional
step that cannot silently overwrite), then uploads over its own reservation.
Readers treat a reservation as absent; a failed or cancelled upload deletes it;
``cleanup_temp`` removes reservations left by a killed process. Parts of an
upload killed mid-way are S3's to expire: give the bucket a lifecycle rule for
incomplete multipart uploads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiofiles
import aiofiles.tempfile
import obstore
from obstore.exceptions import (
    BaseError,
    NotFoundError,
)
from obstore.store import S3Store

from ads_infra.core.errors import (
    InvalidFileNameError,
    StoredFileNotFoundError,
)
from ads_infra.core.health import HealthStatus
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import StorageConfig, StorageType
from ads_infra.storage.base import (
    RESERVED_METADATA_KEYS,
    ListPage,
    Metadata,
    ObjectInfo,
    Payload,
    StorageStrategy,
    complete_or_undo,
    resolve_metadata,
    validate_chunk_size,
    validate_expires_in,
    validate_key,
)
from ads_infra.storage.s3_create_only import CreateOnly
from ads_infra.storage.s3_errors import S3Errors

if TYPE_CHECKING:
    from obstore import Attributes, ObjectMeta, PutResult

__all__ = ["CloudStorageStrategy"]

PENDING = "ads-pending"
# The manager's metadata keys this backend reads (the on-storage format: docs/storage.md).
ENCODING_KEY = "ads-encoding"
ENCRYPTION_KEY = "ads-encryption"
MIN_PART = 5 * 1024 * 1024  # S3's smallest part but the last


class _UploadCancelled(Exception):
    """Raised into obstore's read of an upload body to make it abort the upload."""


async def _until(body: AsyncIterator[bytes], stopped: asyncio.Event) -> AsyncIterator[bytes]:
    async for part in body:
        if stopped.is_set():
            raise _UploadCancelled("the write was cancelled")
        yield part
    if stopped.is_set():  # the last part is read: fail before the upload is completed
        raise _UploadCancelled("the write was cancelled")


# What a browser runs scripts in when it opens the object.
ACTIVE_CONTENT_TYPES = frozenset(
    {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml"}
)


class CloudStorageStrategy(StorageStrategy):
    """Objects in an S3 bucket (``s3_bucket``, optional ``s3_prefix``).

    ``s3_endpoint_url`` points it at any S3-compatible server (MinIO, moto,
    R2); credentials come from ``s3_access_key_id``/``s3_secret_access_key``
    or the usual AWS environment and instance sources.
    """

    backend = "s3"

    def __init__(self, config: StorageConfig | None = None) -> None:
        self.config = config or StorageConfig(storage_type=StorageType.S3)
        self._store: S3Store | None = None
        self.create_only = CreateOnly(self.config.s3_create_only, self.target)
        self._errors = S3Errors(self.config, self.target)
        self.part_size = max(MIN_PART, min(self.config.multipart_threshold, 64 * 1024 * 1024))

    @property
    def target(self) -> str:
        where = mask_url(self.config.s3_endpoint_url) if self.config.s3_endpoint_url else "aws"
        prefix = f"/{self.config.s3_prefix.strip('/')}" if self.config.s3_prefix else ""
        return f"s3://{self.config.s3_bucket}{prefix} ({where})"

    @property
    def store(self) -> S3Store:
        """The obstore client, built on first use (it holds a connection pool)."""
        if self._store is None:
            cfg = self.config
            options: dict[str, Any] = {"region": cfg.s3_region}
            if cfg.s3_endpoint_url:
                options["endpoint"] = cfg.s3_endpoint_url
                # Custom endpoints (MinIO, moto) are addressed by path, not bucket subdomain.
                options["virtual_hosted_style_request"] = False
            if cfg.s3_access_key_id and cfg.s3_secret_access_key:
                options["access_key_id"] = cfg.s3_access_key_id.get_secret_value()
                options["secret_access_key"] = cfg.s3_secret_access_key.get_secret_value()
            client: dict[str, Any] = {}
            if (cfg.s3_endpoint_url or "").startswith("http://"):
                client["allow_http"] = True
            self._store = S3Store(
                cfg.s3_bucket,
                prefix=cfg.s3_prefix.strip("/") or None,
                client_options=client or None,  # type: ignore[arg-type]
                # object_store retries 10 times for up to 3 minutes by default; a caller
                # (a web request) is better served by a clear error within seconds.
                retry_config={
                    "max_retries": 3,
                    "retry_timeout": dt.timedelta(seconds=15),
                    "backoff": {
                        "init_backoff": dt.timedelta(milliseconds=100),
                        "max_backoff": dt.timedelta(seconds=2),
                        "base": 2,
                    },
                },
                **options,
            )
        return self._store

    # --- errors -----------------------------------------------------------------

    @staticmethod
    def _split(attributes: Attributes) -> tuple[str, dict[str, str]]:
        content_type = "application/octet-stream"
        metadata: dict[str, str] = {}
        for name, value in attributes.items():
            lower = name.lower()
            if lower == "content-type":
                content_type = value
            elif lower not in RESERVED_METADATA_KEYS:
                metadata[lower] = value
        return content_type, metadata

    @staticmethod
    def _info(key: str, meta: ObjectMeta, attributes: Attributes | None = None) -> ObjectInfo:
        content_type, metadata = CloudStorageStrategy._split(attributes or {})
        return ObjectInfo(
            key=key,
            size=meta["size"],
            last_modified=meta["last_modified"],
            content_type=content_type,
            metadata=metadata,
            etag=meta.get("e_tag"),
        )

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        try:
            await obstore.list(self.store, chunk_size=1).collect_async()
        except BaseError as exc:
            self._errors.fail(exc, "listing bucket")
        try:
            await self.create_only.check(self.store)
        except BaseError as exc:
            self._errors.fail(exc, "checking create-only writes on")

    async def close(self) -> None:
        self._store = None

    # --- writes ---------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: Payload,
        *,
        content_type: str = "application/octet-stream",
        metadata: Metadata = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        validate_key(key)
        threshold = self.config.multipart_threshold
        size = 0
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                whole = bytes(data)
                size = len(whole)
                attributes = self._attributes(content_type, metadata)
                if size <= threshold:
                    result = await self._put_single(key, whole, attributes, overwrite)
                else:
                    result = await self._put_multipart(
                        key, self._slices(whole), attributes, overwrite
                    )
            else:
                head, rest = await self._head_of(data)
                if rest is None:
                    size = len(head)
                    attributes = self._attributes(content_type, metadata)
                    result = await self._put_single(key, head, attributes, overwrite)
                else:
                    # The metadata (checksum) is complete only at the stream's end, but a
                    # multipart upload sends it first: spool the stream, then upload. An
                    # oversize or failing stream thus never reaches the bucket.
                    async with aiofiles.tempfile.TemporaryFile("w+b") as spool:
                        await spool.write(head)
                        size = len(head)
                        async for chunk in rest:
                            await spool.write(chunk)
                            size += len(chunk)
                        attributes = self._attributes(content_type, metadata)
                        await spool.seek(0)
                        result = await self._put_multipart(
                            key, self._read_parts(spool), attributes, overwrite
                        )
        except BaseError as exc:
            self._errors.fail(exc, "upload of", key)
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=dt.datetime.now(dt.UTC),
            content_type=content_type,
            metadata={k: v for k, v in attributes.items() if k != "Content-Type"},
            etag=result.get("e_tag"),
        )

    @staticmethod
    def _attributes(content_type: str, metadata: Metadata) -> Attributes:
        user = resolve_metadata(metadata)
        for name in user:
            if name.lower() in RESERVED_METADATA_KEYS:
                # obstore would send it as that HTTP header, not as metadata.
                raise InvalidFileNameError(
                    f"metadata key {name!r} is reserved: S3 treats it as an HTTP header; "
                    f"reserved: {', '.join(sorted(RESERVED_METADATA_KEYS))}"
                )
        attributes: Attributes = {"Content-Type": content_type, **user}
        if content_type.split(";")[0].strip().lower() in ACTIVE_CONTENT_TYPES:
            # Script-bearing web content (allowed only by opting in): a presigned URL
            # downloads it instead of running it in the browser on the bucket's origin.
            attributes["Content-Disposition"] = "attachment"
        if user.get(ENCODING_KEY) == "gzip" and ENCRYPTION_KEY not in user:
            # The stored bytes are the file gzipped: said so, a presigned URL opened
            # in a browser or with curl --compressed (any HTTP client honouring
            # Content-Encoding) yields the original file. Encrypted bytes are no
            # gzip stream: they carry no Content-Encoding.
            attributes["Content-Encoding"] = "gzip"
        return attributes

    def _undo_create(self, key: str) -> Callable[[object], Awaitable[object]]:
        """Deletes a create-only write that completed after its caller was cancelled
        (the key was free or reserved by this write, so what is there is its own)."""

        async def delete(_: object) -> None:
            await obstore.delete_async(self.store, key)

        return delete

    async def _put_single(
        self, key: str, data: bytes, attributes: Attributes, overwrite: bool
    ) -> PutResult:
        mode = await self.create_only.mode(self.store, key, overwrite=overwrite)
        return await complete_or_undo(
            obstore.put_async(
                self.store,
                key,
                data,
                attributes=attributes,
                mode=mode,
                use_multipart=False,
            ),
            None if overwrite else self._undo_create(key),
        )

    async def _slices(self, data: bytes) -> AsyncIterator[bytes]:
        view = memoryview(data)
        for i in range(0, len(data), self.part_size):
            yield bytes(view[i : i + self.part_size])

    async def _read_parts(self, spool: Any) -> AsyncIterator[bytes]:
        while chunk := await spool.read(self.part_size):
            yield chunk

    async def _head_of(
        self, data: AsyncIterable[bytes]
    ) -> tuple[bytes, AsyncIterator[bytes] | None]:
        """Up to ``multipart_threshold`` bytes, and the rest of the stream if there is more."""
        stream = aiter(data)
        buffer = bytearray()
        async for chunk in stream:
            buffer += chunk
            if len(buffer) > self.config.multipart_threshold:
                return bytes(buffer), stream
        return bytes(buffer), None

    async def _put_multipart(
        self,
        key: str,
        body: AsyncIterator[bytes],
        attributes: Attributes,
        overwrite: bool,
    ) -> PutResult:
        token = uuid.uuid4().hex
        if not overwrite:
            mode = await self.create_only.mode(self.store, key, overwrite=overwrite)
            await complete_or_undo(
                obstore.put_async(
                    self.store,
                    key,
                    b"",
                    attributes={"Content-Type": "application/x-ads-pending", PENDING: token},
                    mode=mode,
                    use_multipart=False,
                ),
                lambda _: self._drop_reservation(key, token),
            )
        stopped = asyncio.Event()
        try:
            return await complete_or_undo(
                obstore.put_async(
                    self.store,
                    key,
                    _until(body, stopped),
                    attributes=attributes,
                    use_multipart=True,
                    chunk_size=self.part_size,
                    max_concurrency=4,
                ),
                None if overwrite else self._undo_create(key),
                # Cancelled: fail the body so that obstore aborts the upload now
                # instead of sending the rest of the parts.
                stop=stopped.set,
            )
        except BaseException:
            if not overwrite:
                await complete_or_undo(self._drop_reservation(key, token))
            raise

    async def _drop_reservation(self, key: str, token: str | None) -> bool:
        """Delete ``key`` if it is a reservation (``token``'s, when given)."""
        try:
            found = await obstore.get_async(self.store, key, options={"head": True})
            if found.attributes.get(PENDING) is None:
                return False
            if token is not None and found.attributes.get(PENDING) != token:
                return False
            await obstore.delete_async(self.store, key)
            return True
        except (BaseError, FileNotFoundError):
            return False

    # --- reads --------------------------------------------------------------------------

    async def _get(self, key: str, *, head: bool = False) -> Any:
        validate_key(key)
        try:
            result = await obstore.get_async(self.store, key, options={"head": head})
        except (BaseError, FileNotFoundError) as exc:
            self._errors.fail(exc, "download of", key)
        if PENDING in result.attributes:
            raise StoredFileNotFoundError(key)  # a create-only upload still in flight
        return result

    async def get(self, key: str) -> bytes:
        return (await self.get_with_info(key))[1]

    async def get_with_info(self, key: str) -> tuple[ObjectInfo, bytes]:
        result = await self._get(key)
        try:
            data = bytes(await result.bytes_async())
        except BaseError as exc:
            self._errors.fail(exc, "download of", key)
        return self._info(key, result.meta, result.attributes), data

    async def open(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        validate_chunk_size(chunk_size)
        result = await self._get(key)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in result.stream(min_chunk_size=chunk_size):
                    yield bytes(chunk)
            except BaseError as exc:
                self._errors.fail(exc, "download of", key)

        return chunks()

    async def stat(self, key: str) -> ObjectInfo:
        result = await self._get(key, head=True)
        return self._info(key, result.meta, result.attributes)

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except StoredFileNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> bool:
        existed = await self.exists(key)
        try:
            await obstore.delete_async(self.store, key)
        except (BaseError, FileNotFoundError) as exc:
            if not isinstance(exc, NotFoundError | FileNotFoundError):
                self._errors.fail(exc, "delete of", key)
        return existed

    async def list(
        self, prefix: str = "", *, limit: int = 1000, start_after: str | None = None
    ) -> ListPage:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        items: list[ObjectInfo] = []
        more = False
        try:
            stream = obstore.list(
                self.store,
                prefix=prefix.rsplit("/", 1)[0] if "/" in prefix else None,
                offset=start_after,
                chunk_size=min(limit + 1, 1000),
            )
            async for chunk in stream:
                for meta in chunk:
                    key = meta["path"]
                    if not key.startswith(prefix):
                        if key > prefix:  # keys come in order: past the prefix's range
                            more = False
                            break
                        continue
                    if meta["size"] == 0 and await self._is_pending(key):
                        continue
                    if len(items) == limit:
                        more = True
                        break
                    items.append(self._info(key, meta))
                else:
                    continue
                break
        except BaseError as exc:
            self._errors.fail(exc, "listing")
        return ListPage(items=items, next_token=items[-1].key if more else None)

    async def _is_pending(self, key: str) -> bool:
        try:
            found = await obstore.get_async(self.store, key, options={"head": True})
        except (BaseError, FileNotFoundError):
            return True  # gone meanwhile: leave it out
        return PENDING in found.attributes

    async def presigned_url(self, key: str, *, expires_in: int = 3600) -> str | None:
        validate_key(key)
        validate_expires_in(expires_in)
        try:
            return await obstore.sign_async(
                self.store, "GET", key, dt.timedelta(seconds=expires_in)
            )
        except BaseError as exc:
            self._errors.fail(exc, "signing", key)

    async def cleanup_temp(self, older_than: float) -> int:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than)
        removed = 0
        try:
            async for chunk in obstore.list(self.store, chunk_size=1000):
                for meta in chunk:
                    if meta["size"] == 0 and meta["last_modified"] <= cutoff:
                        removed += await self._drop_reservation(meta["path"], None)
        except BaseError as exc:
            self._errors.fail(exc, "listing")
        return removed

    async def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            await obstore.list(self.store, chunk_size=1).collect_async()
        except Exception as exc:
            return HealthStatus(
                "storage", self.backend, False, detail=self._errors.summary(exc), target=self.target
            )
        latency = (time.perf_counter() - started) * 1000
        return HealthStatus("storage", self.backend, True, latency, target=self.target)
