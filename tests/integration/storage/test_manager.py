"""FileStorageManager on both backends: round trips, validation, integrity, listing."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import xxhash

from ads_infra.config import DEFAULT_ALLOWED_EXTENSIONS
from ads_infra.errors import (
    FileTooLargeError,
    FileTypeNotAllowedError,
    IntegrityCheckError,
    InvalidFileNameError,
    StoredFileNotFoundError,
)
from ads_infra.storage import EncryptionKey, FileStorageManager
from ads_infra.storage.base import metadata_size
from tests.integration.storage.samples import samples

KEY = EncryptionKey.generate()

# Web content that can run scripts: allowed only when a deployment opts in.
OPT_IN = [".svg", ".html"]


async def chunked(data: bytes, size: int = 50_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


async def stored_names(manager: FileStorageManager) -> list[str]:
    return [item.key async for item in manager.strategy.iter_all()]


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
async def test_every_allowed_type_round_trips_compressed_and_encrypted(
    make_config: Any, streamed: bool
) -> None:
    manager = FileStorageManager(
        make_config(
            compression_enabled=True,
            encryption_enabled=True,
            encryption_key=KEY,
            allowed_extensions=[*DEFAULT_ALLOWED_EXTENSIONS, *OPT_IN],
        )
    )
    await manager.start()
    try:
        for extension, content in samples().items():
            source = chunked(content) if streamed else content
            name = await manager.save_file(source, f"creative{extension}")
            assert name.endswith(extension)
            assert await manager.get_file(name) == content, extension
            streamed_back = b"".join([c async for c in await manager.open_file(name)])
            assert streamed_back == content, extension
            info = await manager.get_file_info(name)
            assert info["size"] == len(content)
            assert info["encrypted"] is True
            assert info["original_name"] == f"creative{extension}"
            # gzip only where it can help: text-like types shrink, media is left alone
            assert info["compressed"] is (extension in (".svg", ".txt", ".csv", ".json", ".html"))
            if info["compressed"]:
                assert info["stored_size"] < len(content) // 2
            assert content[:64] not in await manager.strategy.get(name)  # encrypted at rest
        assert sorted([*DEFAULT_ALLOWED_EXTENSIONS, *OPT_IN]) == sorted(samples())
        stats = await manager.get_storage_stats()
        assert stats["total_files"] == len(samples())
    finally:
        for name in await stored_names(manager):
            await manager.delete_file(name)
        await manager.close()


async def test_wrong_key_is_a_clear_error_never_garbage(make_config: Any) -> None:
    config = make_config(encryption_enabled=True, encryption_key=KEY)
    writer = FileStorageManager(config)
    name = await writer.save_file(b"secret ad copy " * 100, "copy.txt")
    try:
        other = EncryptionKey.generate()
        reader = FileStorageManager(make_config(encryption_enabled=True, encryption_key=other))
        with pytest.raises(IntegrityCheckError, match=r"encrypted with key .* configured key is"):
            await reader.get_file(name)
        with pytest.raises(IntegrityCheckError):
            await reader.open_file(name)  # no byte handed out
        assert KEY not in str(reader.__dict__) and other not in repr(reader)
    finally:
        await writer.delete_file(name)


async def test_tampered_file_fails_its_checksum(make_config: Any) -> None:
    for compression, encryption in [(False, False), (True, False), (True, True)]:
        manager = FileStorageManager(
            make_config(
                compression_enabled=compression, encryption_enabled=encryption, encryption_key=KEY
            )
        )
        content = samples(20_000)[".txt"]
        name = await manager.save_file(content, "notes.txt")
        info = await manager.strategy.stat(name)
        stored = bytearray(await manager.strategy.get(name))
        stored[len(stored) // 2] ^= 0x01
        await manager.strategy.put(
            name,
            bytes(stored),
            content_type=info.content_type,
            metadata=info.metadata,
            overwrite=True,
        )
        with pytest.raises(IntegrityCheckError, match="failed its integrity check"):
            await manager.get_file(name)
        with pytest.raises(IntegrityCheckError):
            async for _ in await manager.open_file(name):
                pass
        await manager.delete_file(name)


@pytest.mark.parametrize("recorded", ["both", "sha256 only"])
async def test_reads_verify_xxh3_and_files_without_it_their_sha256(
    make_config: Any, recorded: str
) -> None:
    """A file written before ads-xxh3 existed is still verified, by its sha256."""
    manager = FileStorageManager(make_config(compression_enabled=False))
    content = samples(300_000)[".pdf"]
    name = await manager.save_file(content, "report.pdf")
    info = await manager.strategy.stat(name)
    assert info.metadata["ads-xxh3"] == xxhash.xxh3_128_hexdigest(content)
    assert info.metadata["ads-sha256"] == hashlib.sha256(content).hexdigest()
    metadata = dict(info.metadata)
    if recorded == "sha256 only":
        del metadata["ads-xxh3"]
    stored = bytearray(content)
    stored[-1] ^= 0x01
    await manager.strategy.put(
        name, bytes(stored), content_type=info.content_type, metadata=metadata, overwrite=True
    )
    algorithm = "xxh3-128" if recorded == "both" else "sha256"
    with pytest.raises(IntegrityCheckError, match=f"{algorithm} checksum mismatch"):
        await manager.get_file(name)
    with pytest.raises(IntegrityCheckError, match=f"{algorithm} checksum mismatch"):
        async for _ in await manager.open_file(name):
            pass
    await manager.delete_file(name)


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
async def test_oversize_file_leaves_nothing_behind(make_config: Any, streamed: bool) -> None:
    manager = FileStorageManager(make_config(max_file_size=300_000, compression_enabled=False))
    content = samples(400_000)[".pdf"]
    with pytest.raises(FileTooLargeError, match=r"storage\.max_file_size"):
        await manager.save_file(chunked(content) if streamed else content, "big.pdf")
    assert await stored_names(manager) == []
    assert await manager.cleanup_temp_files(0) == 0  # not even a temporary file


async def test_content_must_match_extension(make_config: Any) -> None:
    manager = FileStorageManager(make_config())
    png = samples(1000)[".png"]
    with pytest.raises(FileTypeNotAllowedError, match="not a PDF"):
        await manager.save_file(png, "invoice.pdf")
    with pytest.raises(FileTypeNotAllowedError, match="UTF-8"):
        await manager.save_file(chunked(b"text" * 30_000 + b"\xff\xfe"), "notes.txt")
    with pytest.raises(FileTypeNotAllowedError, match="not allowed"):
        await manager.save_file(b"MZ\x90\x00", "setup.exe")
    assert await stored_names(manager) == []


async def test_listing_pages_and_stats(make_config: Any) -> None:
    manager = FileStorageManager(make_config())
    names = sorted([await manager.save_file(b"row %d\n" % i, f"r{i}.csv") for i in range(5)])
    try:
        page1 = await manager.list_files(limit=2)
        page2 = await manager.list_files(limit=2, start_after=page1.next_cursor)
        page3 = await manager.list_files(limit=2, start_after=page2.next_cursor)
        assert [len(page1), len(page2), len(page3)] == [2, 2, 1]
        assert page1.next_cursor == page1[-1]["filename"] and page3.next_cursor is None
        listed = [f["filename"] for f in page1 + page2 + page3]
        assert sorted(listed) == names  # each once; in name order on S3, shard order locally
        if manager.strategy.backend == "s3":
            assert listed == names
        assert all(f["stored_size"] > 0 and f["modified_at"] for f in page1 + page2 + page3)
        everything = await manager.list_files(limit=5)
        assert [f["filename"] for f in everything] == listed and everything.next_cursor is None
        assert sorted(f["filename"] for f in await manager.list_files(names[3][:6])) == [
            n for n in names if n.startswith(names[3][:6])
        ]
        # The cursor is a name, not a position: it resumes after a name deleted meanwhile.
        await manager.delete_file(page1[-1]["filename"])
        resumed = await manager.list_files(limit=10, start_after=page1[-1]["filename"])
        assert [f["filename"] for f in resumed] == listed[2:]
        names.remove(page1[-1]["filename"])
        stats = await manager.get_storage_stats()
        assert stats["total_files"] == 4
        assert await manager.file_exists(names[0])
        assert await manager.delete_file(names[0]) is True
        assert await manager.delete_file(names[0]) is False
        assert not await manager.file_exists(names[0])
        with pytest.raises(StoredFileNotFoundError):
            await manager.get_file(names[0])
        with pytest.raises(StoredFileNotFoundError):
            await manager.get_file_info(names[0])
    finally:
        for name in names:
            await manager.delete_file(name)


async def test_health_check(make_config: Any) -> None:
    manager = FileStorageManager(make_config())
    await manager.start()
    status = await manager.health_check()
    assert status.healthy, status.detail
    assert status.component == "storage"
    await manager.close()


async def test_user_metadata_round_trips(make_config: Any) -> None:
    manager = FileStorageManager(make_config())
    name = await manager.save_file(b"{}", "a.json", metadata={"campaign-id": "42"})
    try:
        assert (await manager.get_file_info(name))["metadata"] == {"campaign-id": "42"}
    finally:
        await manager.delete_file(name)


async def test_metadata_room_counts_the_files_own_entries(make_config: Any) -> None:
    manager = FileStorageManager(make_config())
    long_name = "é" * 200 + ".txt"  # kept percent-encoded in ads-name: 1,200 bytes
    with pytest.raises(
        InvalidFileNameError, match=r"at most (\d+) fit \((\d+) of S3's 2048"
    ) as caught:
        # 1,904 bytes: within 2 KiB alone, not beside the file's own entries
        await manager.save_file(b"hello", long_name, metadata={"note": "x" * 1900})
    room = int(re.search(r"at most (\d+) fit", str(caught.value)).group(1))  # type: ignore[union-attr]
    assert await stored_names(manager) == []
    name = await manager.save_file(b"hello", long_name, metadata={"note": "x" * (room - 4)})
    try:
        stored_meta = (await manager.strategy.stat(name)).metadata
        assert stored_meta["note"] == "x" * (room - 4)
        assert metadata_size(stored_meta) <= 2048  # S3's limit for all user metadata
    finally:
        await manager.delete_file(name)


async def test_bad_read_arguments_are_clear_errors(make_config: Any) -> None:
    manager = FileStorageManager(make_config())
    name = await manager.save_file(b"hello", "a.txt")
    try:
        with pytest.raises(ValueError, match="chunk_size must be a whole number of bytes >= 1"):
            await manager.open_file(name, chunk_size=0)
        for seconds in (-5, 0, 30 * 86_400):  # S3 signs for 1 s to 7 days
            with pytest.raises(ValueError, match="expires_in must be whole seconds from 1 to"):
                await manager.get_file_url(name, expires_in=seconds)
        url = await manager.get_file_url(name, expires_in=604_800)
        assert url is None or "X-Amz-Expires=604800" in url
        assert b"".join([c async for c in await manager.open_file(name, chunk_size=1)]) == b"hello"
    finally:
        await manager.delete_file(name)
