"""Create-only rename for local storage: Linux ``renameat2(RENAME_NOREPLACE)`` through libc.

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
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable

__all__ = ["rename_noreplace"]

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
