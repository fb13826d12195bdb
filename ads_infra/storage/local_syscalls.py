"""Linux calls the os module lacks, for local storage: a create-only rename, a cached open,
an early start of a file's writeback.

``rename_noreplace``: ``renameat2(RENAME_NOREPLACE)`` through libc.

The os module has no create-only rename. Local storage used to publish a
written temporary file with ``os.link`` (which fails on an existing name) and
then remove the temporary name: two directory operations, each with its own
path lookup and journal update. ``renameat2`` with ``RENAME_NOREPLACE`` does
the same in one atomic call, like the plain rename of an overwrite, and never
leaves the object under two names.

It needs Linux 3.15+, glibc 2.28+ (or another libc exporting ``renameat2``)
and a filesystem that supports the flag (ext4, xfs, btrfs, tmpfs, ...).
Elsewhere :func:`rename_noreplace` says it could not, and the caller links
instead.

``open_cached``: ``openat2`` with ``RESOLVE_CACHED`` (Linux 5.12+), an open
that fails with EAGAIN instead of reading a folder from disk, so that it may
run on the event loop (:mod:`.local_nowait`); with ``RESOLVE_BENEATH`` and
``RESOLVE_NO_SYMLINKS`` it also refuses a path that leaves the folder or
passes a link, in the same call. ``generation``: the inode's generation
number (``FS_IOC_GETVERSION``), which with its number tells one file from a
later one that reuses the number.

``start_writeback``: ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which asks
the kernel to start writing a file's dirty pages without waiting for them, so
that the device works while the thread computes what the fsync must still
cover (a large save's checksums and metadata).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import sys
from collections.abc import Callable

__all__ = ["generation", "open_cached", "rename_noreplace", "start_writeback"]

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# errnos meaning "not here" (no such syscall, or the filesystem does not know the
# flag), not "this rename failed": the caller falls back to os.link.
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def _load() -> Callable[[int, bytes, int, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):  # no libc symbol (glibc < 2.28, some musl builds)
        return None
    # (olddirfd, oldpath, newdirfd, newpath, flags)
    function.argtypes = (ctypes.c_int, ctypes.c_char_p) * 2 + (ctypes.c_uint,)
    function.restype = ctypes.c_int
    return function


_renameat2 = _load()


def rename_noreplace(src: str, dst: str) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError), atomically.

    Returns False, having done nothing, where the system or the filesystem
    cannot; other failures raise OSError as ``os.rename`` would.
    """
    if _renameat2 is None:
        return False
    # ctypes releases the GIL for the call, as os.rename does.
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE):
        code = ctypes.get_errno()
        if code in _UNSUPPORTED:
            return False
        raise OSError(code, os.strerror(code), src, None, dst)
    return True


# openat2(2): 437 on the architectures that share the unified table of new calls;
# elsewhere (alpha, ia64, mips) another number, so not used there.
_SYS_OPENAT2 = 437
_UNIFIED = {"x86_64", "aarch64", "arm64", "armv7l", "armv6l", "riscv64", "ppc64le", "ppc64"}
_UNIFIED |= {"s390x", "i386", "i686", "loongarch64"}
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE_CACHED = 0x20


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def _load_openat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux") or platform.machine() not in _UNIFIED:
        return None
    try:
        # CDLL lets other threads run during the call, should an open ever wait
        # (a device, a filesystem that answers slowly) despite the flags below.
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    # syscall(number, dirfd, path, how, size): every argument a long to the kernel.
    function.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_void_p)
    function.argtypes += (ctypes.c_size_t,)
    function.restype = ctypes.c_long
    return function


_syscall = _load_openat2()
# O_NONBLOCK: a FIFO put in an object's place must not wait for a writer (regular
# files ignore it); O_NOATIME: a read must not write its inode.
_READ_CACHED = _OpenHow(
    os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOATIME", 0),
    0,
    _RESOLVE_CACHED | _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS,
)
_HOW = ctypes.addressof(_READ_CACHED)
_HOW_SIZE = ctypes.sizeof(_OpenHow)
# errnos meaning this system cannot (no openat2, no RESOLVE_CACHED, a sandbox refusing it).
CANNOT = frozenset({errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


def open_cached(folder: int, path: bytes) -> int:
    """A read-only descriptor of ``path`` under the open ``folder``, opened without waiting.

    Returns the descriptor, or minus the errno: EAGAIN when the path is not all
    in the kernel's caches, ELOOP for a link on the way, EXDEV for a path that
    leaves ``folder``, ENOENT, EPERM (``O_NOATIME`` on a file of another user,
    or a sandbox refusing the call), and one of :data:`CANNOT` where the system
    has no such open.
    """
    if _syscall is None:
        return -errno.ENOSYS
    fd: int = _syscall(_SYS_OPENAT2, folder, path, _HOW, _HOW_SIZE)
    return fd if fd >= 0 else -ctypes.get_errno()


_FS_IOC_GETVERSION = 0x80087601 if ctypes.sizeof(ctypes.c_long) == 8 else 0x80047601
_LONG = bytes(ctypes.sizeof(ctypes.c_long))


def generation(fd: int) -> int | None:
    """The open file's inode generation, or None where the filesystem keeps none (tmpfs)."""
    try:
        found = fcntl.ioctl(fd, _FS_IOC_GETVERSION, _LONG)
    except OSError:
        return None
    return int.from_bytes(found, sys.byteorder)


_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None).sync_file_range
    except (OSError, AttributeError):
        return None
    # (fd, offset, nbytes, flags); nbytes 0: to the end of the file.
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def start_writeback(fd: int) -> None:
    """Start writing the open file's dirty pages to its device; do not wait.

    Only an early start: durability still comes from the fsync that
    follows. Does nothing where the system has no such call, and a failure
    is left for that fsync to report (it covers the same pages).
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)
