"""The storage byte pipeline: gzip, segmented AES-GCM, size and sha256 checks (no I/O)."""

from __future__ import annotations

import hashlib
import os

import pytest

from ads_infra.config import Secret
from ads_infra.errors import ConfigurationError, FileTooLargeError, IntegrityCheckError
from ads_infra.storage.codec import HEADER_SIZE, SEGMENT, Decoder, Encoder, EncryptionKey

KEY = EncryptionKey(Secret(os.urandom(32).hex()))


def encode(data: bytes, *, chunk: int = 10_000, **options: object) -> tuple[bytes, Encoder]:
    encoder = Encoder(name="f.bin", max_size=1 << 30, **options)  # type: ignore[arg-type]
    out = b"".join(encoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    return out + encoder.finish(), encoder


def decode(stored: bytes, encoder: Encoder, *, chunk: int = 7_000, **options: object) -> bytes:
    decoder = Decoder(
        name="f.bin",
        expected_size=encoder.size,
        expected_sha256=encoder.sha256,
        **options,  # type: ignore[arg-type]
    )
    out = b"".join(decoder.feed(stored[i : i + chunk]) for i in range(0, len(stored), chunk))
    return out + decoder.finish()


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 300_001])
@pytest.mark.parametrize(("compress", "encrypt"), [(False, True), (True, True), (True, False)])
def test_round_trip_at_segment_boundaries(size: int, compress: bool, encrypt: bool) -> None:
    data = (os.urandom(size // 2) + b"a" * (size - size // 2)) if size else b""
    key = KEY if encrypt else None
    stored, encoder = encode(data, compress=compress, key=key)
    assert encoder.sha256 == hashlib.sha256(data).hexdigest()
    if encrypt and size >= 32:  # a shorter plaintext may turn up in ciphertext by chance
        assert data[:32] not in stored
    back = decode(stored, encoder, compressed=compress, encrypted=encrypt, key=key)
    assert back == data


def test_every_flipped_byte_is_detected() -> None:
    data = os.urandom(2 * SEGMENT + 100)
    stored, encoder = encode(data, key=KEY)
    for position in [0, 5, HEADER_SIZE, HEADER_SIZE + SEGMENT + 3, len(stored) - 1]:
        tampered = bytearray(stored)
        tampered[position] ^= 0x40
        with pytest.raises(IntegrityCheckError, match="integrity check"):
            decode(bytes(tampered), encoder, encrypted=True, key=KEY)


def test_truncation_and_reordering_are_detected() -> None:
    data = os.urandom(3 * SEGMENT)
    stored, _ = encode(data, key=KEY)
    seg = SEGMENT + 16
    body = stored[HEADER_SIZE:]
    cut_at_boundary = stored[: HEADER_SIZE + 2 * seg]
    swapped = stored[:HEADER_SIZE] + body[seg : 2 * seg] + body[:seg] + body[2 * seg :]
    for bad in (cut_at_boundary, swapped, stored[:-1], stored[:HEADER_SIZE]):
        with pytest.raises(IntegrityCheckError):
            # no expected size/sha: the encryption alone must catch it
            decoder = Decoder(name="f", encrypted=True, key=KEY)
            decoder.feed(bad)
            decoder.finish()


def test_wrong_key_names_both_key_ids() -> None:
    stored, encoder = encode(b"secret" * 100, key=KEY)
    other = EncryptionKey(os.urandom(32).hex())
    with pytest.raises(IntegrityCheckError, match=f"key {KEY.key_id}.*{other.key_id}"):
        Decoder(name="f", encrypted=True, key=other, key_id=KEY.key_id)
    # Without a recorded key id, decryption itself refuses: never garbage.
    with pytest.raises(IntegrityCheckError, match="another key"):
        decode(stored, encoder, encrypted=True, key=other)


def test_encrypted_file_without_a_key_says_which_setting_to_set() -> None:
    with pytest.raises(ConfigurationError, match="ADS_STORAGE_ENCRYPTION_KEY"):
        Decoder(name="f", encrypted=True, key=None)


def test_plain_checksum_and_size_mismatch() -> None:
    _, encoder = encode(b"hello world")
    with pytest.raises(IntegrityCheckError, match="sha256"):
        decode(b"hello World", encoder)
    with pytest.raises(IntegrityCheckError, match="bytes instead of"):
        decode(b"hello worl", encoder)
    with pytest.raises(IntegrityCheckError, match="compressed data"):
        decode(b"not gzip at all", encoder, compressed=True)


def test_size_limit_holds_while_streaming() -> None:
    encoder = Encoder(name="big.pdf", max_size=100)
    encoder.feed(b"x" * 60)
    with pytest.raises(FileTooLargeError, match="100 bytes"):
        encoder.feed(b"x" * 41)


@pytest.mark.parametrize(
    "text", ["", "short", "zz" * 32, "g" * 64, "not base64 at all!!", os.urandom(16).hex()]
)
def test_bad_keys_are_configuration_errors_without_the_value(text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EncryptionKey(Secret(text))
    assert "storage.encryption_key" in str(caught.value)
    if text:
        assert text not in str(caught.value)


def test_key_formats_and_fingerprint() -> None:
    import base64

    raw = os.urandom(32)
    by_hex = EncryptionKey(raw.hex())
    by_b64 = EncryptionKey(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert by_hex.key_id == by_b64.key_id
    assert raw.hex() not in repr(by_hex) and raw.hex()[:16] not in by_hex.key_id


@pytest.mark.parametrize(("compress", "encrypt"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("checksum", ["sha256", "xxh3"])
def test_decode_all_is_feed_and_finish_in_one_call(
    compress: bool, encrypt: bool, checksum: str
) -> None:
    """decode_all (how a whole file is read) checks what feed + finish check, whatever the path."""
    data = os.urandom(SEGMENT) + b"a" * SEGMENT
    key = KEY if encrypt else None
    stored, encoder = encode(data, compress=compress, key=key)

    def decoder(size: int = encoder.size) -> Decoder:
        sums = {"expected_sha256": encoder.sha256}
        if checksum == "xxh3":
            sums["expected_xxh3"] = encoder.xxh3
        return Decoder(
            name="f.bin", compressed=compress, encrypted=encrypt, key=key,
            expected_size=size, **sums,  # type: ignore[arg-type]
        )  # fmt: skip

    assert decoder().decode_all(stored) == data
    algorithm = "xxh3-128" if checksum == "xxh3" else "sha256"
    if not (compress or encrypt):  # stored as is: the bytes themselves are checked
        flipped = bytearray(stored)
        flipped[100] ^= 1
        with pytest.raises(IntegrityCheckError, match=f"{algorithm} checksum mismatch"):
            decoder().decode_all(bytes(flipped))
        with pytest.raises(IntegrityCheckError, match="bytes instead of"):
            decoder().decode_all(stored[:-1])
    # The same message as feed() + finish() give for content longer than recorded.
    longer = "expands beyond" if compress else "more than the recorded"
    with pytest.raises(IntegrityCheckError, match=longer):
        decoder(size=encoder.size - 1).decode_all(stored)
