"""What the manager checks before it stores a byte: the name, the extension, the content.

The content check is a small signature table, hand-written on purpose:
python-magic needs the libmagic C library, and the pure-Python guessers
(``filetype``, ``puremagic``) answer "what is this?" while we ask the narrower
"do these bytes match the extension the caller claimed?" for a dozen types,
and they do not cover the text types (checked here as strict UTF-8).
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote

from ads_infra.core.errors import FileTypeNotAllowedError, InvalidFileNameError

__all__ = [
    "COMPRESSED_EXTENSIONS",
    "CONTENT_TYPES",
    "TEXT_EXTENSIONS",
    "ContentChecker",
    "clean_filename",
    "content_type_for",
]

MAX_NAME_CHARS = 255
MAX_ENCODED_NAME = 600
_WINDOWS_RESERVED = {
    "con", "prn", "aux", "nul", "conin$", "conout$",
    *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)),
}  # fmt: skip
_UNSAFE_CHARS = re.compile(r'[<>:"|?*/\\]')

CONTENT_TYPES: dict[str, str] = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".pdf": "application/pdf",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".zip": "application/zip",
    ".gz": "application/gzip",
}
TEXT_EXTENSIONS = frozenset({".txt", ".csv", ".json", ".html", ".svg", ".xml", ".md"})
# Compressing these again costs CPU and saves nothing.
COMPRESSED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".webm", ".mov", ".pdf", ".zip", ".gz"}
)


def _ftyp(head: bytes) -> bool:
    return head[4:8] == b"ftyp"


# extension -> test of the first bytes (at most HEAD_BYTES).
_SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    ".png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    ".jpg": lambda h: h.startswith(b"\xff\xd8\xff"),
    ".jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    ".gif": lambda h: h.startswith((b"GIF87a", b"GIF89a")),
    ".webp": lambda h: h.startswith(b"RIFF") and h[8:12] == b"WEBP",
    ".pdf": lambda h: h.startswith(b"%PDF-"),
    ".zip": lambda h: h.startswith((b"PK\x03\x04", b"PK\x05\x06")),
    ".gz": lambda h: h.startswith(b"\x1f\x8b"),
    ".mp4": _ftyp,
    ".mov": lambda h: _ftyp(h) or h[4:8] in (b"moov", b"mdat", b"wide", b"free"),
    ".webm": lambda h: h.startswith(b"\x1a\x45\xdf\xa3"),
}
HEAD_BYTES = 64


def content_type_for(extension: str) -> str:
    return CONTENT_TYPES.get(extension, "application/octet-stream")


def clean_filename(filename: object, allowed_extensions: list[str]) -> tuple[str, str]:
    """Return ``(safe display name, lowercase extension)`` or raise a validation error.

    The caller's name never becomes a path: the manager stores under a random
    name and keeps this cleaned name only as metadata. Directory parts, drive
    letters, reserved device names and unsafe characters are dropped or
    replaced; NUL and other control characters, and names with nothing left,
    are refused.
    """
    if not isinstance(filename, str):
        raise InvalidFileNameError(f"filename must be a string, got {type(filename).__name__}")
    # Printable ASCII has no control or formatting character and is its own NFC
    # form: the common case skips the per-character checks.
    plain = filename.isascii() and filename.isprintable()
    if not plain and any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in filename):
        raise InvalidFileNameError(
            f"filename {ascii(filename)[:80]} contains control or invisible formatting "
            "characters (NUL, newline, bidi overrides); rename the file"
        )
    name = filename if plain else unicodedata.normalize("NFC", filename)
    name = re.split(r"[/\\]", name)[-1]  # a path's last part: "../../x.png" -> "x.png"
    name = re.sub(r"^[A-Za-z]:", "", name)
    name = name.strip().rstrip(". ")  # Windows drops trailing dots and spaces
    stem, ext = os.path.splitext(name)
    ext = ext.lower()
    if not stem.strip(". ") or not ext:
        raise InvalidFileNameError(
            f"filename {ascii(filename)[:80]} has no usable name or no extension; "
            "pass a name like 'report.pdf'"
        )
    if ext not in allowed_extensions:
        raise FileTypeNotAllowedError(
            f"extension {ext!r} is not allowed; allowed: {', '.join(allowed_extensions)} "
            "(storage.allowed_extensions)"
        )
    stem = _UNSAFE_CHARS.sub("_", stem).lstrip(".")
    if stem.lower().split(".")[0] in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    stem = stem[: MAX_NAME_CHARS - len(ext)]
    # The name travels as percent-encoded S3 user metadata (2 KiB in all): cap its size.
    while len(quote(stem, safe="")) > MAX_ENCODED_NAME - len(ext):
        stem = stem[: len(stem) * 3 // 4]
    return f"{stem}{ext}", ext


class ContentChecker:
    """Checks a stream's bytes against the extension as they arrive.

    Binary types: the first bytes must carry the type's signature. Text types:
    the whole content must decode as strict UTF-8 (an SVG must also look like
    one). Extensions with no rule pass.
    """

    def __init__(self, extension: str, display_name: str) -> None:
        self.extension = extension
        self._name = display_name
        self._signature = _SIGNATURES.get(extension)
        self._text = extension in TEXT_EXTENSIONS
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict") if self._text else None
        self._head = b""
        self.head_checked = self._signature is None and extension != ".svg"

    def _mismatch(self, what: str) -> FileTypeNotAllowedError:
        return FileTypeNotAllowedError(
            f"{self._name!r}: the content is not {what}; the extension must match the content"
        )

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        if not self.head_checked:
            self._head += chunk[: HEAD_BYTES * 16]
            if len(self._head) >= HEAD_BYTES * 16 or final:
                self._check_head()
        if self._decoder is not None:
            try:
                self._decoder.decode(chunk, final)
            except UnicodeDecodeError:
                raise self._mismatch("UTF-8 text") from None

    def _check_head(self) -> None:
        self.head_checked = True
        if self._signature is not None and not self._signature(self._head[:HEAD_BYTES]):
            raise self._mismatch(f"a {self.extension[1:].upper()} file (wrong signature)")
        if self.extension == ".svg" and b"<svg" not in self._head.lower():
            raise self._mismatch("an SVG image (no <svg> element near the start)")
        self._head = b""
