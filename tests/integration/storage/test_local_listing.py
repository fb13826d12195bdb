"""Local listing: the store's order, cursors that resume, what is not an object, links."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ads_infra.storage import LocalStorageStrategy, StorageConfig


def shard(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:2]


async def started(tmp_path: Path) -> LocalStorageStrategy:
    strategy = LocalStorageStrategy(StorageConfig(base_path=str(tmp_path / "s")))
    await strategy.start()
    return strategy


async def test_pages_follow_the_shards_and_resume_from_any_cursor(tmp_path: Path) -> None:
    strategy = await started(tmp_path)
    keys = [f"r/{i:03d}.csv" for i in range(120)] + ["a b~c%d.txt", "ü/ö.txt"]
    for key in keys:
        await strategy.put(key, key.encode())
    order = sorted(keys, key=lambda k: (shard(k), k))
    pages, cursor = [], None
    while True:
        page = await strategy.list(limit=7, start_after=cursor)
        pages.append([item.key for item in page.items])
        if page.next_token is None:
            break
        assert page.next_token == page.items[-1].key
        cursor = page.next_token
    assert [k for p in pages for k in p] == order
    assert all(len(p) == 7 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 7
    # Any key resumes the listing right after it, whether or not it is still stored.
    middle = order[60]
    assert [i.key for i in (await strategy.list(limit=5, start_after=middle)).items] == order[61:66]
    await strategy.delete(middle)
    assert [i.key for i in (await strategy.list(limit=5, start_after=middle)).items] == order[61:66]
    # Sizes and times come with the items (one stat per item returned).
    first = (await strategy.list(limit=1)).items[0]
    assert first.size == len(first.key.encode()) and first.last_modified.tzinfo is not None
    # A prefix lists across the shards, in the same order.
    under = [i.key async for i in strategy.iter_all("r/", page_size=9)]
    assert under == [k for k in order if k.startswith("r/") and k != middle]
    await strategy.close()


async def test_the_last_page_ends_exactly(tmp_path: Path) -> None:
    strategy = await started(tmp_path)
    assert (await strategy.list()).items == []
    keys = ["one.txt", "two.txt", "three.txt"]
    for key in keys:
        await strategy.put(key, b"x")
    page = await strategy.list(limit=3)
    assert len(page.items) == 3 and page.next_token is None
    page = await strategy.list(limit=2)
    assert len(page.items) == 2 and page.next_token == page.items[-1].key
    rest = await strategy.list(limit=2, start_after=page.next_token)
    assert len(rest.items) == 1 and rest.next_token is None
    with pytest.raises(ValueError, match="limit"):
        await strategy.list(limit=0)
    await strategy.close()


async def test_what_is_not_an_object_is_not_listed(tmp_path: Path) -> None:
    strategy = LocalStorageStrategy(
        StorageConfig(base_path=str(tmp_path / "s"), local_metadata="sidecar")
    )
    await strategy.start()
    await strategy.put("kept.txt", b"x", metadata={"a": "b"})  # with a ~meta sidecar
    folder = Path(strategy.path_for("kept.txt")).parent
    (folder / "kept.txt~d0123~tmp").write_bytes(b"a write in progress")
    (folder / "a-folder").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"the host's file")
    os.symlink(outside, folder / "a-link")
    (folder / "%41").write_bytes(b"a name this store never writes (it would be 'A')")
    (folder / "a b.txt").write_bytes(b"nor this one (it would be 'a%20b.txt')")
    # A shard folder replaced by a link is not read either.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "planted.txt").write_bytes(b"x")
    other = next(s for s in (f"{i:02x}" for i in range(256)) if s != folder.name)
    os.rmdir(tmp_path / "s" / other)
    os.symlink(elsewhere, tmp_path / "s" / other)
    page = await strategy.list()
    assert [i.key for i in page.items] == ["kept.txt"] and page.next_token is None
    await strategy.close()
