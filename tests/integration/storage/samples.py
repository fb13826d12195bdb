"""One valid sample file per default allowed extension, built in memory."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "hello " * 500)
    return buffer.getvalue()


def samples(size: int = 200_000) -> dict[str, bytes]:
    """Extension -> content that passes the signature check, ``size``-ish bytes.

    Large enough to span several encryption segments (64 KiB) and compression blocks.
    """
    noise = os.urandom(size)
    text = ("Ad copy, ünïcödé €, line\n" * (size // 26 + 1)).encode()
    return {
        ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + noise,
        ".jpeg": b"\xff\xd8\xff\xdb\x00\x43" + noise,
        ".png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise,
        ".gif": b"GIF89a" + noise,
        ".webp": b"RIFF" + len(noise).to_bytes(4, "little") + b"WEBPVP8 " + noise,
        ".svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">\n'
        + b'<rect width="1" height="1"/>\n' * (size // 30)
        + b"</svg>\n",
        ".mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + noise,
        ".webm": b"\x1a\x45\xdf\xa3" + noise,
        ".mov": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00" + noise,
        ".pdf": b"%PDF-1.7\n" + noise,
        ".txt": text,
        ".csv": b"campaign,clicks\n"
        + b"".join(b"c%d,%d\n" % (i, i * 7) for i in range(size // 10)),
        ".json": json.dumps([{"id": i, "name": f"ad {i} é"} for i in range(size // 25)]).encode(),
        ".html": b"<!doctype html><html><body>" + text + b"</body></html>",
        ".zip": _zip(),
        ".gz": gzip.compress(text),
    }
