"""Local-disk storage on aiofiles: atomic create-only writes, metadata beside each file, shards.

Layout under ``base_path``::

    ab/<encoded key>          the object (ab = first two hex digits of sha256(key))
    ab/<encoded key>~meta     its metadata, when it cannot live in an xattr (below)
    ab/<encoded key>~...~tmp  a write in progress (or the leftover of a killed one)

The encoded key is the key percent-encoded down to ``[A-Za-z0-9._-]``, so it is
one path segment that cannot be ``..``, hold a separator or collide with the
``~`` suffixes; together with the hashed shard folders, no key can name a path
outside ``base_path``. The 256 hash-named folders (git's object layout) each
hold ~1/256 of the objects: 40,000 entries at ten million files, which hashed
directories (ext4 dir_index, xfs, btrfs) look up in constant time. ``start()``
creates all 256 up front (~35 ms, once), because a write that must also create
its folder pays for the directory in its fsync; a deeper tree (65,536 folders)
cannot be created up front, and with it most writes of a young store created a
folder and measured slower than the raw baseline.

A write goes to a temporary file in the object's own folder, is fsynced, and is
published by a rename that fails if the name exists (Linux
``renameat2(RENAME_NOREPLACE)``, one atomic call; elsewhere ``os.link`` and
the removal of the temporary name): create-only without a check-then-act
race. The metadata (content type, checksum, ...) is kept beside the data as
JSON in the file's extended attribute ``user.ads.meta``: set on the temporary
file before its fsync, it is made durable by the same fsync and published by
the same rename, so data and metadata appear together or not at all, for the
cost of one durable write. Where xattrs are unavailable
(FAT, some network filesystems) or ``local_metadata: sidecar`` asks for it
(backups that drop xattrs: ``cp`` without ``--preserve=xattr``, ``rsync``
without ``-X``), the metadata goes to a ``~meta`` file instead, fsynced and
linked *before* the object, so an object is never visible without it.

Like the benchmark's raw baseline (write, fsync, rename) the folder itself is
not fsynced: after a power loss the newest file may be missing, never partial.
Each whole-object operation is one blocking function of :mod:`.local_files`
run in one thread hop (:mod:`.local_threads`): a save's folder check, write,
xattr, fsync and rename, or a read's open, stat, xattr and read, instead of a
hop per syscall. Streams are written chunk by chunk with aiofiles. An object
of up to ``INLINE_BYTES`` read before is read again without a hop while the
kernel has it in memory (:mod:`.local_nowait`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import aiofiles
import aiofiles.os
import orjson

import ads_infra.storage.local_files as files
from ads_infra.core.errors import (
    InvalidFileNameError,
    ObjectExistsError,
    StorageError,
)
from ads_infra.core.health import HealthStatus
from ads_infra.core.settings import StorageConfig
from ads_infra.storage.base import (
    ListPage,
    Metadata,
    ObjectInfo,
    Payload,
    StorageStrategy,
    decodes_on_loop,
    resolve_metadata,
    validate_chunk_size,
    validate_key,
)
from ads_infra.storage.local_nowait import NowaitReads
from ads_infra.storage.local_threads import WorkerThreads

__all__ = ["LocalStorageStrategy"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LocalStorageStrategy(StorageStrategy):
    """Objects as files under ``config.base_path`` (see the module docstring)."""

    backend = "local"

    def __init__(self, config: StorageConfig | None = None) -> None:
        self.config = config or StorageConfig()
        self.root = os.path.abspath(self.config.base_path)
        self._shards = os.path.join(self.root, "")  # the root with one trailing separator
        self._xattr = self.config.local_metadata == "auto"
        self._sweeper: asyncio.Task[None] | None = None
        self._threads = WorkerThreads("ads-infra storage")
        self._nowait = NowaitReads(self.root)

    @property
    def target(self) -> str:
        return self.root

    def path_for(self, key: str) -> str:
        """The file that holds ``key`` (whether or not it exists)."""
        validate_key(key)
        name = files.encode_key(key)  # ASCII: as many bytes as characters
        if len(name) > files.MAX_ENCODED_NAME:
            raise InvalidFileNameError(
                f"file name {ascii(key)[:60]}... is too long for local storage once encoded "
                f"({len(name)} > {files.MAX_ENCODED_NAME} bytes); use a shorter name"
            )
        if name in (".", "..") or os.sep in name:  # cannot happen; belt and braces
            raise InvalidFileNameError(f"file name {ascii(key)[:60]} leaves the storage root")
        return f"{self._shards}{files.shard_of(key)}{os.sep}{name}"

    async def start(self) -> None:
        """Create the shard folders, remove abandoned temporary files, keep doing that.

        A write killed mid-way (the process, not the task) leaves its temporary
        file behind; they are removed once older than ``temp_max_age``, now and
        every half of that (but no more often than once a minute) while the strategy
        runs. A close() while this runs wins: nothing is left open or running
        after it.
        """
        epoch = self._nowait.epoch
        try:
            await self._threads.run(files.make_shards, self.root)
        except OSError as exc:
            raise StorageError(
                f"cannot create storage folder {self.root}: {exc.strerror}; "
                "check storage.base_path (ADS_STORAGE_PATH) and its permissions"
            ) from None
        # After each hop: if closed meanwhile, go no further, so that no worker pool
        # (started again by the next hop), folder descriptor or sweeper outlives close().
        if epoch != self._nowait.epoch:
            return
        await self._threads.run(self._nowait.open, epoch)
        if epoch != self._nowait.epoch:
            return
        await self.cleanup_temp(self.config.temp_max_age)
        if epoch != self._nowait.epoch:
            return
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="ads-infra temp sweeper")

    async def _sweep(self) -> None:
        period = max(self.config.temp_max_age / 2, 60.0)
        while True:
            await asyncio.sleep(period)
            try:
                await self.cleanup_temp(self.config.temp_max_age)
            except OSError as exc:  # a full or vanished disk: try again next time
                logger.warning("cleaning temporary files under %s failed: %s", self.root, exc)

    async def close(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        self._threads.close()
        self._nowait.close()

    @staticmethod
    def _meta(content_type: str, metadata: dict[str, str]) -> bytes:
        return orjson.dumps({"content_type": content_type, "metadata": metadata})

    async def put(
        self,
        key: str,
        data: Payload,
        *,
        content_type: str = "application/octet-stream",
        metadata: Metadata = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        path = self.path_for(key)
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                final = await self._put_bytes(
                    key, path, bytes(data), content_type, metadata, overwrite
                )
                size = len(data)
            else:
                size, final = await self._put_stream(
                    key, path, data, content_type, metadata, overwrite
                )
        except FileExistsError:
            raise ObjectExistsError(
                f"a file named {key!r} is already stored (or being written); "
                "delete it first or choose another name"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} under {self.root}: {exc.strerror}") from None
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=dt.datetime.now(dt.UTC),
            content_type=content_type,
            metadata=final,
        )

    async def _put_bytes(
        self,
        key: str,
        path: str,
        data: bytes,
        content_type: str,
        metadata: Metadata,
        overwrite: bool,
    ) -> dict[str, str]:
        """Store a whole object in one thread hop; returns its metadata."""
        resolved: list[dict[str, str]] = []

        def meta() -> bytes:
            # In the worker thread, once the data is written (a large object's
            # writeback already started): a checksum neither holds up the event
            # loop nor waits for the disk.
            resolved.append(resolve_metadata(metadata))
            return self._meta(content_type, resolved[0])

        await self._threads.complete(
            files.put_bytes,
            *(key, path, data, meta, overwrite, self._xattr),
            undo=self._undo(path, overwrite),
        )
        return resolved[0]

    async def _put_stream(
        self,
        key: str,
        path: str,
        data: Payload,
        content_type: str,
        metadata: Metadata,
        overwrite: bool,
    ) -> tuple[int, dict[str, str]]:
        assert not isinstance(data, bytes)
        await aiofiles.os.makedirs(os.path.dirname(path), exist_ok=True)
        await self._threads.run(files.check_folder, key, path)
        tmp_data = f"{path}~d{uuid.uuid4().hex}{files.TMP_SUFFIX}"
        size = 0
        try:
            async with aiofiles.open(tmp_data, "xb") as f:
                buffer = bytearray()
                async for chunk in data:
                    buffer += chunk
                    size += len(chunk)
                    if len(buffer) >= files.WRITE_BUFFER:
                        await f.write(bytes(buffer))
                        buffer.clear()
                if buffer:
                    await f.write(bytes(buffer))
                await f.flush()
                final = resolve_metadata(metadata)  # the checksum is known only now
                meta = self._meta(content_type, final)
                # Waited for even when cancelled: the thread uses the raw descriptor,
                # which closing the file meanwhile could hand to another file.
                in_xattr = await self._threads.complete(
                    files.seal, f.fileno(), meta if self._xattr else None
                )
            await self._threads.complete(
                files.commit,
                *(tmp_data, path, None if in_xattr else meta, overwrite),
                undo=self._undo(path, overwrite),
            )
        except BaseException:
            # An oversize stream, a failed check, a cancelled task: nothing stays behind.
            await self._threads.complete(files.unlink_quietly, tmp_data)
            raise
        return size, final

    @staticmethod
    def _undo(path: str, overwrite: bool) -> Callable[[object], object] | None:
        """What removes a write published after its caller was cancelled: a created
        object is deleted; an overwrite is left, as the version it replaced is gone."""
        if overwrite:
            return None
        return lambda _: files.delete("", path)

    async def get(self, key: str) -> bytes:
        return (await self.get_with_info(key))[1]

    async def _read_nowait(self, path: str) -> tuple[ObjectInfo, bytes] | None:
        """An object read before, of up to INLINE_BYTES, read on the event loop (see
        local_nowait.py)."""
        found = self._nowait.read(path)
        if found is not None:
            # Other tasks run before this one goes on, as they would during a hop: a
            # task reading file after file must not keep the loop to itself.
            await asyncio.sleep(0)
        return found

    async def get_with_info(self, key: str) -> tuple[ObjectInfo, bytes]:
        path = self.path_for(key)
        found = await self._read_nowait(path)
        if found is not None:
            return found
        info, data, stamp = await self._threads.run(files.get_stamped, key, path)
        if stamp is not None:
            self._nowait.keep(path, stamp, info)
        return info, data

    async def get_decoded(self, key: str, decode: Callable[[ObjectInfo, bytes], T]) -> T:
        path = self.path_for(key)
        found = await self._read_nowait(path)
        if found is not None:
            if decodes_on_loop(decode, *found):
                return decode(*found)
            return await self._threads.run(decode, *found)
        # Else in the hop that read the bytes: no object, however large, is checked
        # on the event loop, and checking a small one costs no second hop.
        read: tuple[T, ObjectInfo, files.Stamp | None] = await self._threads.run(
            files.get_decoded, key, path, decode
        )
        if read[2] is not None:
            self._nowait.keep(path, read[2], read[1])
        return read[0]

    async def open(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        validate_chunk_size(chunk_size)
        fd, _ = await self._threads.run(files.open_object, key, self.path_for(key))
        f = await aiofiles.open(fd, "rb")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await f.read(chunk_size):
                    yield chunk
            finally:
                await f.close()

        return chunks()

    async def delete(self, key: str) -> bool:
        path = self.path_for(key)
        self._nowait.forget(path)
        return await self._threads.run(files.delete, key, path)

    async def exists(self, key: str) -> bool:
        return await self._threads.run(files.is_object, key, self.path_for(key))

    async def stat(self, key: str) -> ObjectInfo:
        return await self._threads.run(files.stat_object, key, self.path_for(key))

    async def list(
        self, prefix: str = "", *, limit: int = 1000, start_after: str | None = None
    ) -> ListPage:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        return await self._threads.run(files.list_page, self.root, prefix, limit, start_after)

    async def cleanup_temp(self, older_than: float) -> int:
        return await self._threads.run(files.cleanup, self.root, older_than)

    async def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            where, usage, writable = await self._threads.run(files.disk_state, self.root)
        except OSError as exc:
            return HealthStatus(
                "storage", self.backend, False, detail=str(exc.strerror), target=self.root
            )
        latency = (time.perf_counter() - started) * 1000
        if not writable:
            return HealthStatus(
                "storage", self.backend, False, latency, f"{where} is not writable", self.root
            )
        detail = f"{usage.free // (1024 * 1024)} MiB free"
        if where != self.root:
            detail += "; the folder will be created by start() or the first write"
        return HealthStatus("storage", self.backend, True, latency, detail, self.root)
