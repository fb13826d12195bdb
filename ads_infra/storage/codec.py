"""The byte pipeline between a caller's file and what a backend keeps.

Write: size limit -> content check -> sha256 and xxh3-128 of the plaintext ->
gzip (text-like types only) -> AES-256-GCM. Read: the reverse, with the size
and a checksum verified against the metadata: xxh3-128 where the metadata has
one, sha256 for files written before it did.

Why two hashes: the sha256 is the file's published digest (``get_file_info``,
what a client compares against), while a read only has to catch damage. The
metadata sits beside the bytes (the same file's xattr, its sidecar, the S3
object), so whoever can alter the bytes can alter the recorded digest too: a
cryptographic hash buys a read nothing over xxh3-128 (xxhash), which detects
corruption as well at a twentieth of the CPU time.

Encryption is AES-GCM from ``cryptography`` applied to 64 KiB segments (the
STREAM construction, as in Tink's streaming AEAD): each segment has its own
nonce (a random per-object prefix + the segment counter + a last-segment flag)
and tag, so a stream is authenticated segment by segment and a reader never
receives a byte that failed authentication; reordering, truncating or
appending segments fails too. One-shot AESGCM over a whole file would need
the whole file in memory, and a streaming GCM decryptor hands out plaintext
before the tag is checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import zlib
from collections.abc import Callable
from typing import Any

import xxhash
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ads_infra.core.errors import ConfigurationError, FileTooLargeError, IntegrityCheckError
from ads_infra.core.redact import Secret

__all__ = [
    "ENCRYPTED_MAGIC",
    "ENCRYPTION_SCHEME",
    "Decoder",
    "Encoder",
    "EncryptionKey",
]

ENCRYPTION_SCHEME = "aes-256-gcm-stream-v1"
SEGMENT = 64 * 1024
_TAG = 16
_PREFIX = 7  # nonce = 7-byte prefix + 4-byte counter + 1-byte last flag
_MAGIC = b"ADSE1"
ENCRYPTED_MAGIC = _MAGIC
HEADER_SIZE = len(_MAGIC) + _PREFIX


class EncryptionKey:
    """A 256-bit AES key read from configuration; never shows itself.

    Accepts 64 hex characters or 32 bytes in (URL-safe) base64. ``key_id`` is
    a non-secret fingerprint stored with each file so that a wrong key is
    reported as such, not as corruption.
    """

    __slots__ = ("_aead", "key_id")

    def __init__(self, secret: Secret | str) -> None:
        text = secret.get_secret_value() if isinstance(secret, Secret) else secret
        raw = self._parse(text.strip())
        self._aead = AESGCM(raw)
        self.key_id = hmac.new(raw, b"ads-storage key id", hashlib.sha256).hexdigest()[:16]

    @staticmethod
    def _parse(text: str) -> bytes:
        if len(text) == 64:
            try:
                return bytes.fromhex(text)
            except ValueError:
                pass
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigurationError(
                "must be 32 random bytes as 64 hex characters or base64; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`",
                key="storage.encryption_key",
            )
        return raw

    @classmethod
    def generate(cls) -> str:
        return os.urandom(32).hex()

    def __repr__(self) -> str:
        return f"EncryptionKey(key_id={self.key_id!r})"

    def seal(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, data, aad)

    def open(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(nonce, data, aad)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class Encoder:
    """Plaintext chunks in, stored chunks out; ``feed`` may return ``b""``."""

    def __init__(
        self,
        *,
        name: str,
        max_size: int,
        check: Callable[[bytes, bool], None] | None = None,
        compress: bool = False,
        key: EncryptionKey | None = None,
    ) -> None:
        self._name = name
        self._max_size = max_size
        self._check = check
        self._hash = hashlib.sha256()
        self._fast = xxhash.xxh3_128()
        self.size = 0
        self.encoded_size = 0  # after compression, before encryption
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None  # gzip
        self._key = key
        self._pending = bytearray()
        self._counter = 0
        self._prefix = os.urandom(_PREFIX) if key is not None else b""  # the nonce's
        self._header_sent = False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def xxh3(self) -> str:
        return self._fast.hexdigest()

    def feed(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self._max_size:
            raise FileTooLargeError(
                f"{self._name!r} is larger than the limit of {self._max_size} bytes "
                "(storage.max_file_size); nothing was stored"
            )
        if self._check is not None:
            self._check(chunk, False)
        self._hash.update(chunk)
        self._fast.update(chunk)
        out = self._zip.compress(chunk) if self._zip is not None else chunk
        self.encoded_size += len(out)
        return self._seal(out, final=False) if self._key is not None else out

    def finish(self) -> bytes:
        if self._check is not None:
            self._check(b"", True)
        out = self._zip.flush() if self._zip is not None else b""
        self.encoded_size += len(out)
        return self._seal(out, final=True) if self._key is not None else out

    @property
    def compressing(self) -> bool:
        return self._zip is not None

    @property
    def encrypting(self) -> bool:
        return self._key is not None

    @property
    def shrank(self) -> bool:
        """Compression made the content smaller (False when it is off)."""
        return self._zip is not None and self.encoded_size < self.size

    def _seal(self, data: bytes, *, final: bool) -> bytes:
        assert self._key is not None
        self._pending += data
        parts: list[bytes] = []
        if not self._header_sent:
            parts.append(_MAGIC + self._prefix)
            self._header_sent = True
        aad = _MAGIC + self._prefix
        # Keep the last (possibly partial) segment back until we know it is the last.
        while len(self._pending) > SEGMENT or final:
            if final and len(self._pending) <= SEGMENT:
                segment, self._pending = bytes(self._pending), bytearray()
                parts.append(
                    self._key.seal(_nonce(self._prefix, self._counter, True), segment, aad)
                )
                break
            segment = bytes(self._pending[:SEGMENT])
            del self._pending[:SEGMENT]
            parts.append(self._key.seal(_nonce(self._prefix, self._counter, False), segment, aad))
            self._counter += 1
        return b"".join(parts)


class Decoder:
    """Stored chunks in, verified plaintext out (the reverse of :class:`Encoder`).

    ``expected_size`` and the checksums come from the metadata; None skips
    that check (objects written by other tools). With ``expected_xxh3`` the
    content is checked against it alone (see the module's docstring), else
    against ``expected_sha256``.
    """

    def __init__(
        self,
        *,
        name: str,
        compressed: bool = False,
        encrypted: bool = False,
        key: EncryptionKey | None = None,
        key_id: str | None = None,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        expected_xxh3: str | None = None,
        max_size: int | None = None,
    ) -> None:
        self._name = name
        # Never inflate past what the metadata recorded, nor past max_size (the
        # metadata may be planted too): a small gzip bomb cannot fill memory.
        bounds = [b for b in (expected_size, max_size) if b is not None]
        self._limit = min(bounds) if bounds else None
        if encrypted:
            if key is None:
                raise ConfigurationError(
                    f"{name!r} is stored encrypted and no key is configured; set "
                    "ADS_STORAGE_ENCRYPTION_KEY to the key that wrote it",
                    key="storage.encryption_key",
                )
            if key_id and key_id != key.key_id:
                raise IntegrityCheckError(
                    f"{name!r} was encrypted with key {key_id}, but the configured key is "
                    f"{key.key_id}; set ADS_STORAGE_ENCRYPTION_KEY to the key that wrote it"
                )
        self._key = key if encrypted else None
        self._unzip = zlib.decompressobj(31) if compressed else None
        self._expected_size = expected_size
        self._hash: Any
        self._expected: str | None
        if expected_xxh3:
            self._expected, self._algorithm = expected_xxh3, "xxh3-128"
            self._hash = xxhash.xxh3_128()
        else:
            self._expected, self._algorithm = expected_sha256, "sha256"
            self._hash = hashlib.sha256()
        self.size = 0
        self._pending = bytearray()
        self._prefix: bytes | None = None
        self._counter = 0
        self._done = False

    def _corrupt(self, why: str) -> IntegrityCheckError:
        return IntegrityCheckError(
            f"{self._name!r} failed its integrity check ({why}); the stored file was altered "
            "or damaged. Restore it from a backup or delete and upload it again"
        )

    def feed(self, chunk: bytes) -> bytes:
        data = self._open(chunk, final=False) if self._key is not None else chunk
        return self._plain(data)

    def decode_all(self, stored: bytes) -> bytes:
        """The plaintext of a whole stored object: :meth:`feed` and :meth:`finish` at once."""
        if self._key is not None or self._unzip is not None:
            head = self.feed(stored)
            tail = self.finish()
            return head + tail if tail else head
        # Stored as is: nothing to decode, so the bytes are checked as they are.
        self.size = len(stored)
        if self._expected_size is not None and self.size != self._expected_size:
            if self.size > self._expected_size:  # the message feed() gives
                raise self._corrupt(f"more than the recorded {self._expected_size} bytes")
            raise self._corrupt(f"{self.size} bytes instead of {self._expected_size}")
        if self._expected:
            if self._algorithm == "xxh3-128":
                digest = xxhash.xxh3_128_hexdigest(stored)
            else:
                digest = hashlib.sha256(stored).hexdigest()
            if not hmac.compare_digest(digest, self._expected):
                raise self._corrupt(f"{self._algorithm} checksum mismatch")
        return stored

    def finish(self) -> bytes:
        out = self._plain(self._open(b"", final=True)) if self._key is not None else b""
        if self._unzip is not None:
            try:
                tail = self._unzip.flush()
            except zlib.error:
                raise self._corrupt("the compressed data is invalid") from None
            if not self._unzip.eof:
                raise self._corrupt("the compressed data is truncated")
            out += self._count(tail)
        if self._expected_size is not None and self.size != self._expected_size:
            raise self._corrupt(f"{self.size} bytes instead of {self._expected_size}")
        if self._expected and not hmac.compare_digest(self._hash.hexdigest(), self._expected):
            raise self._corrupt(f"{self._algorithm} checksum mismatch")
        return out

    def _count(self, data: bytes) -> bytes:
        self.size += len(data)
        if self._expected_size is not None and self.size > self._expected_size:
            raise self._corrupt(f"more than the recorded {self._expected_size} bytes")
        self._hash.update(data)
        return data

    def _plain(self, data: bytes) -> bytes:
        if self._unzip is not None and data:
            try:
                data = self._inflate(data)
            except zlib.error:
                raise self._corrupt("the compressed data is invalid") from None
        return self._count(data) if data else b""

    def _inflate(self, data: bytes) -> bytes:
        assert self._unzip is not None
        if self._limit is None:
            return self._unzip.decompress(data)
        out = bytearray()
        while data:
            room = self._limit - self.size - len(out) + 1
            out += self._unzip.decompress(data, max(room, 1))
            if self.size + len(out) > self._limit:
                raise self._corrupt(f"it expands beyond {self._limit:,} bytes")
            data = self._unzip.unconsumed_tail
        return bytes(out)

    def _open(self, data: bytes, *, final: bool) -> bytes:
        assert self._key is not None
        self._pending += data
        if self._prefix is None:
            if len(self._pending) < HEADER_SIZE:
                if final:
                    raise self._corrupt("the encryption header is missing")
                return b""
            if bytes(self._pending[: len(_MAGIC)]) != _MAGIC:
                raise self._corrupt("not an ads-infra encrypted file")
            self._prefix = bytes(self._pending[len(_MAGIC) : HEADER_SIZE])
            del self._pending[:HEADER_SIZE]
        aad = _MAGIC + self._prefix
        parts: list[bytes] = []
        while len(self._pending) > SEGMENT + _TAG or (final and not self._done):
            last = final and len(self._pending) <= SEGMENT + _TAG
            size = len(self._pending) if last else SEGMENT + _TAG
            segment = bytes(self._pending[:size])
            del self._pending[:size]
            try:
                parts.append(
                    self._key.open(_nonce(self._prefix, self._counter, last), segment, aad)
                )
            except InvalidTag:
                raise self._corrupt(
                    "decryption failed: the data was altered, truncated, or encrypted "
                    "with another key"
                ) from None
            self._counter += 1
            if last:
                self._done = True
        return b"".join(parts)
