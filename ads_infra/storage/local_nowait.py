"""Reads of local objects on the event loop, without a thread hop, when nothing would wait.

A read of local storage is one hop to a worker thread (:mod:`.local_threads`),
because opening and reading a file may wait for the disk. For an object of up
to ``INLINE_BYTES`` read before, whose folder entries and pages are still in
the kernel's caches, the hop takes longer than the read: here it is done on the
event loop with calls that fail instead of waiting:

- ``openat2`` with ``RESOLVE_CACHED`` from a descriptor of the storage folder
  (EAGAIN when a folder would be read from disk; ``RESOLVE_BENEATH`` and
  ``RESOLVE_NO_SYMLINKS`` refuse what ``check_folder`` and ``O_NOFOLLOW`` refuse
  on the hop's path; ``O_NONBLOCK``, so that a FIFO put in a file's place does
  not wait for a writer);
- ``fstat`` and the inode's generation (an ioctl) of the file just opened;
- ``preadv2`` with ``RWF_NOWAIT`` (EAGAIN when a page is not in memory), into
  a buffer each thread keeps, so that a read allocates only the bytes it
  returns. Reading into a new buffer and copying out of it would allocate the
  object's size twice: glibc gives such a pair of large blocks back to the
  system when they are freed, and the next read page-faults them in again,
  which on the event loop's thread costs more than the read itself.

The metadata xattr has no such call (reading it may wait for a block of the
disk), so the info is the one the last hop read of the object kept, used only
while the file's stamp (device, inode, generation, ctime, size) is the one it
was read with: an overwrite is another inode, and a change to the file or its
xattrs moves its ctime. Whatever does not hold (never read, not in the caches,
over ``INLINE_BYTES``, a link, metadata in a sidecar, a filesystem without
inode generations, a system without ``openat2``) is read by the hop as
before, which also keeps the info for the next time. A network or FUSE
filesystem that reports inode generations would be read this way too, and
its open may wait on its server: keep local storage on a local filesystem.

The storage folder is opened once: replacing it (not its content) while a
process uses it is not supported, as for the shard folders ``start()`` creates.
"""

from __future__ import annotations

import errno
import os
import stat
import threading

from ads_infra.storage.base import INLINE_BYTES, ObjectInfo
from ads_infra.storage.local_files import Stamp
from ads_infra.storage.local_syscalls import CANNOT, generation, open_cached

__all__ = ["NowaitReads"]

# Objects whose info is kept: an entry is about a kilobyte (the path, the info and
# its metadata), and a hot set larger than this is read by the hop past it.
KEPT = 4096
# Refusals of the open in a row (EPERM) after which every read takes the hop.
REFUSALS = 64
_RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)


def _copy(info: ObjectInfo) -> ObjectInfo:
    """The info with a metadata dict of its own: a caller may change what it was given."""
    return ObjectInfo(
        info.key, info.size, info.last_modified, info.content_type, dict(info.metadata), info.etag
    )


class NowaitReads:
    """The info of objects read before, and their reads on the event loop (see the module)."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._skip = len(os.path.join(root, ""))  # a path's part below the root starts here
        self._folder: int | None = None
        self._opening = threading.Lock()
        self._known: dict[str, tuple[Stamp, ObjectInfo]] = {}
        self._refused = 0  # EPERMs of the open in a row
        # Each thread's read buffer (INLINE_BYTES + 1), made by its first read: reads
        # run on an event loop, one at a time, but two loops may share a strategy.
        self._buffers = threading.local()
        self.enabled = hasattr(os, "RWF_NOWAIT")
        # Moved by each close(): an open() asked for before it does nothing.
        self.epoch = 0

    def open(self, epoch: int) -> None:
        """Open the storage folder (blocking: run it in a worker thread); once.

        ``epoch`` is :attr:`epoch` when the open was asked for: a close() in
        between (a strategy closed while it was starting) wins, and no descriptor
        is left open behind it.
        """
        with self._opening:
            if self._folder is None and epoch == self.epoch:
                self._folder = os.open(self._root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        with self._opening:
            self.epoch += 1
            folder, self._folder = self._folder, None
        if folder is not None:
            os.close(folder)
        self._known.clear()
        self._buffers = threading.local()  # the buffers go with their threads' references

    def keep(self, path: str, stamp: Stamp, info: ObjectInfo) -> None:
        """Remember the info of the version of ``path`` with ``stamp`` (read by a hop)."""
        known = self._known
        known.pop(path, None)
        if len(known) >= KEPT:
            del known[next(iter(known))]  # the one read longest ago
        known[path] = (stamp, _copy(info))  # the caller's copy is the caller's to change

    def forget(self, path: str) -> None:
        self._known.pop(path, None)

    def read(self, path: str) -> tuple[ObjectInfo, bytes] | None:
        """The info and content of ``path`` if they can be had without waiting, else None."""
        kept = self._known.get(path)
        folder = self._folder
        if kept is None or folder is None or not self.enabled:
            return None
        fd = open_cached(folder, path[self._skip :].encode())
        if fd < 0:
            if -fd in CANNOT:
                self.enabled = False  # no such open here: every read takes the hop
            elif -fd == errno.EPERM:
                # O_NOATIME on a file of another user, or a sandbox refusing the call:
                # this read takes the hop; refused that many times in a row, all do.
                self._known.pop(path, None)
                self._refused += 1
                self.enabled = self._refused < REFUSALS
            return None
        self._refused = 0
        try:
            st = os.fstat(fd)
            stamp, info = kept
            size = st.st_size
            if not stat.S_ISREG(st.st_mode) or stamp != (
                st.st_dev,
                st.st_ino,
                st.st_ctime_ns,
                size,
                generation(fd),
            ):
                return None
            buffer: bytearray | None = getattr(self._buffers, "buffer", None)
            if buffer is None:
                buffer = self._buffers.buffer = bytearray(INLINE_BYTES + 1)
            # One byte more: a file that grew is not this one. (A stamp is kept only
            # for a file of up to INLINE_BYTES: a larger one would read short here.)
            view = memoryview(buffer)[: size + 1]
            try:
                got = os.preadv(fd, (view,), 0, _RWF_NOWAIT)
            except BlockingIOError:  # a page is not in memory
                return None
            except OSError as exc:
                if exc.errno in CANNOT:  # a filesystem without reads that do not wait
                    self.enabled = False
                return None
            if got != size:
                return None
            # Read now: the last to drop; unless forgotten meanwhile (a delete, close or
            # eviction in another thread while this one was in a call).
            entry = self._known.pop(path, None)
            if entry is not None:
                self._known[path] = entry
            return _copy(info), bytes(view[:size])
        finally:
            os.close(fd)
