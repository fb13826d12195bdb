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
published with ``os.link`` (which fails if the name exists: create-only without
a check-then-act race). The metadata (content type, checksum, ...) is kept
beside the data as JSON in the file's extended attribute ``user.ads.meta``:
set on the temporary file before its fsync, it is made durable by the same
fsync and published by the same link, so data and metadata appear together or
not at all, for the cost of one durable write. Where xattrs are unavailable
(FAT, some network filesystems) or ``local_metadata: sidecar`` asks for it
(backups that drop xattrs: ``cp`` without ``--preserve=xattr``, ``rsync``
without ``-X``), the metadata goes to a ``~meta`` file instead, fsynced and
linked *before* the object, so an object is never visible without it.

Like the benchmark's raw baseline (write, fsync, rename) the folder itself is
not fsynced: after a power loss the newest file may be missing, never partial.
Small writes run as one blocking function in aiofiles' executor (one thread hop
instead of one per open/write/fsync/close/rename); streams are written chunk
by chunk with aiofiles.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, unquote

import aiofiles
import aiofiles.os

from ads_infra.core.errors import (
    InvalidFileNameError,
    ObjectExistsError,
    StorageError,
    StoredFileNotFoundError,
)
from ads_infra.core.health import HealthStatus
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
    validate_key,
)

__all__ = ["LocalStorageStrategy"]

P = ParamSpec("P")
T = TypeVar("T")

META_SUFFIX = "~meta"
TMP_SUFFIX = "~tmp"
MAX_ENCODED_NAME = 200  # leaves room for "~<32 hex>~tmp" within 255-byte file names
_WRITE_BUFFER = 1024 * 1024


def _blocking(fn: Callable[P, T]) -> Callable[P, Any]:
    """Run ``fn`` in aiofiles' executor (its own ``wrap``), typed."""
    return aiofiles.os.wrap(fn)


def encode_key(key: str) -> str:
    return quote(key, safe="").replace("~", "%7E")


XATTR = "user.ads.meta"
# errnos meaning "no xattrs here (or not this big)": fall back to a sidecar file.
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.E2BIG, errno.ENOSPC, errno.EPERM}
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _set_meta_xattr(fd: int, meta: bytes) -> bool:
    """Attach ``meta`` to the open file; False where the filesystem cannot."""
    if not hasattr(os, "setxattr"):
        return False
    try:
        os.setxattr(fd, XATTR, meta)
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            return False
        raise
    return True


def _seal(fd: int, meta: bytes | None) -> bool:
    """Attach ``meta`` as xattr when given, then fsync; returns whether the xattr took it."""
    in_xattr = meta is not None and _set_meta_xattr(fd, meta)
    os.fsync(fd)
    return in_xattr


def _write_new(path: str, data: bytes | bytearray | memoryview, meta: bytes | None) -> bool:
    """Create ``path`` with ``data`` (and ``meta`` as xattr when given), fsynced.

    Returns whether the metadata went into the xattr.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return _seal(fd, meta)
    finally:
        os.close(fd)


def _unlink_quietly(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _publish(src: str, dst: str, overwrite: bool) -> None:
    """Move ``src`` to ``dst``: create-only via link unless ``overwrite``."""
    if overwrite:
        os.replace(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A filesystem without hard links: check-then-rename is the best it allows.
        if os.path.lexists(dst):
            raise FileExistsError(dst) from None
        os.rename(src, dst)
        return
    # Published: a failure to drop the temporary name must not read as "not written"
    # (_commit would then remove the sidecar of a visible object); cleanup finds it.
    with contextlib.suppress(OSError):
        os.unlink(src)


def _commit(tmp_data: str, path: str, meta: bytes | None, overwrite: bool) -> None:
    """Publish a written temporary file; ``meta`` None means it is in the xattr already."""
    meta_path = path + META_SUFFIX
    tmp_meta = f"{path}~m{uuid.uuid4().hex}{TMP_SUFFIX}"
    try:
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(path)
        if meta is None:
            _publish(tmp_data, path, overwrite)
            if overwrite:  # an older sidecar would be read after the xattr; drop it
                _unlink_quietly(meta_path)
            return
        _write_new(tmp_meta, meta, None)
        _publish(tmp_meta, meta_path, overwrite)
        try:
            _publish(tmp_data, path, overwrite)
        except BaseException:
            # Whatever stopped the data (another writer, a vanished temporary file),
            # a sidecar without its object would make the key unwritable while
            # exists() says it is free. An overwrite's sidecar replaced the old one,
            # which is gone either way.
            if not overwrite:
                _unlink_quietly(meta_path)
            raise
    finally:
        _unlink_quietly(tmp_meta, tmp_data)


def _put_bytes(path: str, data: bytes, meta: bytes, overwrite: bool, use_xattr: bool) -> bool:
    """Write and publish a whole object; returns whether xattrs worked."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp_data = f"{path}~d{uuid.uuid4().hex}{TMP_SUFFIX}"
    try:
        in_xattr = _write_new(tmp_data, data, meta if use_xattr else None)
    except BaseException:
        _unlink_quietly(tmp_data)
        raise
    _commit(tmp_data, path, None if in_xattr else meta, overwrite)
    return in_xattr


def _read_meta(fd: int, path: str) -> dict[str, Any]:
    """The metadata of the open object ``fd`` (at ``path``): its xattr, else its sidecar.

    The xattr is read from the descriptor, so it belongs to the very bytes read
    from it even while an overwrite replaces ``path``. A sidecar can only be
    read by name, and may be one version ahead of the bytes during an
    overwrite (see docs/storage.md).
    """
    raw: bytes | None = None
    if hasattr(os, "getxattr"):
        with contextlib.suppress(OSError):  # no xattr here: the sidecar has it
            raw = os.getxattr(fd, XATTR)
    if raw is None:
        try:
            with open(path + META_SUFFIX, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}  # a file put there by other means: no metadata
    try:
        loaded = json.loads(raw)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _open_object(key: str, path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | _CLOEXEC)
    except FileNotFoundError:
        raise StoredFileNotFoundError(key) from None


def _info(key: str, fd: int, path: str) -> ObjectInfo:
    st = os.fstat(fd)
    meta = _read_meta(fd, path)
    return ObjectInfo(
        key=key,
        size=st.st_size,
        last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
        content_type=str(meta.get("content_type") or "application/octet-stream"),
        metadata={str(k): str(v) for k, v in dict(meta.get("metadata") or {}).items()},
    )


def _stat(key: str, path: str) -> ObjectInfo:
    fd = _open_object(key, path)
    try:
        return _info(key, fd, path)
    finally:
        os.close(fd)


def _get_with_info(key: str, path: str) -> tuple[ObjectInfo, bytes]:
    # One descriptor for size, metadata and bytes: a concurrent overwrite replaces
    # the name, not the file already open, so all three describe one version.
    fd = _open_object(key, path)
    with open(fd, "rb") as f:  # closes fd
        return _info(key, fd, path), f.read()


def _delete(path: str) -> bool:
    try:
        os.unlink(path)
        existed = True
    except FileNotFoundError:
        existed = False
    _unlink_quietly(path + META_SUFFIX)
    return existed


SHARDS = [f"{i:02x}" for i in range(256)]


def _shards(root: str) -> list[str]:
    try:
        names = {e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        return []
    return [os.path.join(root, name) for name in SHARDS if name in names]


def _disk_state(root: str) -> tuple[str, Any, bool]:
    """(the folder checked, its disk usage, writable): ``root`` or its nearest existing parent."""
    where = root
    while not os.path.isdir(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    return where, shutil.disk_usage(where), os.access(where, os.W_OK)


def _make_shards(root: str) -> None:
    os.makedirs(root, exist_ok=True)
    existing = set(os.listdir(root))
    for name in SHARDS:
        if name not in existing:
            os.makedirs(os.path.join(root, name), exist_ok=True)


def _list(root: str, prefix: str, limit: int, start_after: str | None) -> ListPage:
    # Hashed folders scatter keys, so a page means reading every folder's names;
    # fine for the object counts a local folder serves, and what S3 is for beyond.
    found: list[ObjectInfo] = []
    for folder in _shards(root):
        for entry in os.scandir(folder):
            if "~" in entry.name or not entry.is_file():
                continue
            key = unquote(entry.name)
            if not key.startswith(prefix) or (start_after is not None and key <= start_after):
                continue
            st = entry.stat()
            found.append(
                ObjectInfo(
                    key=key,
                    size=st.st_size,
                    last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                )
            )
    found.sort(key=lambda item: item.key)
    more = len(found) > limit
    items = found[:limit]
    return ListPage(items=items, next_token=items[-1].key if more and items else None)


def _cleanup(root: str, older_than: float) -> int:
    cutoff = time.time() - older_than
    removed = 0
    for folder in _shards(root):
        for entry in os.scandir(folder):
            name = entry.name
            stale_meta = name.endswith(META_SUFFIX) and not os.path.lexists(
                os.path.join(folder, name[: -len(META_SUFFIX)])
            )
            if not (name.endswith(TMP_SUFFIX) or stale_meta):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass  # finished or removed meanwhile
    return removed


class LocalStorageStrategy(StorageStrategy):
    """Objects as files under ``config.base_path`` (see the module docstring)."""

    backend = "local"

    def __init__(self, config: StorageConfig | None = None) -> None:
        self.config = config or StorageConfig()
        self.root = os.path.abspath(self.config.base_path)
        self._xattr = self.config.local_metadata == "auto"

    @property
    def target(self) -> str:
        return self.root

    def path_for(self, key: str) -> str:
        """The file that holds ``key`` (whether or not it exists)."""
        validate_key(key)
        name = encode_key(key)
        if len(name.encode()) > MAX_ENCODED_NAME:
            raise InvalidFileNameError(
                f"file name {ascii(key)[:60]}... is too long for local storage once encoded "
                f"({len(name)} > {MAX_ENCODED_NAME} bytes); use a shorter name"
            )
        digest = hashlib.sha256(key.encode()).hexdigest()
        path = os.path.join(self.root, digest[:2], name)
        if os.path.commonpath([self.root, path]) != self.root:  # cannot happen; belt and braces
            raise InvalidFileNameError(f"file name {ascii(key)[:60]} leaves the storage root")
        return path

    async def start(self) -> None:
        try:
            await _blocking(_make_shards)(self.root)
        except OSError as exc:
            raise StorageError(
                f"cannot create storage folder {self.root}: {exc.strerror}; "
                "check storage.base_path (ADS_STORAGE_PATH) and its permissions"
            ) from None

    @staticmethod
    def _meta(content_type: str, metadata: dict[str, str]) -> bytes:
        return json.dumps({"content_type": content_type, "metadata": metadata}).encode()

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
                final = resolve_metadata(metadata)
                meta = self._meta(content_type, final)
                await complete_or_undo(
                    _blocking(_put_bytes)(path, bytes(data), meta, overwrite, self._xattr),
                    self._undo(path, overwrite),
                )
                size = len(data)
            else:
                size, final = await self._put_stream(path, data, content_type, metadata, overwrite)
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

    async def _put_stream(
        self,
        path: str,
        data: Payload,
        content_type: str,
        metadata: Metadata,
        overwrite: bool,
    ) -> tuple[int, dict[str, str]]:
        assert not isinstance(data, bytes)
        await aiofiles.os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp_data = f"{path}~d{uuid.uuid4().hex}{TMP_SUFFIX}"
        size = 0
        try:
            async with aiofiles.open(tmp_data, "xb") as f:
                buffer = bytearray()
                async for chunk in data:
                    buffer += chunk
                    size += len(chunk)
                    if len(buffer) >= _WRITE_BUFFER:
                        await f.write(bytes(buffer))
                        buffer.clear()
                if buffer:
                    await f.write(bytes(buffer))
                await f.flush()
                final = resolve_metadata(metadata)  # the checksum is known only now
                meta = self._meta(content_type, final)
                # Waited for even when cancelled: the thread uses the raw descriptor,
                # which closing the file meanwhile could hand to another file.
                in_xattr = await complete_or_undo(
                    _blocking(_seal)(f.fileno(), meta if self._xattr else None)
                )
            await complete_or_undo(
                _blocking(_commit)(tmp_data, path, None if in_xattr else meta, overwrite),
                self._undo(path, overwrite),
            )
        except BaseException:
            # An oversize stream, a failed check, a cancelled task: nothing stays behind.
            await _blocking(_unlink_quietly)(tmp_data)
            raise
        return size, final

    @staticmethod
    def _undo(path: str, overwrite: bool) -> Callable[[object], Awaitable[object]] | None:
        """What removes a write published after its caller was cancelled: a created
        object is deleted; an overwrite is left, as the version it replaced is gone."""
        if overwrite:
            return None

        async def delete(_: object) -> None:
            await _blocking(_delete)(path)

        return delete

    async def get(self, key: str) -> bytes:
        return (await self.get_with_info(key))[1]

    async def get_with_info(self, key: str) -> tuple[ObjectInfo, bytes]:
        info, data = await _blocking(_get_with_info)(key, self.path_for(key))
        return info, data

    async def open(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        validate_chunk_size(chunk_size)
        path = self.path_for(key)
        try:
            f = await aiofiles.open(path, "rb")
        except FileNotFoundError:
            raise StoredFileNotFoundError(key) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await f.read(chunk_size):
                    yield chunk
            finally:
                await f.close()

        return chunks()

    async def delete(self, key: str) -> bool:
        return bool(await _blocking(_delete)(self.path_for(key)))

    async def exists(self, key: str) -> bool:
        return await aiofiles.os.path.isfile(self.path_for(key))

    async def stat(self, key: str) -> ObjectInfo:
        info = await _blocking(_stat)(key, self.path_for(key))
        return info  # type: ignore[no-any-return]

    async def list(
        self, prefix: str = "", *, limit: int = 1000, start_after: str | None = None
    ) -> ListPage:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        page = await _blocking(_list)(self.root, prefix, limit, start_after)
        return page  # type: ignore[no-any-return]

    async def cleanup_temp(self, older_than: float) -> int:
        removed = await _blocking(_cleanup)(self.root, older_than)
        return removed  # type: ignore[no-any-return]

    async def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            where, usage, writable = await _blocking(_disk_state)(self.root)
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
