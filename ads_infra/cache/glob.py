"""Redis glob patterns: escaping text for them, and matching them in process memory.

The memory backend must delete exactly the keys Redis's ``SCAN MATCH`` would
for the same pattern, and namespaces are escaped so that a ``*`` in one is
never read as a wildcard.
"""

from __future__ import annotations

import re

__all__ = ["Glob", "compile_glob", "glob_escape"]

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so ``text`` matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _signed(byte: int) -> int:
    # Redis compares pattern and key bytes as C chars, signed on the platforms it runs on.
    return byte - 256 if byte > 127 else byte


_STAR = None  # the token of a ``*``; every other token is the set of bytes it matches


def _tokens(pattern: str) -> list[frozenset[int] | None]:
    """Parse a Redis glob into tokens: ``_STAR``, or the bytes one position may hold.

    A port of Redis's ``stringmatchlen`` (util.c): the memory backend must
    match exactly the keys ``SCAN MATCH`` would. fnmatch differs on ``[^...]``
    and escapes, and Redis works on bytes (``?`` is one byte of ``é``), closes a
    class at a ``]`` right after ``[`` and reads ``[a-]`` as a range ending at ``]``.
    """
    raw = pattern.encode("utf-8", "surrogatepass")
    out: list[frozenset[int] | None] = []
    i, n = 0, len(raw)
    while i < n:
        char = raw[i]
        i += 1
        if char == 0x5C and i < n:  # backslash: the next byte is literal
            out.append(frozenset({raw[i]}))
            i += 1
        elif char == 0x2A:  # *: consecutive stars are one
            if not out or out[-1] is not _STAR:
                out.append(_STAR)
        elif char == 0x3F:  # ?
            out.append(_ANY)
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
            out.append(_ANY - members if negate else frozenset(members))
        else:
            out.append(frozenset({char}))
    return out


_ANY = frozenset(range(256))


class Glob:
    """A compiled Redis glob; :meth:`match` runs in O(len(key) * len(pattern)) time at worst.

    A regex compiled from a glob backtracks: ``*a*a*a...b`` against a
    40-character key took minutes. Here a failed match only ever goes back to
    the last ``*`` (the classic wildcard algorithm), so no key or pattern can
    block the event loop. Patterns with at most one ``*`` (the usual
    ``user:42:*``) keep a regex, which runs in C and cannot blow up with one star.
    """

    __slots__ = ("_regex", "_tokens", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._tokens = _tokens(pattern)
        self._regex: re.Pattern[bytes] | None = None
        if self._tokens.count(_STAR) <= 1:
            self._regex = re.compile(
                b"".join(b".*" if t is _STAR else _byte_class(t) for t in self._tokens) + b"\\Z",
                re.DOTALL,
            )

    def match(self, key: bytes, pos: int = 0) -> bool:
        """Whether ``key[pos:]`` matches the whole pattern."""
        if self._regex is not None:
            return self._regex.match(key, pos) is not None
        tokens, n_tokens, n_key = self._tokens, len(self._tokens), len(key)
        ti, ki, star, mark = 0, pos, -1, pos
        while ki < n_key:
            token = tokens[ti] if ti < n_tokens else _ANY
            if ti < n_tokens and token is not _STAR and key[ki] in token:
                ti += 1
                ki += 1
            elif ti < n_tokens and token is _STAR:
                star, mark = ti, ki
                ti += 1
            elif star >= 0:
                ti, mark = star + 1, mark + 1
                ki = mark
            else:
                return False
        while ti < n_tokens and tokens[ti] is _STAR:
            ti += 1
        return ti == n_tokens


def _byte_class(members: frozenset[int] | None) -> bytes:
    if not members:
        return b"(?!)"
    return b"[" + b"".join(b"\\x%02x" % b for b in sorted(members)) + b"]"


def compile_glob(pattern: str) -> Glob:
    """Compile a Redis glob (``*``, ``?``, ``[a-z]``, ``[^x]``, escapes) for UTF-8 keys."""
    return Glob(pattern)
