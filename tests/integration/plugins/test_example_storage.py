"""The example package's tree storage: plain files under a root, chosen by configuration.

The manager's own contract tests run on it too (tests/integration/storage,
backend ``tree``); these cover what is the tree's own: the files are plain,
a file put there by another tool is served, metadata stays paired with its
bytes while an object is replaced, and interrupted writes leave nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ads_infra.core.errors import (
    InvalidFileNameError,
    ObjectExistsError,
    StorageError,
    StoredFileNotFoundError,
)
from ads_infra.core.settings import Settings
from ads_infra.storage import FileStorageManager, ObjectInfo, StorageStrategy

pytestmark = pytest.mark.usefixtures("example_installed")


def _manager(root: Path, **fields: object) -> FileStorageManager:
    section = {"storage_type": "tree", "options": {"root": str(root)}, **fields}
    return FileStorageManager(Settings.from_dict({"storage": section}).storage)


async def test_objects_are_plain_files_named_by_their_keys(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    async with _manager(root) as storage:
        text = b"headline,clicks\nRun further,12\n" * 100
        name = await storage.save_file(text, "report.csv")
        assert (root / name).read_bytes() == text  # as is: not compressed, not renamed
        info = await storage.get_file_info(name)
        assert info["content_type"].startswith("text/csv") and info["size"] == len(text)
        assert await storage.get_file(name) == text
        stats = await storage.get_storage_stats()
        assert stats["backend"] == "tree" and stats["total_files"] == 1
        assert stats["target"] == str(root)
        report = await storage.health_check()
        assert report.healthy and report.backend == "tree"


async def test_a_backend_of_its_own_decodes_a_large_object_off_the_event_loop(
    tmp_path: Path,
) -> None:
    # The tree does not override get_decoded: the interface's own runs the manager's
    # checks in a worker thread for a large object, on the loop for a small one.
    strategy: StorageStrategy = _manager(tmp_path / "tree").strategy
    await strategy.start()
    small, large = b"s" * 100, os.urandom(1024 * 1024)
    await strategy.put("small.bin", small)
    await strategy.put("large.bin", large)
    loop_thread = threading.get_ident()

    def where(info: ObjectInfo, data: bytes) -> tuple[int, int, bool]:
        return len(data), info.size, threading.get_ident() == loop_thread

    assert await strategy.get_decoded("small.bin", where) == (100, 100, True)
    assert await strategy.get_decoded("large.bin", where) == (len(large), len(large), False)
    await strategy.close()


async def test_create_only_overwrite_and_delete(tmp_path: Path) -> None:
    strategy: StorageStrategy = _manager(tmp_path / "tree").strategy
    await strategy.start()
    await strategy.put("a/b.txt", b"one", content_type="text/plain", metadata={"v": "1"})
    with pytest.raises(ObjectExistsError, match="already stored"):
        await strategy.put("a/b.txt", b"two")
    assert await strategy.get("a/b.txt") == b"one"
    await strategy.put("a/b.txt", b"two", metadata={"v": "2"}, overwrite=True)
    info, data = await strategy.get_with_info("a/b.txt")
    assert (data, info.metadata) == (b"two", {"v": "2"})
    meta_files = list((tmp_path / "tree" / ".ads-tree" / "meta").rglob("*.json"))
    assert len(meta_files) == 1  # the replaced file's metadata is gone
    assert await strategy.delete("a/b.txt") and not await strategy.delete("a/b.txt")
    assert not await strategy.exists("a/b.txt")
    with pytest.raises(StoredFileNotFoundError):
        await strategy.stat("a/b.txt")
    with pytest.raises(InvalidFileNameError, match="reserved"):
        await strategy.put(".ads-tree/x", b"x")
    await strategy.put("folder/x", b"x")
    with pytest.raises(StorageError, match="a folder of the tree and a file would share a name"):
        await strategy.put("folder", b"y")


async def test_a_file_put_there_by_another_tool_is_listed_and_served(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    strategy = _manager(root).strategy
    await strategy.start()
    (root / "imports").mkdir()
    (root / "imports" / "banner.txt").write_bytes(b"copied in with rsync")
    await strategy.put("imports-b.txt", b"x")  # sorts between "imports" and "imports/..."
    page = await strategy.list("imports")
    assert [item.key for item in page.items] == ["imports-b.txt", "imports/banner.txt"]
    info, data = await strategy.get_with_info("imports/banner.txt")
    assert data == b"copied in with rsync" and info.metadata == {}
    async with _manager(root) as storage:  # served by the manager too: a plain file
        assert await storage.get_file("imports/banner.txt") == b"copied in with rsync"
    first = await strategy.list("", limit=1)
    assert [i.key for i in first.items] == ["imports-b.txt"] and first.next_token
    rest = await strategy.list("", start_after=first.next_token)
    assert [i.key for i in rest.items] == ["imports/banner.txt"] and rest.next_token is None
    assert (await strategy.list("../")).items == []


async def test_a_stream_that_fails_midway_leaves_nothing(tmp_path: Path) -> None:
    strategy = _manager(tmp_path / "tree").strategy
    await strategy.start()

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await strategy.put("upload.bin", broken())
    assert not await strategy.exists("upload.bin")
    assert not any((tmp_path / "tree" / ".ads-tree" / "tmp").iterdir())


async def test_readers_pair_bytes_with_their_metadata_while_an_object_is_replaced(
    tmp_path: Path,
) -> None:
    strategy = _manager(tmp_path / "tree", options={"root": str(tmp_path / "tree")}).strategy
    await strategy.start()

    def version(i: int) -> tuple[bytes, dict[str, str]]:
        data = f"version {i} ".encode() * (i + 1)
        return data, {"sha": hashlib.sha256(data).hexdigest()}

    data, meta = version(0)
    await strategy.put("hot.txt", data, metadata=meta)

    async def writer() -> None:
        for i in range(1, 60):
            data, meta = version(i)
            await strategy.put("hot.txt", data, metadata=meta, overwrite=True)

    async def reader() -> int:
        checked = 0
        for _ in range(200):
            info, data = await strategy.get_with_info("hot.txt")
            assert info.metadata["sha"] == hashlib.sha256(data).hexdigest()
            checked += 1
        return checked

    results = await asyncio.gather(writer(), reader(), reader())
    assert results[1:] == [200, 200]


async def test_cleanup_removes_old_temp_files_and_orphaned_metadata(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    strategy = _manager(root).strategy
    await strategy.start()
    await strategy.put("kept.txt", b"k")
    leftovers = [root / ".ads-tree" / "tmp" / "dead", root / ".ads-tree" / "meta" / "gone.1.json"]
    for path in leftovers:
        path.write_bytes(b"{}")
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    assert await strategy.cleanup_temp(3600) == 2
    assert not any(path.exists() for path in leftovers)
    assert (await strategy.get("kept.txt")) == b"k"  # its metadata is not an orphan
    assert len(list((root / ".ads-tree" / "meta").rglob("*.json"))) == 1


async def test_a_root_that_is_a_file_is_an_unhealthy_report(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    storage = _manager(blocker)
    report = await storage.health_check()
    assert not report.healthy and "not a writable folder" in report.detail
    with pytest.raises(OSError):
        await storage.start()
