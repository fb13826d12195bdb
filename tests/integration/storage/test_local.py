"""Local storage: the seed's snippet, hostile names, a write killed by SIGKILL, create-only."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gzip
import os
import re
import signal
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ads_infra.errors import IntegrityCheckError, ObjectExistsError, StorageValidationError
from ads_infra.storage import (
    FileStorageManager,
    LocalStorageStrategy,
    StorageConfig,
    StorageType,
    local_files,
    local_syscalls,
)
from ads_infra.storage.local_nowait import NowaitReads
from ads_infra.storage.local_threads import WorkerThreads

STORED_NAME = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]+$")


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def copy_without_xattrs(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)


def flip_last_byte(path: Path) -> None:
    """In place: the file keeps its xattr, and so the checksum of what it held."""
    with path.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last ^ 1]))


def list_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


async def test_seed_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    file_content = b"%PDF-1.4\n" + os.urandom(4096)

    # --- the seed's "Storage Management" usage, verbatim but for the import ---
    from ads_infra.storage import FileStorageManager, StorageConfig

    # Configure storage
    storage_config = StorageConfig(
        base_path="./storage",
        cache_ttl=1800,
        max_file_size=100 * 1024 * 1024,  # 100MB
        storage_type=StorageType.LOCAL,
    )

    # Create manager
    storage_manager = FileStorageManager(storage_config)

    # Save file
    filename = await storage_manager.save_file(file_content, "document.pdf")

    # Get file info
    file_info = await storage_manager.get_file_info(filename)
    # --- end of the seed's snippet ---

    assert STORED_NAME.match(filename)
    assert file_info["original_name"] == "document.pdf"
    assert file_info["size"] == len(file_content)
    assert file_info["content_type"] == "application/pdf"
    assert await storage_manager.get_file(filename) == file_content
    storage_stats = await storage_manager.get_storage_stats()
    assert storage_stats["total_files"] == 1
    assert all(p.is_relative_to(tmp_path / "storage") for p in files_under(tmp_path))
    assert await storage_manager.cleanup_temp_files(0) == 0
    assert await storage_manager.delete_file(filename)


async def test_bare_manager_works_on_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manager = FileStorageManager()
    name = await manager.save_file(b"hello", "hello.txt")
    assert await manager.get_file(name) == b"hello"
    assert (await manager.get_storage_stats())["total_files"] == 1
    assert await manager.delete_file(name)


HOSTILE_NAMES = [
    "../../etc/passwd.txt",
    "..\\..\\windows\\system32\\evil.txt",
    "/etc/cron.d/evil.txt",
    "C:\\Windows\\System32\\evil.txt",
    "C:evil.txt",
    "\\\\server\\share\\evil.txt",
    "foo/../../../bar.txt",
    "~/.ssh/authorized_keys.txt",
    "file:///etc/passwd.txt",
    "%2e%2e%2f%2e%2e%2fetc.txt",
    "..%2f..%2fsecret.txt",
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0ffullwidth.txt",
    "evil\x00.txt",
    "\x00",
    "line\nbreak.txt",
    "tab\there.txt",
    "\u202etxt.exe",
    "zero\u200bwidth.txt",
    "CON.txt",
    "nul.txt",
    "com1.txt",
    "LPT9.txt",
    "aux.tar.txt",
    "..",
    ".",
    "...",
    "",
    "   ",
    ".txt",
    "/",
    "dir/",
    "trailing.txt.",
    "trailing.txt   ",
    'a:b|c?d*e<f>g".txt',
    "<script>alert(1)</script>.txt",
    "x" * 300 + ".txt",
    "ü" * 200 + ".txt",
    "y" * 5000 + ".txt",
    "evil.php",
    "evil.txt.php",
    "evil.php.txt",
    "shell.sh",
    "archive.TXT",
    ".htaccess",
    "-rf .txt",
    "$(reboot).txt",
]


async def test_hostile_names_are_refused_or_stored_safely(tmp_path: Path) -> None:
    assert len(HOSTILE_NAMES) >= 30
    base = tmp_path / "root" / "storage"
    manager = FileStorageManager(StorageConfig(base_path=str(base)))
    stored, refused = [], []
    for name in HOSTILE_NAMES:
        try:
            saved = await manager.save_file(b"hostile but harmless text\n", name)
        except StorageValidationError as exc:
            assert str(exc) and "\x00" not in str(exc), name
            refused.append(name)
            continue
        assert STORED_NAME.match(saved), (name, saved)
        assert await manager.get_file(saved) == b"hostile but harmless text\n"
        original = (await manager.get_file_info(saved))["original_name"]
        assert "/" not in original and "\\" not in original and "\x00" not in original
        stored.append(name)
    assert stored and refused  # both outcomes occur
    # Reads with hostile names are refused too, never resolved against the disk.
    for name in HOSTILE_NAMES[:17]:
        with pytest.raises((StorageValidationError, LookupError)):
            await manager.get_file(name)
    # Nothing was written anywhere but under base_path.
    outside = [p for p in files_under(tmp_path) if not p.is_relative_to(base)]
    assert outside == []
    # One file per object (its metadata is in an xattr), each under a generated name.
    assert len(files_under(base)) == len(stored)
    assert all(STORED_NAME.match(p.name) for p in files_under(base))


async def test_strategy_refuses_keys_that_could_leave_the_root(tmp_path: Path) -> None:
    base = tmp_path / "root" / "storage"
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(base)))
    for key in [
        "../x",
        "a/../../x",
        "/abs",
        "C:/x",
        "a\\b",
        "a//b",
        "./a",
        "a\x00b",
        "",
        "k" * 600,
    ]:
        with pytest.raises(StorageValidationError):
            await strategy.put(key, b"x")
    # Keys with odd but legal characters stay inside, one file per key.
    for key in ["a/b/c.txt", "..a", "a..", "~meta", "x~tmp", "%2e%2e", "ü/ö"]:
        await strategy.put(key, b"ok")
        assert await strategy.get(key) == b"ok"
        assert Path(strategy.path_for(key)).is_relative_to(base)
    listed = [item.key async for item in strategy.iter_all()]
    assert sorted(listed) == sorted(["a/b/c.txt", "..a", "a..", "~meta", "x~tmp", "%2e%2e", "ü/ö"])
    assert [p for p in files_under(tmp_path) if not p.is_relative_to(base)] == []
    assert await strategy.cleanup_temp(0) == 0  # "x~tmp" is an object, not a temp file


@pytest.mark.parametrize("publish", ["renameat2", "link"])
async def test_create_only_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publish: str
) -> None:
    if publish == "link":  # a system or filesystem without renameat2(RENAME_NOREPLACE)
        monkeypatch.setattr(local_files, "rename_noreplace", lambda src, dst: False)
    elif sys.platform.startswith("linux"):
        assert local_files.rename_noreplace is local_syscalls.rename_noreplace
        assert local_syscalls._renameat2 is not None  # the one-call path is the one tested
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(tmp_path / "s")))
    await strategy.put("k.txt", b"first", metadata={"v": "1"})
    with pytest.raises(ObjectExistsError, match="already stored"):
        await strategy.put("k.txt", b"second", metadata={"v": "2"})

    async def stream():  # type: ignore[no-untyped-def]
        yield b"third"

    with pytest.raises(ObjectExistsError):
        await strategy.put("k.txt", stream())
    assert await strategy.get("k.txt") == b"first"
    assert (await strategy.stat("k.txt")).metadata == {"v": "1"}
    await strategy.put("k.txt", b"fourth", overwrite=True)
    assert await strategy.get("k.txt") == b"fourth"
    # Concurrent creators of one key: exactly one wins.
    results = await asyncio.gather(
        *(strategy.put("race.txt", b"%d" % i) for i in range(8)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, ObjectExistsError) for r in results if isinstance(r, BaseException))
    assert await strategy.cleanup_temp(0) == 0
    assert sorted(p.name for p in files_under(tmp_path / "s")) == sorted(
        os.path.basename(strategy.path_for(k)) for k in ("k.txt", "race.txt")
    )  # no temporary name left beside the objects


async def test_folders_are_sharded(tmp_path: Path) -> None:
    manager = FileStorageManager(StorageConfig(base_path=str(tmp_path / "s")))
    names = [await manager.save_file(b"x", f"{i}.txt") for i in range(40)]
    used = {Path(manager.strategy.path_for(n)).parent.name for n in names}  # type: ignore[attr-defined]
    assert len(used) > 20 and all(re.fullmatch(r"[0-9a-f]{2}", u) for u in used)
    for name in names:
        rel = Path(manager.strategy.path_for(name)).relative_to(tmp_path / "s")  # type: ignore[attr-defined]
        assert len(rel.parts) == 2
    await manager.start()  # creates every shard folder up front
    assert len(list_dirs(tmp_path / "s")) == 256


WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from ads_infra.storage import FileStorageManager, StorageConfig

    async def main():
        config = StorageConfig(base_path=sys.argv[1], compression_enabled=False)
        manager = FileStorageManager(config)
        chunk = b"%PDF-1.7\\n" + os.urandom(1024 * 1024 - 9)

        async def fifty_mib():
            for i in range(50):
                yield chunk
                if i == 20:  # 21 MiB handed over: tell the parent, then keep writing slowly
                    print("WRITING", flush=True)
                if i >= 20:
                    await asyncio.sleep(0.5)

        await manager.save_file(fifty_mib(), "video.pdf")
        print("FINISHED", flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_sigkill_mid_write_leaves_no_partial_file(tmp_path: Path) -> None:
    base = tmp_path / "storage"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(base), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.strip() == b"WRITING"
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    leftovers = files_under(base)
    # Only temporary files remain: nothing under a final name, no metadata.
    assert leftovers and all(p.name.endswith("~tmp") for p in leftovers), leftovers
    assert sum(p.stat().st_size for p in leftovers) >= 20 * 1024 * 1024  # it was mid-write
    manager = FileStorageManager(StorageConfig(base_path=str(base)))
    assert (await manager.get_storage_stats())["total_files"] == 0
    assert await manager.cleanup_temp_files(older_than=3600) == 0  # too young to be stale
    assert await manager.cleanup_temp_files(older_than=0) == len(leftovers)
    assert files_under(base) == []


@pytest.mark.parametrize("mode", ["auto", "sidecar"])
async def test_metadata_lives_beside_the_data(tmp_path: Path, mode: str) -> None:
    manager = FileStorageManager(StorageConfig(base_path=str(tmp_path / "s"), local_metadata=mode))
    name = await manager.save_file(b"a,b\n1,2\n", "t.csv", metadata={"campaign-id": "7"})
    path = Path(manager.strategy.path_for(name))  # type: ignore[attr-defined]
    sidecar = Path(f"{path}~meta")
    if mode == "auto":
        assert b'"ads-sha256"' in os.getxattr(path, "user.ads.meta")
        assert sidecar not in files_under(tmp_path)
    else:
        assert b'"ads-sha256"' in read_bytes(sidecar)
    assert (await manager.get_file_info(name))["metadata"] == {"campaign-id": "7"}
    assert await manager.delete_file(name)
    assert files_under(tmp_path / "s") == []


async def test_encrypted_file_that_lost_its_metadata_is_refused(tmp_path: Path) -> None:
    from ads_infra.errors import IntegrityCheckError
    from ads_infra.storage import EncryptionKey

    config = StorageConfig(
        base_path=str(tmp_path / "s"),
        encryption_enabled=True,
        encryption_key=EncryptionKey.generate(),
    )
    manager = FileStorageManager(config)
    name = await manager.save_file(b"secret plan", "plan.txt")
    path = Path(manager.strategy.path_for(name))  # type: ignore[attr-defined]
    copy_without_xattrs(path)  # as plain `cp` does
    with pytest.raises(IntegrityCheckError, match="metadata is missing"):
        await manager.get_file(name)
    with pytest.raises(IntegrityCheckError, match="metadata is missing"):
        async for _ in await manager.open_file(name):
            pass


async def test_health_before_the_folder_exists(tmp_path: Path) -> None:
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(tmp_path / "new" / "storage")))
    status = await strategy.health_check()
    assert status.healthy and "will be created" in status.detail
    await strategy.start()
    assert (await strategy.health_check()).healthy
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root may write anywhere
        blocked = LocalStorageStrategy(StorageConfig(base_path=str(read_only / "s")))
        status = await blocked.health_check()
        assert not status.healthy and "not writable" in status.detail


async def test_compressed_file_that_lost_its_metadata_is_refused(tmp_path: Path) -> None:
    from ads_infra.errors import IntegrityCheckError

    manager = FileStorageManager(StorageConfig(base_path=str(tmp_path / "s")))
    name = await manager.save_file(b"id,clicks\n1,2\n" * 50, "report.csv")  # stored gzipped
    path = Path(manager.strategy.path_for(name))  # type: ignore[attr-defined]
    copy_without_xattrs(path)
    with pytest.raises(IntegrityCheckError, match=r"looks gzip-compressed .* metadata is missing"):
        await manager.get_file(name)
    for chunk_size in (1, 64):  # judged on the first bytes, however they are chunked
        with pytest.raises(IntegrityCheckError, match="metadata is missing"):
            async for _ in await manager.open_file(name, chunk_size=chunk_size):
                pass
    # A type the manager never compresses is gzip by nature: served as stored.
    gz = gzip.compress(b"raw")
    await manager.strategy.put("upload.gz", gz)
    assert await manager.get_file("upload.gz") == gz
    assert b"".join([c async for c in await manager.open_file("upload.gz", chunk_size=1)]) == gz


def damage(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(20)
        f.write(b"\x00\x00")


def fds_open_on(path: Path) -> int:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counting open files needs /proc")
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return count


async def test_failed_or_abandoned_stream_closes_the_stored_file(tmp_path: Path) -> None:
    from ads_infra.errors import IntegrityCheckError

    manager = FileStorageManager(StorageConfig(base_path=str(tmp_path / "s")))
    name = await manager.save_file(b"hello world\n" * 1000, "a.txt")
    path = Path(manager.strategy.path_for(name))  # type: ignore[attr-defined]
    stream = await manager.open_file(name, chunk_size=64)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert fds_open_on(path) == 0
    damage(path)
    with pytest.raises(IntegrityCheckError) as caught:
        async for _ in await manager.open_file(name, chunk_size=64):
            pass
    # The error (and its traceback, which a framework may keep for logging) is alive.
    assert caught.value is not None and fds_open_on(path) == 0


async def test_sidecar_of_a_failed_publish_is_removed(tmp_path: Path) -> None:
    from ads_infra.storage.local_files import commit as _commit

    base = tmp_path / "s"
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(base), local_metadata="sidecar"))
    await strategy.start()
    path = strategy.path_for("k.txt")
    # The data's temporary file is gone by the time it is linked (what a cancelled
    # writer's cleanup did): not FileExistsError, yet its sidecar must not stay.
    with pytest.raises(FileNotFoundError):
        _commit(f"{path}~dgone~tmp", path, b'{"content_type": "text/plain"}', False)
    assert files_under(base) == []
    assert not await strategy.exists("k.txt")
    await strategy.put("k.txt", b"x")  # the key is free, not "already stored"
    assert await strategy.get("k.txt") == b"x"


async def test_a_large_save_starts_its_writeback_before_its_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From 256 KiB the data's writeback starts before the checksum is computed (the disk
    works meanwhile); the fsync after it still makes the object durable and whole."""
    started: list[int] = []
    real = local_files.start_writeback

    def spy(fd: int) -> None:
        started.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(local_files, "start_writeback", spy)
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(tmp_path / "s")))
    big, small = os.urandom(local_files.WRITEBACK_BYTES), os.urandom(4096)
    await strategy.put("big.bin", big, metadata=lambda: {"n": "1"})
    await strategy.put("small.bin", small, metadata=lambda: {"n": "2"})
    assert started == [len(big)]  # once, with the whole object written; never for 4 KiB
    assert await strategy.get("big.bin") == big
    assert (await strategy.stat("big.bin")).metadata == {"n": "1"}
    assert await strategy.get("small.bin") == small
    local_syscalls.start_writeback(-1)  # a failure is left to the fsync: nothing raised here
    await strategy.close()


class CancelOnPublish(concurrent.futures.ThreadPoolExecutor):
    """A one-thread pool that cancels ``task`` right after the job that made ``path``
    appear, before that job's result reaches the event loop: the moment a write is
    published but its put() has not returned. One thread runs jobs in order, so a
    job submitted later runs after every earlier one has finished."""

    def __init__(self, path: str) -> None:
        super().__init__(max_workers=1)
        self.path = path
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[Any] | None = None
        self.fired = False

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        def run() -> Any:
            result = fn(*args, **kwargs)
            if self.task is not None and not self.fired and os.path.lexists(self.path):
                self.fired = True
                self.loop.call_soon_threadsafe(self.task.cancel)
            return result

        return super().submit(run)


@pytest.mark.parametrize("mode", ["auto", "sidecar"])
@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
async def test_put_cancelled_as_it_publishes_leaves_nothing(
    tmp_path: Path, mode: str, streamed: bool
) -> None:
    base = tmp_path / "s"
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(base), local_metadata=mode))
    await strategy.start()
    loop = asyncio.get_running_loop()
    pool = CancelOnPublish(strategy.path_for("k.txt"))
    strategy._threads = WorkerThreads("test", pool)  # runs every blocking step of the put

    async def stream() -> AsyncIterator[bytes]:
        yield b"a,b\n" * 1000

    pool.task = asyncio.create_task(
        strategy.put("k.txt", stream() if streamed else b"a,b\n", metadata={"a": "b"})
    )
    with pytest.raises(asyncio.CancelledError):
        await pool.task
    assert pool.fired  # it was cancelled once the object was there
    await loop.run_in_executor(pool, lambda: None)  # every job of the put has finished
    assert files_under(base) == []  # no object, sidecar or temporary file
    assert not await strategy.exists("k.txt")
    await strategy.put("k.txt", b"again")
    assert await strategy.get("k.txt") == b"again"


async def test_put_cancelled_before_its_write_started_writes_nothing(tmp_path: Path) -> None:
    base = tmp_path / "s"
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(base)))
    await strategy.start()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    strategy._threads = WorkerThreads("test", pool)
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()
    busy = loop.run_in_executor(pool, asyncio.run_coroutine_threadsafe(gate.wait(), loop).result)
    put = asyncio.create_task(strategy.put("k.txt", b"x"))
    for _ in range(3):  # the put hands its job over: it waits in the queue behind the busy one
        await asyncio.sleep(0)
    assert not put.done()
    put.cancel()
    gate.set()
    await busy
    with pytest.raises(asyncio.CancelledError):
        await put
    await loop.run_in_executor(pool, lambda: None)  # anything queued has run by now
    assert files_under(base) == []  # the job never ran: no object, no temporary file
    pool.shutdown()


@pytest.mark.parametrize("mode", ["auto", "sidecar"])
async def test_a_large_files_checksum_is_computed_beside_its_write(
    tmp_path: Path, mode: str
) -> None:
    import hashlib

    config = StorageConfig(base_path=str(tmp_path / "s"), local_metadata=mode)
    manager = FileStorageManager(config)
    await manager.start()
    assert isinstance(manager.strategy, LocalStorageStrategy)
    # One thread: the checksum's job and the write's job queue on it in turn.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    manager.strategy._threads = WorkerThreads("test", pool)
    content = b"%PDF-1.7\n" + os.urandom(1024 * 1024)
    name = await asyncio.wait_for(manager.save_file(content, "big.pdf"), 60)  # no deadlock
    info = await manager.get_file_info(name)
    assert info["sha256"] == hashlib.sha256(content).hexdigest()
    assert info["size"] == len(content) and not info["compressed"]
    assert await manager.get_file(name) == content
    await manager.close()
    pool.shutdown()


async def test_a_file_is_checked_in_the_thread_that_read_it(tmp_path: Path) -> None:
    # The manager's checks (size, checksum) run in the hop that read the bytes, never
    # on the event loop, whatever the size.
    manager = FileStorageManager(StorageConfig(base_path=str(tmp_path / "s")))
    await manager.start()
    assert isinstance(manager.strategy, LocalStorageStrategy)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader")
    manager.strategy._threads = WorkerThreads("test", pool)
    seen: list[tuple[str, int, int]] = []
    decode = manager._decode

    def spy(key: str, info: Any, stored: bytes) -> bytes:
        seen.append((threading.current_thread().name, info.size, len(stored)))
        return decode(key, info, stored)

    manager._decode = spy  # type: ignore[method-assign]
    for size in (100, 1024 * 1024):
        content = b"%PDF-1.7\n" + os.urandom(size)
        name = await manager.save_file(content, "f.pdf")
        assert await manager.get_file(name) == content
        assert seen.pop() == ("reader_0", len(content), len(content))
        # A flipped byte is caught there too, and reported as what it is.
        flip_last_byte(Path(manager.strategy.path_for(name)))
        with pytest.raises(IntegrityCheckError, match="checksum mismatch"):
            await manager.get_file(name)
    await manager.close()
    pool.shutdown()


async def test_read_during_overwrites_pairs_metadata_with_its_own_bytes(tmp_path: Path) -> None:
    # Metadata in the xattr is read from the descriptor the bytes come from. (A
    # sidecar is read by name: see docs/storage.md.)
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(tmp_path / "s")))
    await strategy.start()
    await strategy.put("k", b"v0", metadata={"v": "v0"})
    done = False
    reads = mismatched = 0

    async def writer() -> None:
        nonlocal done
        for i in range(1, 600):
            await strategy.put("k", b"v%d" % i, metadata={"v": f"v{i}"}, overwrite=True)
        done = True

    async def reader() -> None:
        nonlocal reads, mismatched
        while not done:
            info, data = await strategy.get_with_info("k")
            reads += 1
            mismatched += info.metadata["v"].encode() != data or info.size != len(data)

    await asyncio.gather(writer(), reader(), reader())
    assert reads > 0 and mismatched == 0


async def test_a_close_while_starting_leaves_nothing_open_or_running(tmp_path: Path) -> None:
    """close() during start()'s first hop wins: start() then opens no folder and starts
    no sweeper (both would outlive the close: a descriptor and a task nobody stops)."""
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(tmp_path / "store")))
    starting = asyncio.create_task(strategy.start())
    await asyncio.sleep(0)  # start() is now waiting for its first hop
    await strategy.close()
    await starting
    assert strategy._sweeper is None
    assert strategy._nowait._folder is None
    assert strategy._threads._pool is None  # no pool started again after close()
    # And a start after it works as ever.
    await strategy.start()
    assert strategy._sweeper is not None and not strategy._sweeper.done()
    await strategy.close()
    assert strategy._sweeper is None and strategy._nowait._folder is None


def test_an_open_asked_for_before_a_close_opens_nothing(tmp_path: Path) -> None:
    """The no-hop reads' folder open, run in a worker thread, can come after the close()
    that should have ended it: then it leaves no descriptor behind."""
    reads = NowaitReads(str(tmp_path))
    asked = reads.epoch
    reads.close()
    reads.open(asked)
    assert reads._folder is None
    reads.open(reads.epoch)  # asked for after the close: opens as ever
    assert reads._folder is not None
    reads.close()
    assert reads._folder is None
