"""Storage on a plain directory tree: ``storage.storage_type: tree``.

Each object is an ordinary file at ``<options.root>/<key>``, so the tree
mirrors the keys and any tool (``ls``, ``rsync``, a web server) reads what is
stored as it is: with a plugin backend the manager compresses nothing unless
``storage.compression_enabled`` says so. The content type and the manager's
metadata (size, sha256) live in ``.ads-tree/`` beside the files, paired with
each file by its inode so that a reader never sees one object's bytes with
another's metadata (``tree_files.py``). A file another tool puts in the tree
is served too, without metadata.

Writes are atomic and create-only unless ``overwrite``, as the interface
requires; every blocking call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import errno
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO, ClassVar, TypeVar

from ads_infra.core.errors import ConfigurationError, ObjectExistsError, StorageError
from ads_infra.core.health import HealthStatus
from ads_infra.core.section import ConfigSection
from ads_infra.core.settings import StorageConfig
from ads_infra.storage.base import (
    ListPage,
    Metadata,
    ObjectInfo,
    Payload,
    StorageStrategy,
    complete_or_undo,
    resolve_metadata,
    validate_chunk_size,
)
from ads_infra_plugin_example.tree_files import Tree

__all__ = ["TreeOptions", "TreeStorageStrategy"]

T = TypeVar("T")
# Bytes gathered from a stream before one write to the temp file.
_WRITE_BUFFER = 1024 * 1024


@dataclasses.dataclass(frozen=True, repr=False)
class TreeOptions(ConfigSection):
    """``storage.options`` of the tree backend: the root folder, and whether each write
    is flushed to disk (``fsync``) before it counts as stored."""

    _section: ClassVar[str] = "storage.options"

    root: str = "./var/tree"
    fsync: bool = True

    def validate(self) -> None:
        if not self.root.strip():
            raise ConfigurationError("must not be empty; e.g. ./var/tree", key="root")


def _failed(key: str, root: str, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOTDIR, errno.EISDIR):
        return StorageError(
            f"cannot store {key!r} under {root}: a folder of the tree and a file would share "
            "a name; choose a name that is not a folder of another"
        )
    return StorageError(f"cannot store {key!r} under {root}: {exc.strerror or exc}")


class TreeStorageStrategy(StorageStrategy):
    """Objects as plain files under one folder."""

    backend = "tree"
    options_type: ClassVar[type[ConfigSection]] = TreeOptions

    def __init__(self, config: StorageConfig | None = None, options: TreeOptions | None = None):
        self.config = config or StorageConfig()
        self.options = options or TreeOptions()
        self.tree = Tree(self.options.root, fsync=self.options.fsync)

    def __repr__(self) -> str:
        return f"TreeStorageStrategy(root={self.tree.root!r})"

    @property
    def target(self) -> str:
        return self.tree.root

    async def start(self) -> None:
        await asyncio.to_thread(self.tree.prepare)

    # --- writes ------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: Payload,
        *,
        content_type: str = "application/octet-stream",
        metadata: Metadata = None,
        overwrite: bool = False,
    ) -> ObjectInfo:
        self.tree.path_for(key)  # a reserved name fails before anything is written
        if isinstance(data, bytes | bytearray | memoryview):
            size = len(data)
            tmp, inode = await asyncio.to_thread(self.tree.write_temp, bytes(data))
        else:
            tmp, inode, size = await self._write_stream(data)
        try:
            final = resolve_metadata(metadata)  # a stream's checksum is known only now
            meta = {"content_type": content_type, "metadata": final}
            publish = asyncio.to_thread(self.tree.publish, key, tmp, inode, meta, overwrite)
            # Finished even if the caller is cancelled meanwhile (a thread cannot be
            # stopped); a create that was published then is removed again.
            await complete_or_undo(publish, None if overwrite else self._undo(key, inode))
        except FileExistsError:
            raise ObjectExistsError(
                f"a file named {key!r} is already stored; delete it first or choose another name"
            ) from None
        except OSError as exc:
            raise _failed(key, self.tree.root, exc) from None
        finally:
            await asyncio.to_thread(self.tree.unlink_quietly, tmp)
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=dt.datetime.now(dt.UTC),
            content_type=content_type,
            metadata=final,
        )

    async def _write_stream(self, data: Payload) -> tuple[str, int, int]:
        assert not isinstance(data, bytes | bytearray | memoryview)
        tmp, handle = await asyncio.to_thread(self.tree.new_temp)
        size, buffer = 0, bytearray()
        try:
            async for chunk in data:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= _WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(handle.write, bytes(buffer))
            inode = await complete_or_undo(asyncio.to_thread(self.tree.finish, handle))
        except BaseException:
            # A stream that fails midway (or a cancelled caller) leaves nothing behind.
            await complete_or_undo(asyncio.to_thread(self._discard, tmp, handle))
            raise
        return tmp, inode, size

    def _discard(self, tmp: str, handle: BinaryIO) -> None:
        handle.close()
        self.tree.unlink_quietly(tmp)

    def _undo(self, key: str, inode: int) -> Callable[[object], Awaitable[object]]:
        async def delete(_: object) -> None:
            await asyncio.to_thread(self.tree.delete, key, inode)

        return delete

    async def delete(self, key: str) -> bool:
        return await self._blocking(self.tree.delete, key)

    # --- reads -------------------------------------------------------------------

    async def get(self, key: str) -> bytes:
        return (await self.get_with_info(key))[1]

    async def get_with_info(self, key: str) -> tuple[ObjectInfo, bytes]:
        return await self._blocking(self.tree.read_object, key)

    async def stat(self, key: str) -> ObjectInfo:
        return await self._blocking(self.tree.stat_object, key)

    async def exists(self, key: str) -> bool:
        return await self._blocking(self.tree.exists, key)

    async def open(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        size = validate_chunk_size(chunk_size)
        _info, handle = await self._blocking(self.tree.open_object, key)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(handle.read, size):
                    yield chunk
            finally:
                handle.close()

        return chunks()

    async def list(
        self, prefix: str = "", *, limit: int = 1000, start_after: str | None = None
    ) -> ListPage:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        return await self._blocking(self.tree.list_page, prefix, limit, start_after)

    # --- housekeeping --------------------------------------------------------------

    async def cleanup_temp(self, older_than: float) -> int:
        return await self._blocking(self.tree.cleanup, older_than)

    async def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            writable, free = await asyncio.to_thread(self.tree.disk_state)
        except OSError as exc:
            return HealthStatus("storage", self.backend, False, None, str(exc), self.target)
        latency = (time.perf_counter() - started) * 1000
        if not writable:
            detail = "is not a writable folder; start() creates it"
            return HealthStatus("storage", self.backend, False, latency, detail, self.target)
        detail = f"{free // (1024 * 1024)} MiB free"
        return HealthStatus("storage", self.backend, True, latency, detail, self.target)

    async def _blocking(self, work: Callable[..., T], *args: object) -> T:
        try:
            return await asyncio.to_thread(work, *args)
        except OSError as exc:
            raise StorageError(
                f"cannot read under {self.tree.root}: {exc.strerror or exc}"
            ) from None
