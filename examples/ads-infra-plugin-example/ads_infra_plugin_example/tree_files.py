"""The blocking file operations of the tree storage backend (run in worker threads).

Layout under the root::

    <key>                                the object's bytes, an ordinary file
    .ads-tree/meta/<key>.<inode>.json    its content type and metadata
    .ads-tree/tmp/<random>               writes in progress

Metadata is named after the inode of the data file it describes. A write
creates its data file in ``tmp``, writes the metadata for that file's inode,
then publishes the file under its key (a hard link, which fails if the key
exists, or a rename over it, both atomic) and removes the replaced file's
metadata. A reader opens the data file, takes its inode from the open
descriptor and reads that inode's metadata: it always pairs bytes with their
own metadata, even while a writer replaces the object.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from ads_infra.core.errors import InvalidFileNameError, StoredFileNotFoundError
from ads_infra.storage.base import ListPage, ObjectInfo

__all__ = ["Tree"]

STATE = ".ads-tree"
# A reader that found a file's metadata gone (the file was replaced meanwhile)
# opens the key again; a handful of tries outlasts any one replacement.
_READ_TRIES = 5


class Tree:
    """Paths and blocking operations for one root folder."""

    def __init__(self, root: str, *, fsync: bool) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.meta_root = os.path.join(self.root, STATE, "meta")
        self.tmp_root = os.path.join(self.root, STATE, "tmp")
        self.fsync = fsync

    # --- paths -----------------------------------------------------------------

    def path_for(self, key: str) -> str:
        """The data file of ``key`` (validated by the manager's ``validate_key``)."""
        if key.split("/", 1)[0] == STATE:
            raise InvalidFileNameError(f"file name {key!r}: {STATE!r} is reserved by the tree")
        return os.path.join(self.root, *key.split("/"))

    def meta_for(self, key: str, inode: int) -> str:
        return os.path.join(self.meta_root, *key.split("/")) + f".{inode}.json"

    # --- writes ----------------------------------------------------------------

    def prepare(self) -> None:
        os.makedirs(self.meta_root, exist_ok=True)
        os.makedirs(self.tmp_root, exist_ok=True)

    def new_temp(self) -> tuple[str, BinaryIO]:
        self.prepare()
        path = os.path.join(self.tmp_root, uuid.uuid4().hex)
        return path, open(path, "xb")

    def finish(self, handle: BinaryIO) -> int:
        """Flush and close a temp file; its inode."""
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())
        inode = os.fstat(handle.fileno()).st_ino
        handle.close()
        return inode

    def write_temp(self, data: bytes) -> tuple[str, int]:
        path, handle = self.new_temp()
        try:
            handle.write(data)
            return path, self.finish(handle)
        except BaseException:
            handle.close()
            self.unlink_quietly(path)
            raise

    def publish(
        self, key: str, tmp: str, inode: int, meta: dict[str, Any], overwrite: bool
    ) -> None:
        """Make ``tmp`` the object ``key``; FileExistsError when it exists and not ``overwrite``."""
        final, meta_path = self.path_for(key), self.meta_for(key, inode)
        if os.path.isdir(final):  # not "exists": no object is stored under that name
            raise IsADirectoryError(errno.EISDIR, "is a folder of the tree", final)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.makedirs(os.path.dirname(meta_path), exist_ok=True)
        self._write_json(meta_path, meta)
        try:
            if overwrite:
                replaced = self._inode(final)
                os.replace(tmp, final)
                if replaced is not None and replaced != inode:
                    self.unlink_quietly(self.meta_for(key, replaced))
            else:
                os.link(tmp, final)  # atomic, and refuses an existing key
                os.unlink(tmp)
        except BaseException:
            self.unlink_quietly(meta_path)
            raise
        if self.fsync:
            self._sync_folder(os.path.dirname(final))

    def delete(self, key: str, inode: int | None = None) -> bool:
        """Remove ``key`` (only if it is still the file ``inode``, when given)."""
        final = self.path_for(key)
        current = self._inode(final)
        if current is None or (inode is not None and current != inode):
            return False
        try:
            os.unlink(final)
        except FileNotFoundError:
            return False
        self.unlink_quietly(self.meta_for(key, current))
        return True

    # --- reads -----------------------------------------------------------------

    def open_object(self, key: str) -> tuple[ObjectInfo, BinaryIO]:
        """The object's info and an open handle on its bytes (the caller closes it)."""
        final = self.path_for(key)
        for _ in range(_READ_TRIES):
            try:
                handle = open(final, "rb")  # noqa: SIM115  (returned open)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise StoredFileNotFoundError(f"no file named {key!r} is stored") from None
            st = os.fstat(handle.fileno())
            meta = self._read_json(self.meta_for(key, st.st_ino))
            if meta is not None or self._inode(final) == st.st_ino:
                # No metadata for the current file: one put there by another tool.
                return self._info(key, st, meta or {}), handle
            handle.close()  # replaced between the open and the read: open the new one
        raise StoredFileNotFoundError(f"{key!r} is being replaced repeatedly; try again")

    def read_object(self, key: str) -> tuple[ObjectInfo, bytes]:
        info, handle = self.open_object(key)
        with handle:
            return info, handle.read()

    def stat_object(self, key: str) -> ObjectInfo:
        info, handle = self.open_object(key)
        handle.close()
        return info

    def exists(self, key: str) -> bool:
        return self._inode(self.path_for(key)) is not None

    def list_page(self, prefix: str, limit: int, start_after: str | None) -> ListPage:
        # Keys are read from the folder the prefix names, then sorted: the order of
        # keys is not the order of a walk ("a-b" sorts before "a/b"). Like the built-in
        # local backend, a page costs a read of every name under that folder.
        folder = os.path.normpath(os.path.join(self.root, *prefix.split("/")[:-1]))
        if folder != self.root and not folder.startswith(
            self.root + os.sep
        ):  # a prefix with "..": no key can match it
            return ListPage(items=[])
        found = []
        for key, st in self._walk(folder):
            if key.startswith(prefix) and (start_after is None or key > start_after):
                found.append(self._info(key, st, {}))
        found.sort(key=lambda info: info.key)
        items = found[:limit]
        more = len(found) > limit
        return ListPage(items=items, next_token=items[-1].key if more and items else None)

    # --- housekeeping ----------------------------------------------------------

    def cleanup(self, older_than: float) -> int:
        """Remove temp files and orphaned metadata older than ``older_than`` seconds."""
        cutoff, removed = time.time() - older_than, 0
        for folder, _dirs, names in os.walk(self.tmp_root):
            for name in names:
                removed += self._remove_if_older(os.path.join(folder, name), cutoff)
        for folder, _dirs, names in os.walk(self.meta_root):
            for name in names:
                path = os.path.join(folder, name)
                base, _, inode = name.removesuffix(".json").rpartition(".")
                data = os.path.join(self.root, os.path.relpath(folder, self.meta_root), base)
                orphan = not inode.isdigit() or self._inode(data) != int(inode)
                if not name.endswith(".json") or orphan:  # a torn write's temp, or stale
                    removed += self._remove_if_older(path, cutoff)
        return removed

    def disk_state(self) -> tuple[bool, int]:
        """Whether the root is a writable folder, and its free bytes."""
        writable = os.path.isdir(self.root) and os.access(self.root, os.W_OK | os.X_OK)
        return writable, shutil.disk_usage(self.root).free if writable else 0

    @staticmethod
    def unlink_quietly(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # --- helpers ---------------------------------------------------------------

    def _walk(self, folder: str) -> Iterator[tuple[str, os.stat_result]]:
        state = os.path.join(self.root, STATE)
        for here, dirs, names in os.walk(folder):
            if here == self.root:
                dirs[:] = [d for d in dirs if d != STATE]
            if here.startswith(state):
                continue
            for name in names:
                path = os.path.join(here, name)
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode):
                    yield os.path.relpath(path, self.root).replace(os.sep, "/"), st

    @staticmethod
    def _inode(path: str) -> int | None:
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_ino if stat.S_ISREG(st.st_mode) else None

    @staticmethod
    def _info(key: str, st: os.stat_result, meta: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
            content_type=meta.get("content_type", "application/octet-stream"),
            metadata=dict(meta.get("metadata", {})),
            etag=f"{st.st_ino}-{st.st_mtime_ns}",
        )

    def _write_json(self, path: str, value: dict[str, Any]) -> None:
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(json.dumps(value).encode())
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)

    @staticmethod
    def _read_json(path: str) -> dict[str, Any] | None:
        try:
            with open(path, "rb") as handle:
                value = json.loads(handle.read(64 * 1024))  # metadata is at most 2 KiB
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    @staticmethod
    def _sync_folder(folder: str) -> None:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    @staticmethod
    def _remove_if_older(path: str, cutoff: float) -> int:
        try:
            if os.lstat(path).st_mtime <= cutoff:
                os.unlink(path)
                return 1
        except FileNotFoundError:
            pass
        return 0
