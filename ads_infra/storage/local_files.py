"""Local storage's blocking file operations, each run in one worker-thread hop.

Atomic create-only writes (temporary file, fsync, create-only rename), metadata in
the ``user.ads.meta`` xattr or a ``~meta`` sidecar, reads, deletes, sharded
listing and the cleanup of abandoned temporary files. :mod:`.local` (the
async strategy) runs each in one hop of its worker threads; the layout they keep
is described there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import orjson

from ads_infra.core.errors import (
    StorageError,
    StoredFileNotFoundError,
)
from ads_infra.storage.base import INLINE_BYTES, ListPage, ObjectInfo
from ads_infra.storage.local_syscalls import generation, rename_noreplace, start_writeback

T = TypeVar("T")

META_SUFFIX = "~meta"
TMP_SUFFIX = "~tmp"
MAX_ENCODED_NAME = 200  # leaves room for "~<32 hex>~tmp" within 255-byte file names
WRITE_BUFFER = 1024 * 1024


# A key of letters, digits, '.', '_' and '-' (every name save_file returns) is its own
# encoding: the check is a tenth of what quote() costs.
_PLAIN = re.compile(r"[A-Za-z0-9._-]+").fullmatch


def encode_key(key: str) -> str:
    if _PLAIN(key):
        return key
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


def seal(fd: int, meta: bytes | None) -> bool:
    """Attach ``meta`` as xattr when given, then fsync; returns whether the xattr took it."""
    in_xattr = meta is not None and _set_meta_xattr(fd, meta)
    os.fsync(fd)
    return in_xattr


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _linked(key: str) -> StorageError:
    return StorageError(
        f"{key!r} is stored behind a symbolic link inside the storage folder; links there "
        "are never followed (they could point outside it): remove the link"
    )


def check_folder(key: str, path: str) -> None:
    """Refuse an object whose shard folder is a symbolic link (or not a folder at all).

    A link planted in place of a shard folder would take reads and writes
    outside ``base_path``; the base folder itself may be a link (a mount).
    """
    try:
        mode = os.lstat(os.path.dirname(path)).st_mode
    except FileNotFoundError:
        return  # created (as a real folder) by the write that needs it
    if not stat.S_ISDIR(mode):
        raise _linked(key)


def _write_new(path: str, data: bytes | bytearray | memoryview, meta: bytes | None) -> bool:
    """Create ``path`` with ``data`` (and ``meta`` as xattr when given), fsynced.

    Returns whether the metadata went into the xattr.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o644)
    try:
        _write_all(fd, data)
        return seal(fd, meta)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def unlink_quietly(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _publish(src: str, dst: str, overwrite: bool) -> None:
    """Move ``src`` to ``dst``: create-only unless ``overwrite``.

    Create-only is one ``renameat2(RENAME_NOREPLACE)`` where the system has it,
    else ``os.link`` (which fails on an existing name) and the removal of the
    temporary name: either way without a check-then-act race.
    """
    if overwrite:
        os.replace(src, dst)
        return
    if rename_noreplace(src, dst):
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
    # (commit would then remove the sidecar of a visible object); cleanup finds it.
    with contextlib.suppress(OSError):
        os.unlink(src)


def commit(tmp_data: str, path: str, meta: bytes | None, overwrite: bool) -> None:
    """Publish a written temporary file; ``meta`` None means it is in the xattr already."""
    meta_path = path + META_SUFFIX
    tmp_meta = f"{path}~m{uuid.uuid4().hex}{TMP_SUFFIX}"
    try:
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(path)
        if meta is None:
            _publish(tmp_data, path, overwrite)
            if overwrite:  # an older sidecar would be read after the xattr; drop it
                unlink_quietly(meta_path)
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
                unlink_quietly(meta_path)
            raise
    finally:
        unlink_quietly(tmp_meta, tmp_data)


# From this size a save starts its data's writeback before computing its metadata
# (a large object's checksums then overlap the disk's work; under it the hash
# takes microseconds and the call would only add a syscall).
WRITEBACK_BYTES = 256 * 1024


def put_bytes(
    key: str,
    path: str,
    data: bytes,
    meta: Callable[[], bytes],
    overwrite: bool,
    use_xattr: bool,
) -> None:
    """Write and publish a whole object: every syscall of a save, for one thread hop.

    With the metadata in the xattr that is the raw write's own (open, write,
    fsync, close, publish) plus the folder check and the ``setxattr``; a
    sidecar adds its own durable write (:func:`commit`). ``meta()`` is called
    here, once the data is written and, for a large object, its writeback
    started: a late-bound checksum is computed in this thread, not on the
    event loop, while the disk writes the data.
    """
    check_folder(key, path)
    tmp_data = f"{path}~d{os.urandom(16).hex()}{TMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
    try:
        try:
            fd = os.open(tmp_data, flags, 0o644)
        except FileNotFoundError:
            # No shard folder (start() creates them all; it was not called, or the
            # folder was removed since): create it and try again.
            os.makedirs(os.path.dirname(path), exist_ok=True)
            check_folder(key, path)
            fd = os.open(tmp_data, flags, 0o644)
        try:
            _write_all(fd, data)
            if len(data) >= WRITEBACK_BYTES:
                # The device writes the data while meta() is computed or waited
                # for; the fsync below then has less left to wait for.
                start_writeback(fd)
            blob = meta()
            in_xattr = seal(fd, blob if use_xattr else None)
        finally:
            os.close(fd)
        if in_xattr:
            # Create-only by a rename or link that fails on an existing name by itself.
            _publish(tmp_data, path, overwrite)
            if overwrite:  # an older sidecar would be read after the xattr; drop it
                unlink_quietly(path + META_SUFFIX)
            return
    except BaseException:
        unlink_quietly(tmp_data)
        raise
    commit(tmp_data, path, blob, overwrite)


_GETXATTR = getattr(os, "getxattr", None)


def _read_meta(fd: int, path: str) -> tuple[dict[str, Any], bool]:
    """The metadata of the open object ``fd`` (at ``path``): its xattr, else its sidecar;
    and whether it came from the xattr.

    The xattr is read from the descriptor, so it belongs to the very bytes read
    from it even while an overwrite replaces ``path``. A sidecar can only be
    read by name, and may be one version ahead of the bytes during an
    overwrite (see docs/storage.md).
    """
    raw: bytes | None = None
    if _GETXATTR is not None:
        with contextlib.suppress(OSError):  # no xattr here: the sidecar has it
            raw = _GETXATTR(fd, XATTR)
    in_xattr = raw is not None
    if raw is None:
        try:
            fd_meta = os.open(path + META_SUFFIX, os.O_RDONLY | _CLOEXEC | _NOFOLLOW)
        except FileNotFoundError:
            return {}, False  # a file put there by other means: no metadata
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return {}, False  # a planted link, not our sidecar
            raise
        with open(fd_meta, "rb") as f:
            raw = f.read(64 * 1024)
    try:
        loaded = orjson.loads(raw)
    except ValueError:
        return {}, False
    return (loaded, in_xattr) if isinstance(loaded, dict) else ({}, False)


def open_object(key: str, path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the object and its stat; refuses a link or anything
    but a regular file in its place."""
    check_folder(key, path)
    try:
        # O_NONBLOCK: a FIFO in an object's place must not hold the thread (regular
        # files ignore it).
        fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise StoredFileNotFoundError(key) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the object itself is a link
            raise _linked(key) from None
        raise
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise StorageError(
            f"{key!r} is not a regular file in the storage folder (a FIFO, device or "
            "folder was put in its place): remove it"
        )
    return fd, st


def _strings(found: Any) -> dict[str, str]:
    """The stored metadata mapping as strings (what this module writes already is)."""
    if type(found) is dict and all(type(v) is str for v in found.values()):
        return found  # parsed JSON: its keys are strings, and it is ours alone
    return {str(k): str(v) for k, v in dict(found or {}).items()}


def _info(key: str, st: os.stat_result, meta: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
        content_type=str(meta.get("content_type") or "application/octet-stream"),
        metadata=_strings(meta.get("metadata")),
    )


def stat_object(key: str, path: str) -> ObjectInfo:
    fd, st = open_object(key, path)
    try:
        return _info(key, st, _read_meta(fd, path)[0])
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    """The rest of the open file, ``size`` bytes long when it was stat'ed.

    One read for a file that kept its size (a short read of a regular file is
    its end); a file that grew meanwhile is read on to its end.
    """
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, WRITE_BUFFER):
        parts.append(chunk)
    return b"".join(parts)


# What identifies one version of an object's file: device, inode, ctime in
# nanoseconds (any change to the file or its xattrs moves it), size and the inode's
# generation (a later file reusing the inode number has another).
Stamp = tuple[int, int, int, int, int | None]


def get_stamped(key: str, path: str) -> tuple[ObjectInfo, bytes, Stamp | None]:
    """Info, content and the stamp of the version read: every syscall of a read, for
    one thread hop.

    The stamp (None for a file that :mod:`.local_nowait` would not read: over
    ``INLINE_BYTES``, metadata not in its xattr, a filesystem without inode
    generations) lets a later read of the same version use this info.
    """
    # One descriptor for size, metadata and bytes: a concurrent overwrite replaces
    # the name, not the file already open, so all three describe one version. The
    # stamp is taken before the metadata is read: a change in between moves the
    # ctime, so the info is never kept under a stamp older than its own.
    fd, st = open_object(key, path)
    try:
        meta, in_xattr = _read_meta(fd, path)
        stamp: Stamp | None = None
        if in_xattr and st.st_size <= INLINE_BYTES:
            number = generation(fd)
            if number is not None:
                stamp = (st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size, number)
        return _info(key, st, meta), _read_all(fd, st.st_size), stamp
    finally:
        os.close(fd)


def get_decoded(
    key: str, path: str, decode: Callable[[ObjectInfo, bytes], T]
) -> tuple[T, ObjectInfo, Stamp | None]:
    """``decode(info, content)`` of the object, in the thread that read it; with the
    info and stamp of the version read (see :func:`get_stamped`)."""
    info, data, stamp = get_stamped(key, path)
    return decode(info, data), info, stamp


def is_object(key: str, path: str) -> bool:
    """Whether ``path`` is a stored object: a regular file, not a link, in a real folder."""
    check_folder(key, path)
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def delete(key: str, path: str) -> bool:
    check_folder(key, path)
    try:
        os.unlink(path)
        existed = True
    except FileNotFoundError:
        existed = False
    unlink_quietly(path + META_SUFFIX)
    return existed


SHARDS = [f"{i:02x}" for i in range(256)]


def _shards(root: str) -> list[str]:
    try:
        names = {e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        return []
    return [os.path.join(root, name) for name in SHARDS if name in names]


def disk_state(root: str) -> tuple[str, Any, bool]:
    """(the folder checked, its disk usage, writable): ``root`` or its nearest existing parent."""
    where = root
    while not os.path.isdir(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    return where, shutil.disk_usage(where), os.access(where, os.W_OK)


def make_shards(root: str) -> None:
    """Create the 256 shard folders; refuse a shard that is a link or a file."""
    os.makedirs(root, exist_ok=True)
    existing = {e.name: e for e in os.scandir(root)}
    for name in SHARDS:
        entry = existing.get(name)
        if entry is None:
            os.makedirs(os.path.join(root, name), exist_ok=True)
        elif not entry.is_dir(follow_symlinks=False):
            raise StorageError(
                f"{entry.path} is not a folder (a symbolic link or a file); the storage "
                "folder's shards must be real folders: remove it and start again"
            )


def shard_of(key: str) -> str:
    """The shard folder's name of ``key``: the first two hex digits of its sha256."""
    return hashlib.sha256(key.encode()).hexdigest()[:2]


def _open_shard(root: str, name: str) -> int | None:
    """A descriptor of the shard folder, or None where it is missing or not a real folder.

    ``O_NOFOLLOW`` refuses a link planted in place of the folder; the listing
    then reads the folder it opened, whatever is renamed meanwhile.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC
    try:
        return os.open(os.path.join(root, name), flags)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise


def _keys(fd: int, prefix: str, after: str | None) -> tuple[list[str], dict[str, str]]:
    """The keys of the names in one shard folder that may be objects, in order, and the
    file name of each key that is not its own name.

    Names only (``os.listdir``, no stat): "~" marks temporary and sidecar
    files (keys encode it as %7E), and a percent-encoded name that this store
    would not have written is no key of it; whether a name is a regular file,
    not a link or a folder, is checked by the stat of each one returned.
    """
    names = os.listdir(fd)
    # Every name save_file gives is its own key: those are filtered in one
    # comprehension, the percent-encoded rest one by one. Whether a name without
    # "%" is its own encoding (and so a key) is checked only for the keys a page
    # returns (list_page).
    keys = [
        n
        for n in names
        if "~" not in n and "%" not in n and n.startswith(prefix) and (after is None or n > after)
    ]
    encoded: dict[str, str] = {}
    for name in names:
        if "%" in name and "~" not in name:
            key = unquote(name)
            if (
                encode_key(key) == name
                and key.startswith(prefix)
                and (after is None or key > after)
            ):
                keys.append(key)
                encoded[key] = name
    keys.sort()
    return keys, encoded


def _object_stat(fd: int, name: str) -> os.stat_result | None:
    """The stat of the shard folder's entry ``name`` if it is a regular file, else None."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None  # deleted since the folder was read
    return st if stat.S_ISREG(st.st_mode) else None


def list_page(root: str, prefix: str, limit: int, start_after: str | None) -> ListPage:
    """One page of the listing, in the store's order: shard folder by folder, keys in
    order within each; ``start_after`` (the last key of the previous page) resumes it.

    A key names its own shard, so a page reads the names of the folders it
    spans (one or two of the 256: about 1/256 of the store each), never the
    whole store, and stats only the objects it returns. Global key order would
    need every folder's names for every page, because the hashed folders
    scatter neighbouring keys.
    """
    first = 0 if start_after is None else int(shard_of(start_after), 16)
    items: list[ObjectInfo] = []
    more = False
    for index in range(first, len(SHARDS)):
        fd = _open_shard(root, SHARDS[index])
        if fd is None:
            continue
        try:
            keys, encoded = _keys(fd, prefix, start_after if index == first else None)
            for key in keys:
                name = encoded.get(key)
                if name is None:
                    if not _PLAIN(key):
                        continue  # this store would have encoded it: not one of its keys
                    name = key
                st = _object_stat(fd, name)
                if st is None:
                    continue
                if len(items) == limit:
                    more = True  # one object past the page: there is a next page
                    break
                items.append(
                    ObjectInfo(
                        key=key,
                        size=st.st_size,
                        last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                    )
                )
        finally:
            os.close(fd)
        if more:
            break
    return ListPage(items=items, next_token=items[-1].key if more else None)


def cleanup(root: str, older_than: float) -> int:
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
