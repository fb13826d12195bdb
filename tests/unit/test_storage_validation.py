"""File names, extensions, content signatures and object keys (no I/O)."""

from __future__ import annotations

import pytest

from ads_infra.config import DEFAULT_ALLOWED_EXTENSIONS
from ads_infra.errors import FileTypeNotAllowedError, InvalidFileNameError
from ads_infra.storage.base import (
    validate_chunk_size,
    validate_expires_in,
    validate_key,
    validate_metadata,
)
from ads_infra.storage.validation import ContentChecker, clean_filename

ALLOWED = list(DEFAULT_ALLOWED_EXTENSIONS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("document.pdf", ("document.pdf", ".pdf")),
        ("../../etc/passwd.txt", ("passwd.txt", ".txt")),
        ("C:\\Users\\x\\Photo.JPG", ("Photo.jpg", ".jpg")),
        ("CON.txt", ("_CON.txt", ".txt")),
        ("report.pdf. . ", ("report.pdf", ".pdf")),
        ('a<b>c"d|e?.csv', ("a_b_c_d_e_.csv", ".csv")),
        ("...hidden.txt", ("hidden.txt", ".txt")),
    ],
)
def test_names_are_cleaned(name: str, expected: tuple[str, str]) -> None:
    assert clean_filename(name, ALLOWED) == expected


@pytest.mark.parametrize("name", ["a\x00.txt", "a\nb.txt", "\u202egnp.txt", "", "..", ".txt", "/"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidFileNameError):
        clean_filename(name, ALLOWED)


def test_long_names_are_shortened() -> None:
    name, ext = clean_filename("€" * 1000 + ".txt", ALLOWED)
    assert ext == ".txt" and name.endswith(".txt") and len(name) < 260


def test_extension_allow_list() -> None:
    with pytest.raises(FileTypeNotAllowedError, match=r"'\.exe' is not allowed"):
        clean_filename("setup.exe", ALLOWED)
    with pytest.raises(InvalidFileNameError, match="no extension"):
        clean_filename("README", ALLOWED)
    with pytest.raises(InvalidFileNameError, match="must be a string"):
        clean_filename(b"x.txt", ALLOWED)


@pytest.mark.parametrize(
    ("extension", "good", "bad"),
    [
        (".png", b"\x89PNG\r\n\x1a\n....", b"GIF89a...."),
        (".jpg", b"\xff\xd8\xff\xe0..", b"\x89PNG\r\n\x1a\n"),
        (".gif", b"GIF87a....", b"%PDF-1.4"),
        (".webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"RIFF\x00\x00\x00\x00AVI "),
        (".pdf", b"%PDF-1.7\n", b"<html>"),
        (".zip", b"PK\x03\x04....", b"Rar!\x1a\x07"),
        (".gz", b"\x1f\x8b\x08\x00", b"BZh91AY"),
        (".mp4", b"\x00\x00\x00\x18ftypisom", b"\x1a\x45\xdf\xa3"),
        (".webm", b"\x1a\x45\xdf\xa3\x9f", b"\x00\x00\x00\x18ftypisom"),
        (".txt", "héllo €".encode(), b"\xff\xfe\x00bad"),
        (".json", b'{"a": 1}', b'{"a": "\xc3"}'),
        (".svg", b'<?xml version="1.0"?><svg xmlns="x"/>', b"<html><body/></html>"),
    ],
)
def test_content_must_match_extension(extension: str, good: bytes, bad: bytes) -> None:
    ok = ContentChecker(extension, f"f{extension}")
    ok.feed(good)
    ok.feed(b"", final=True)
    with pytest.raises(FileTypeNotAllowedError, match=f"f\\{extension}"):
        checker = ContentChecker(extension, f"f{extension}")
        checker.feed(bad)
        checker.feed(b"", final=True)


def test_signature_is_checked_across_tiny_chunks() -> None:
    checker = ContentChecker(".png", "a.png")
    for byte in b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000:
        checker.feed(bytes([byte]))
    checker.feed(b"", final=True)
    assert checker.head_checked


def test_utf8_split_across_chunks_is_fine() -> None:
    checker = ContentChecker(".txt", "a.txt")
    data = "€uro".encode()
    checker.feed(data[:1])
    checker.feed(data[1:])
    checker.feed(b"", final=True)
    truncated = ContentChecker(".txt", "b.txt")
    truncated.feed(data[:2])
    with pytest.raises(FileTypeNotAllowedError):
        truncated.feed(b"", final=True)


@pytest.mark.parametrize(
    "key", ["", "/a", "a/../b", "..", "a//b", "a\\b", "C:x", "a\x00", "x" * 513, "a/./b", "a/"]
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidFileNameError):
        validate_key(key)


def test_metadata_rules() -> None:
    assert validate_metadata({"campaign-id": "42"}) == {"campaign-id": "42"}
    for bad in ({"Upper": "x"}, {"a": "é"}, {"a": "line\nbreak"}, {"k": "v" * 3000}):
        with pytest.raises(InvalidFileNameError):
            validate_metadata(bad)


S3_HEADERS = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-type",
    "expires",
    "storage-class",
]


@pytest.mark.parametrize("name", S3_HEADERS)
def test_metadata_named_like_an_s3_header_is_refused(name: str) -> None:
    # obstore would send it as that header (a .txt served as text/html) and read it
    # back as an attribute, not as the caller's metadata.
    with pytest.raises(InvalidFileNameError, match=f"{name!r} is reserved") as caught:
        validate_metadata({name: "x"})
    assert ", ".join(S3_HEADERS) in str(caught.value)  # says which names to avoid
    assert validate_metadata({f"x-{name}": "x"}) == {f"x-{name}": "x"}


def test_metadata_room_is_what_the_caller_is_left() -> None:
    assert validate_metadata({"note": "x" * 96}, room=100) == {"note": "x" * 96}
    with pytest.raises(InvalidFileNameError, match=r"101 bytes .* at most 100 fit \(1948 of"):
        validate_metadata({"note": "x" * 97}, room=100)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "64", True, None])
def test_chunk_size_must_be_a_positive_whole_number(bad: object) -> None:
    with pytest.raises(ValueError, match=r"chunk_size must be a whole number of bytes >= 1"):
        validate_chunk_size(bad)
    assert validate_chunk_size(1) == 1


@pytest.mark.parametrize("bad", [0, -5, 604_801, 30 * 86_400, 60.0, "60", None])
def test_presigned_url_lifetime_is_within_s3_limits(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expires_in must be whole seconds from 1 to 604800"):
        validate_expires_in(bad)
    assert validate_expires_in(1) == 1 and validate_expires_in(604_800) == 604_800
