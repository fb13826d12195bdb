"""Hostile local storage: links planted inside the base folder, script-bearing files, debris.

A symbolic link put where an object or a shard folder belongs must never be
followed (a read returned a file from outside the base, a write landed
outside); web content that runs scripts is not allowed by default; the
temporary file of a killed write does not stay forever.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from ads_infra.config import StorageConfig
from ads_infra.errors import FileTypeNotAllowedError, IntegrityCheckError, StorageError
from ads_infra.storage import FileStorageManager, LocalStorageStrategy


def config(tmp_path: Path, **fields: object) -> StorageConfig:
    return StorageConfig(storage_type="local", base_path=str(tmp_path / "base"), **fields)  # type: ignore[arg-type]


async def test_an_object_replaced_by_a_link_outside_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("the host's private file")
    strategy = LocalStorageStrategy(config(tmp_path))
    await strategy.start()
    await strategy.put("notes.txt", b"ours")
    path = strategy.path_for("notes.txt")
    os.unlink(path)
    os.symlink(secret, path)
    with pytest.raises(StorageError, match="symbolic link"):
        await strategy.get("notes.txt")
    with pytest.raises(StorageError, match="symbolic link"):
        await strategy.open("notes.txt")
    assert not await strategy.exists("notes.txt")
    await strategy.close()


async def test_a_shard_folder_replaced_by_a_link_takes_no_write_outside(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    strategy = LocalStorageStrategy(config(tmp_path))
    await strategy.start()
    shard = os.path.dirname(strategy.path_for("report.csv"))
    os.rmdir(shard)
    os.symlink(outside, shard)
    with pytest.raises(StorageError, match="symbolic link"):
        await strategy.put("report.csv", b"a,b\n")

    async def chunks():  # type: ignore[no-untyped-def]
        yield b"a,b\n"

    with pytest.raises(StorageError, match="symbolic link"):
        await strategy.put("report.csv", chunks())
    with pytest.raises(StorageError, match="symbolic link"):
        await strategy.delete("report.csv")
    assert list(outside.iterdir()) == []
    await strategy.close()
    # Started again, the planted link is refused outright.
    with pytest.raises(StorageError, match="not a folder"):
        await LocalStorageStrategy(config(tmp_path)).start()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("page.html", b"<!doctype html><script>alert(1)</script>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("feed.xml", b"<?xml version='1.0'?><x/>"),
    ],
)
async def test_script_bearing_web_content_is_not_allowed_by_default(
    tmp_path: Path, name: str, content: bytes
) -> None:
    manager = FileStorageManager(config(tmp_path))
    await manager.start()
    with pytest.raises(FileTypeNotAllowedError):
        await manager.save_file(content, name)
    await manager.close()


async def test_a_killed_writes_temporary_file_is_removed_at_start(tmp_path: Path) -> None:
    strategy = LocalStorageStrategy(config(tmp_path, temp_max_age=60))
    await strategy.start()
    path = strategy.path_for("big.csv")
    leftover = f"{path}~d0123456789abcdef~tmp"  # what a SIGKILLed writer leaves
    Path(leftover).write_bytes(b"x" * 1024)
    fresh = f"{path}~dfedcba9876543210~tmp"  # a write in progress right now
    Path(fresh).write_bytes(b"y")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    await strategy.close()
    await strategy.start()  # a restart
    assert not os.path.exists(leftover)
    assert os.path.exists(fresh)
    await strategy.close()


async def test_opted_in_web_content_on_s3_downloads_rather_than_runs(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    allowed = [*s3_config.allowed_extensions, ".html", ".svg"]
    manager = FileStorageManager(dataclasses.replace(s3_config, allowed_extensions=allowed))
    await manager.start()
    try:
        page = await manager.save_file(b"<!doctype html><p>hi</p>", "landing.html")
        image = await manager.save_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"x" * 64, "a.png")
        head = s3_client.head_object(Bucket=s3_bucket, Key=page)
        assert head["ContentDisposition"] == "attachment"
        assert "ContentDisposition" not in s3_client.head_object(Bucket=s3_bucket, Key=image)
    finally:
        for name in (page, image):
            await manager.delete_file(name)
        await manager.close()


def _plant_gzip_bomb(path: str) -> None:
    """Replace the file with 1 MB of gzip holding 1 GiB; its metadata claims 1 TB."""
    meta = json.loads(os.getxattr(path, "user.ads.meta"))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as out:
        chunk = b" " * (1 << 20)
        for _ in range(1024):
            out.write(chunk)
    meta["metadata"].update({"ads-size": str(10**12), "ads-encoding": "gzip"})
    os.setxattr(path, "user.ads.meta", json.dumps(meta).encode())


async def test_a_planted_gzip_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    manager = FileStorageManager(config(tmp_path, max_file_size=8 << 20))
    await manager.start()
    name = await manager.save_file(b"campaign,clicks\n" * 2000, "report.csv")
    strategy = manager.strategy
    assert isinstance(strategy, LocalStorageStrategy)
    _plant_gzip_bomb(strategy.path_for(name))
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityCheckError, match="expands beyond 8,388,608 bytes"):
            await manager.get_file(name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await manager.close()
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"
