"""Local storage's reads without a thread hop: only a version read before, still in memory.

Which thread checked a file (the manager's ``_decode``) tells the two paths
apart: a worker of the strategy's one-thread pool after a hop, the event
loop's thread after a read without one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ads_infra.errors import IntegrityCheckError, StorageError, StoredFileNotFoundError
from ads_infra.storage import FileStorageManager, LocalStorageStrategy, StorageConfig
from ads_infra.storage.base import INLINE_BYTES
from ads_infra.storage.local_syscalls import CANNOT, generation, open_cached
from ads_infra.storage.local_threads import WorkerThreads

KIB = 1024
LOOP = threading.current_thread().name


class Spied:
    """A manager whose checks report the thread they ran in."""

    def __init__(self, manager: FileStorageManager) -> None:
        self.manager = manager
        assert isinstance(manager.strategy, LocalStorageStrategy)
        self.strategy: LocalStorageStrategy = manager.strategy
        self.seen: list[str] = []
        decode = manager._decode

        def spy(key: str, info: Any, stored: bytes) -> bytes:
            self.seen.append(threading.current_thread().name)
            return decode(key, info, stored)

        manager._decode = spy  # type: ignore[method-assign]

    async def read(self, name: str) -> tuple[bytes, str]:
        """The file's content and the thread that checked it."""
        content = await self.manager.get_file(name)
        return content, self.seen.pop()


@pytest.fixture(autouse=True)
def _reads_without_waiting(tmp_path: Path) -> None:
    """Skip where the system cannot (no openat2 or RESOLVE_CACHED, a filesystem without
    inode generations such as tmpfs): there every read takes the hop, tested elsewhere."""
    (tmp_path / "probe").write_bytes(b"x")
    folder = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = open_cached(folder, b"probe")
        if fd < 0 and -fd in CANNOT:
            pytest.skip("this system has no openat2 with RESOLVE_CACHED")
        if fd >= 0:
            try:
                if generation(fd) is None:
                    pytest.skip("this filesystem keeps no inode generations")
            finally:
                os.close(fd)
    finally:
        os.close(folder)


@pytest.fixture
async def spied(tmp_path: Path) -> AsyncIterator[Spied]:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader")
    manager = FileStorageManager(
        StorageConfig(base_path=str(tmp_path / "s"), compression_enabled=True)
    )
    await manager.start()
    spied = Spied(manager)
    spied.strategy._threads = WorkerThreads("test", pool)
    yield spied
    await manager.close()
    pool.shutdown()


def _scribble(path: Path) -> None:
    """One byte changed in place: the file keeps its xattr, and the checksum it holds."""
    with path.open("r+b") as f:
        f.seek(100)
        f.write(b"X")


def _pdf(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


async def test_a_small_file_read_again_is_read_on_the_event_loop(spied: Spied) -> None:
    content = _pdf(4 * KIB)
    name = await spied.manager.save_file(content, "a.pdf")
    assert await spied.read(name) == (content, "reader_0")  # first: the hop, which keeps its info
    assert await spied.read(name) == (content, LOOP)
    assert await spied.read(name) == (content, LOOP)
    info, data = await spied.strategy.get_with_info(name)  # the strategy's own read too
    assert data == content and info.metadata["ads-size"] == str(len(content))


async def test_what_changed_since_is_read_again_by_the_hop(spied: Spied) -> None:
    strategy = spied.strategy
    await strategy.put("k", b"one", content_type="text/plain", metadata={"v": "1"})
    await strategy.get_with_info("k")
    assert (await strategy.get_with_info("k"))[1] == b"one"
    # An overwrite is another file: its own bytes and metadata.
    await strategy.put("k", b"two", content_type="text/csv", metadata={"v": "2"}, overwrite=True)
    info, data = await strategy.get_with_info("k")
    assert (data, info.content_type, info.metadata) == (b"two", "text/csv", {"v": "2"})
    # Metadata changed in place (by a tool, not by us) moves the file's ctime.
    path = strategy.path_for("k")
    os.setxattr(path, "user.ads.meta", b'{"content_type":"text/x","metadata":{"v":"3"}}')
    info, data = await strategy.get_with_info("k")
    assert (data, info.content_type, info.metadata) == (b"two", "text/x", {"v": "3"})

    # Bytes changed in place are caught by the checksum, as on the hop.
    name = await spied.manager.save_file(_pdf(4 * KIB), "b.pdf")
    await spied.read(name)
    assert (await spied.read(name))[1] == LOOP
    target = Path(strategy.path_for(name))
    _scribble(target)
    with pytest.raises(IntegrityCheckError, match="checksum mismatch"):
        await spied.manager.get_file(name)
    # A link put in a shard folder's place is refused, never followed, though the file
    # behind it is the very version read before.
    linked = await spied.manager.save_file(_pdf(4 * KIB), "d.pdf")
    await spied.read(linked)
    assert (await spied.read(linked))[1] == LOOP
    shard = Path(strategy.path_for(linked)).parent
    shard.rename(shard.parent / "moved")
    shard.symlink_to("moved")  # relative, inside the storage folder
    with pytest.raises(StorageError, match="symbolic link"):
        await spied.manager.get_file(linked)
    shard.unlink()
    (shard.parent / "moved").rename(shard)
    # A link put in the file's place too.
    target.unlink()
    target.symlink_to(Path(strategy.path_for("k")))
    with pytest.raises(StorageError, match="symbolic link"):
        await spied.manager.get_file(name)
    target.unlink()
    with pytest.raises(StoredFileNotFoundError):
        await spied.manager.get_file(name)
    # Deleted through the store: gone at once.
    other = await spied.manager.save_file(_pdf(4 * KIB), "c.pdf")
    await spied.read(other)
    assert await spied.manager.delete_file(other)
    with pytest.raises(StoredFileNotFoundError):
        await spied.manager.get_file(other)


async def test_a_file_whose_pages_left_memory_is_read_by_the_hop(spied: Spied) -> None:
    content = _pdf(64 * KIB)
    name = await spied.manager.save_file(content, "a.pdf")
    await spied.read(name)
    assert await spied.read(name) == (content, LOOP)
    fd = os.open(spied.strategy.path_for(name), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages: dropped
    finally:
        os.close(fd)
    assert await spied.read(name) == (content, "reader_0")


async def test_files_up_to_a_mib_read_again_are_read_and_checked_on_the_event_loop(
    spied: Spied,
) -> None:
    inline = _pdf(INLINE_BYTES)
    name = await spied.manager.save_file(inline, "inline.pdf")
    assert await spied.read(name) == (inline, "reader_0")
    small = _pdf(4 * KIB)
    small_name = await spied.manager.save_file(small, "small.pdf")
    await spied.read(small_name)
    # Through the one buffer of this thread, in turns: each read gets bytes of its
    # own, which the next read does not overwrite.
    got = [await spied.read(name), await spied.read(small_name), await spied.read(name)]
    assert got == [(inline, LOOP), (small, LOOP), (inline, LOOP)]
    assert all(type(content) is bytes for content, _ in got)
    # Another thread's loop reads through a buffer of its own.
    nowait = spied.strategy._nowait
    ours = nowait._buffers.buffer

    def elsewhere() -> tuple[bytes, str, bytearray]:
        content, thread = asyncio.run(spied.read(name))
        return content, thread, nowait._buffers.buffer

    content, thread, theirs = await asyncio.to_thread(elsewhere)
    assert content == inline and thread != "reader_0" and theirs is not ours


async def test_a_file_forgotten_during_its_read_is_read_and_stays_forgotten(
    spied: Spied, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A delete (or close) in another thread while this read is in a call that
    # released the GIL: the read still returns the version it opened, and does
    # not bring the forgotten info back.
    content = _pdf(64 * KIB)
    name = await spied.manager.save_file(content, "a.pdf")
    await spied.read(name)
    nowait, path = spied.strategy._nowait, spied.strategy.path_for(name)
    preadv = os.preadv

    def forgetting(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        nowait.forget(path)
        return preadv(fd, buffers, offset, flags)

    monkeypatch.setattr(os, "preadv", forgetting)
    assert await spied.read(name) == (content, LOOP)
    assert path not in nowait._known


async def test_large_files_and_files_decoding_large_stay_off_the_event_loop(
    spied: Spied,
) -> None:
    big = _pdf(INLINE_BYTES + 1)
    name = await spied.manager.save_file(big, "big.pdf")
    for _ in range(3):
        assert await spied.read(name) == (big, "reader_0")
    # A small gzip that expands to a large file: its bytes may be read without a
    # hop, its decompression is not done on the loop.
    text = b"campaign,clicks\n" + b"c1,17\n" * (200 * KIB)
    name = await spied.manager.save_file(text, "report.csv")
    assert (await spied.manager.get_file_info(name))["compressed"]
    for _ in range(3):
        assert await spied.read(name) == (text, "reader_0")
    assert spied.strategy._nowait.read(spied.strategy.path_for(name)) is not None
    # A small one that decodes small is decoded on the loop.
    small = b"campaign,clicks\n" + b"c1,17\n" * 1000
    name = await spied.manager.save_file(small, "small.csv")
    assert len(gzip.compress(small)) < len(small)
    await spied.read(name)
    assert await spied.read(name) == (small, LOOP)


async def test_metadata_in_sidecars_is_always_read_by_the_hop(tmp_path: Path) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader")
    config = StorageConfig(base_path=str(tmp_path / "s"), local_metadata="sidecar")
    spied = Spied(FileStorageManager(config))
    spied.strategy._threads = WorkerThreads("test", pool)
    await spied.manager.start()
    content = _pdf(4 * KIB)
    name = await spied.manager.save_file(content, "a.pdf")
    for _ in range(3):  # a sidecar can change without the object's ctime moving
        assert await spied.read(name) == (content, "reader_0")
    await spied.manager.close()
    pool.shutdown()


async def test_reads_after_close_and_start_again(spied: Spied) -> None:
    content = _pdf(4 * KIB)
    name = await spied.manager.save_file(content, "a.pdf")
    await spied.read(name)
    await spied.manager.close()
    # Closed: the folder's descriptor is gone, reads take the hop (which restarts).
    assert await spied.read(name) == (content, "reader_0")
    await spied.manager.start()
    await spied.read(name)
    assert await spied.read(name) == (content, LOOP)


async def test_a_caller_changing_its_info_changes_no_later_read(spied: Spied) -> None:
    strategy = spied.strategy
    await strategy.put("k", b"one", metadata={"v": "1"})
    for _ in range(3):
        info, data = await strategy.get_with_info("k")
        assert (info.metadata, data) == ({"v": "1"}, b"one")
        info.metadata.clear()


async def test_a_kept_info_serves_only_the_version_it_was_read_with(spied: Spied) -> None:
    """Every part of the stamp counts: a later file on a reused inode number differs only
    in its generation, and a restored copy may match in size and ctime."""
    name = await spied.manager.save_file(_pdf(4 * KIB), "a.pdf")
    await spied.read(name)
    nowait, path = spied.strategy._nowait, spied.strategy.path_for(name)
    stamp, info = nowait._known[path]
    assert nowait.read(path) is not None
    for part in range(len(stamp)):  # each part moved alone
        moved: list[Any] = list(stamp)
        moved[part] = (moved[part] or 0) + 1
        nowait.keep(path, (moved[0], moved[1], moved[2], moved[3], moved[4]), info)
        assert nowait.read(path) is None, f"stamp part {part} is not compared"
    nowait.keep(path, stamp, info)
    assert nowait.read(path) is not None
    # A deleted file's info is dropped with it, not left to age out of the LRU.
    assert await spied.manager.delete_file(name)
    assert path not in nowait._known


def test_a_fifo_in_a_files_place_is_refused_at_once(tmp_path: Path) -> None:
    # Opened without O_NONBLOCK, a FIFO waits for a writer: on the event loop that
    # would stop the process. In a child process, so that a hang fails the test.
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from ads_infra.errors import StorageError
        from ads_infra.storage import FileStorageManager, StorageConfig

        async def main() -> None:
            async with FileStorageManager(StorageConfig(base_path={str(tmp_path)!r})) as m:
                name = await m.save_file(b"%PDF-1.7\\n" + bytes(4000), "a.pdf")
                await m.get_file(name)
                await m.get_file(name)
                path = m.strategy.path_for(name)
                os.unlink(path)
                os.mkfifo(path)
                for _ in range(2):
                    try:
                        await m.get_file(name)
                    except StorageError as exc:
                        assert "not a regular file" in str(exc), exc
                    else:
                        raise AssertionError("a FIFO was read as a file")
            print("refused")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "refused", done.stderr
