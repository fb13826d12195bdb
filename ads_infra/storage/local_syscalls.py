"""Two Linux file calls for local storage through libc (ctypes), where os falls short.

* ``renameat2(RENAME_NOREPLACE)``: the os module has no create-only rename.
  Local storage used to publish a written temporary file with ``os.link``
  (which fails on an existing name) and then remove the temporary name: two
  directory operations, each with its own path lookup and journal update.
  :func:`rename_noreplace` does the same in one atomic call, like the plain
  rename of an overwrite, and never leaves the object under two names. It
  needs Linux 3.15+, a libc exporting ``renameat2`` (glibc 2.28+) and a
  filesystem that knows the flag (ext4, xfs, btrfs, tmpfs, ...); elsewhere it
  says it could not, and the caller links instead.
* ``fgetxattr`` into a 4 KiB buffer: ``os.getxattr`` first tries 128 bytes,
  too few for the metadata of a stored file, then asks again with 64 KiB; a
  read paid for two lookups of the attribute. :func:`get_xattr` asks once.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import Any

__all__ = ["get_xattr", "rename_noreplace"]

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# errnos meaning "not here" (no such syscall, or the filesystem does not know the
# flag), not "this rename failed": the caller falls back to os.link.
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}
# Room for the JSON of any metadata within base.MAX_METADATA_BYTES; a larger value is
# read by os.getxattr.
_XATTR_BUFFER = 4096


def _libc_function(name: str, argtypes: tuple[Any, ...], restype: Any) -> Any:
    """``name`` from the C library, or None off Linux or where the libc lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = restype
    return function


# (olddirfd, oldpath, newdirfd, newpath, flags) -> 0 or -1
_renameat2 = _libc_function(
    "renameat2", (ctypes.c_int, ctypes.c_char_p) * 2 + (ctypes.c_uint,), ctypes.c_int
)
# (fd, name, buffer, size) -> length or -1
_fgetxattr = _libc_function(
    "fgetxattr", (ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t), ctypes.c_ssize_t
)


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


def get_xattr(fd: int, name: str) -> bytes:
    """The extended attribute ``name`` of the open file ``fd``: ``os.getxattr(fd, name)``,
    in one call when it fits in 4 KiB. Raises OSError as that does."""
    if _fgetxattr is None:
        return os.getxattr(fd, name)
    buffer = ctypes.create_string_buffer(_XATTR_BUFFER)
    length = _fgetxattr(fd, name.encode(), buffer, _XATTR_BUFFER)
    if length < 0:
        code = ctypes.get_errno()
        if code == errno.ERANGE:  # larger than ours ever are: let os find its size
            return os.getxattr(fd, name)
        raise OSError(code, os.strerror(code))
    return buffer.raw[:length]
