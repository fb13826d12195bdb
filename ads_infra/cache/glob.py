"""Redis glob patterns: escaping text for them, and matching them in process memory.

The memory backend must delete exactly the keys Redis's ``SCAN MATCH`` would
for the same pattern, and namespaces are escaped so that a ``*`` in one is
never read as a wildcard.
"""

from __future__ import annotations

import re

__all__ = ["glob_escape", "glob_to_regex"]

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so ``text`` matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _signed(byte: int) -> int:
    # Redis compares pattern and key bytes as C chars, signed on the platforms it runs on.
    return byte - 256 if byte > 127 else byte


def _byte_class(members: set[int]) -> bytes:
    if not members:
        return b"(?!)"
    return b"[" + b"".join(b"\\x%02x" % b for b in sorted(members)) + b"]"


def glob_to_regex(pattern: str) -> re.Pattern[bytes]:
    """Compile a Redis glob (``*``, ``?``, ``[a-z]``, ``[^x]``, escapes) to a regex on UTF-8 bytes.

    A port of Redis's ``stringmatchlen`` (util.c), because the memory backend
    must match exactly the keys ``SCAN MATCH`` would: fnmatch differs on
    ``[^...]`` and escapes, and Redis works on bytes (``?`` is one byte of
    ``é``), closes a class at a ``]`` right after ``[`` and reads ``[a-]`` as a
    range ending at ``]``. Match keys encoded as UTF-8.
    """
    raw = pattern.encode("utf-8", "surrogatepass")
    out: list[bytes] = []
    i, n = 0, len(raw)
    while i < n:
        char = raw[i]
        i += 1
        if char == 0x5C and i < n:  # backslash: the next byte is literal
            out.append(_byte_class({raw[i]}))
            i += 1
        elif char == 0x2A:  # *
            out.append(b".*")
        elif char == 0x3F:  # ?
            out.append(b".")
        elif char == 0x5B:  # [
            negate = i < n and raw[i] == 0x5E  # ^
            i += negate
            members: set[int] = set()
            while i < n and raw[i] != 0x5D:  # up to "]" (Redis tolerates a missing one)
                if raw[i] == 0x5C and n - i >= 2:
                    members.add(raw[i + 1])
                    i += 2
                elif n - i >= 3 and raw[i + 1] == 0x2D:  # a range, "]" may end it
                    low, high = sorted((_signed(raw[i]), _signed(raw[i + 2])))
                    members.update(b for b in range(256) if low <= _signed(b) <= high)
                    i += 3
                else:
                    members.add(raw[i])
                    i += 1
            i += 1
            out.append(_byte_class(set(range(256)) - members if negate else members))
        else:
            out.append(_byte_class({char}))
    return re.compile(b"".join(out) + b"\\Z", re.DOTALL)
