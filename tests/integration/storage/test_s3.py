"""CloudStorageStrategy against moto_server, cross-checked with boto3 as the independent client."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import obstore
import pytest

from ads_infra.config import StorageConfig
from ads_infra.errors import (
    FileTooLargeError,
    InvalidFileNameError,
    ObjectExistsError,
    StorageError,
    StoredFileNotFoundError,
)
from ads_infra.storage import CloudStorageStrategy, FileStorageManager
from ads_infra.storage.s3 import PENDING

MIB = 1024 * 1024


def with_fields(config: StorageConfig, **fields: Any) -> StorageConfig:
    return StorageConfig(**{**config.to_dict(), **fields})


async def chunks(data: bytes, size: int = MIB) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


async def test_what_the_strategy_writes_boto3_reads(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(s3_config)
    await strategy.start()
    body = os.urandom(10_000)
    await strategy.put(
        "creatives/ad-1.png", body, content_type="image/png", metadata={"campaign": "42"}
    )
    got = s3_client.get_object(Bucket=s3_bucket, Key="creatives/ad-1.png")
    assert got["Body"].read() == body
    assert got["ContentType"] == "image/png"
    assert got["Metadata"] == {"campaign": "42"}
    await strategy.close()


async def test_what_boto3_writes_the_strategy_reads(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    body = os.urandom(3 * MIB)
    s3_client.put_object(
        Bucket=s3_bucket,
        Key="from-boto3/report.pdf",
        Body=body,
        ContentType="application/pdf",
        Metadata={"owner": "user-7", "campaign": "9"},
    )
    strategy = CloudStorageStrategy(s3_config)
    assert await strategy.get("from-boto3/report.pdf") == body
    info = await strategy.stat("from-boto3/report.pdf")
    assert info.content_type == "application/pdf"
    assert info.metadata == {"owner": "user-7", "campaign": "9"}
    assert info.size == len(body)
    streamed = b"".join([c async for c in await strategy.open("from-boto3/report.pdf")])
    assert streamed == body
    # The manager reads foreign objects as they are (no checksum to verify).
    assert await FileStorageManager(s3_config, strategy).get_file("from-boto3/report.pdf") == body
    assert await strategy.exists("from-boto3/report.pdf")
    assert not await strategy.exists("from-boto3/missing.pdf")
    with pytest.raises(StoredFileNotFoundError):
        await strategy.get("from-boto3/missing.pdf")


async def test_manager_metadata_is_visible_to_boto3(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    manager = FileStorageManager(with_fields(s3_config, compression_enabled=False))
    content = b"%PDF-1.7\n" + os.urandom(5000)
    name = await manager.save_file(content, "Q3 report.pdf", metadata={"campaign-id": "42"})
    got = s3_client.get_object(Bucket=s3_bucket, Key=name)
    assert got["Body"].read() == content
    assert got["ContentType"] == "application/pdf"
    meta = got["Metadata"]
    assert meta["campaign-id"] == "42"
    assert meta["ads-size"] == str(len(content))
    assert meta["ads-name"] == "Q3 report.pdf"
    import hashlib

    assert meta["ads-sha256"] == hashlib.sha256(content).hexdigest()


async def test_create_only_never_overwrites(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(with_fields(s3_config, multipart_threshold=5 * MIB))
    await strategy.put("k.bin", b"first", metadata={"v": "1"})
    with pytest.raises(ObjectExistsError, match="already stored"):
        await strategy.put("k.bin", b"second")
    big = os.urandom(11 * MIB)  # the multipart path must not overwrite either
    with pytest.raises(ObjectExistsError):
        await strategy.put("k.bin", big)
    with pytest.raises(ObjectExistsError):
        await strategy.put("k.bin", chunks(big))
    got = s3_client.get_object(Bucket=s3_bucket, Key="k.bin")
    assert got["Body"].read() == b"first" and got["Metadata"] == {"v": "1"}
    await strategy.put("k.bin", b"third", overwrite=True)
    assert await strategy.get("k.bin") == b"third"


async def test_large_files_go_up_in_parts(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    manager = FileStorageManager(
        with_fields(s3_config, multipart_threshold=5 * MIB, compression_enabled=False)
    )
    content = b"\x00\x00\x00\x18ftypisom" + os.urandom(12 * MIB)
    for source in (content, chunks(content)):
        name = await manager.save_file(source, "clip.mp4")
        head = s3_client.head_object(Bucket=s3_bucket, Key=name)
        assert head["ETag"].strip('"').endswith("-3")  # three parts of 5 MiB
        assert head["ContentType"] == "video/mp4"
        assert head["Metadata"]["ads-size"] == str(len(content))
        assert await manager.get_file(name) == content
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "stream"])
async def test_oversize_large_file_leaves_nothing_in_the_bucket(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str, streamed: bool
) -> None:
    manager = FileStorageManager(
        with_fields(
            s3_config, multipart_threshold=5 * MIB, max_file_size=8 * MIB, compression_enabled=False
        )
    )
    content = b"%PDF-1.7\n" + os.urandom(12 * MIB)
    with pytest.raises(FileTooLargeError):
        await manager.save_file(chunks(content) if streamed else content, "big.pdf")
    assert s3_client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


async def test_failed_multipart_upload_is_aborted_and_unreserved(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(with_fields(s3_config, multipart_threshold=5 * MIB))

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MIB)
        yield os.urandom(6 * MIB)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await strategy.put("broken.bin", broken())
    assert s3_client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


async def test_reservation_of_a_killed_upload_is_invisible_and_cleaned(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(s3_config)
    # What a process killed mid-upload leaves: its zero-byte reservation.
    await obstore.put_async(strategy.store, "half.mp4", b"", attributes={PENDING: "x"})
    await strategy.put("done.txt", b"done")
    assert not await strategy.exists("half.mp4")
    with pytest.raises(StoredFileNotFoundError):
        await strategy.get("half.mp4")
    assert [i.key for i in (await strategy.list()).items] == ["done.txt"]
    with pytest.raises(ObjectExistsError):  # still reserved: no one else may create it
        await strategy.put("half.mp4", b"other")
    assert await strategy.cleanup_temp(3600) == 0
    assert await strategy.cleanup_temp(0) == 1
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["done.txt"]


async def test_presigned_url_serves_the_object(s3_config: StorageConfig) -> None:
    manager = FileStorageManager(with_fields(s3_config, compression_enabled=False))
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    name = await manager.save_file(content, "banner.png")
    url = await manager.get_file_url(name, expires_in=60)
    assert url and "X-Amz-Signature=" in url
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert body == content


async def test_listing_by_prefix_and_page(s3_config: StorageConfig) -> None:
    strategy = CloudStorageStrategy(s3_config)
    keys = ["a/1.txt", "a/2.txt", "a/3.txt", "ab.txt", "b/1.txt"]
    for key in keys:
        await strategy.put(key, b"x")
    assert [i.key async for i in strategy.iter_all(page_size=2)] == keys
    assert [i.key async for i in strategy.iter_all("a/", page_size=2)] == keys[:3]
    assert [i.key async for i in strategy.iter_all("a")] == keys[:4]
    page = await strategy.list("a/", limit=2)
    assert [i.key for i in page.items] == ["a/1.txt", "a/2.txt"] and page.next_token == "a/2.txt"


async def test_prefix_keeps_objects_under_it(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(with_fields(s3_config, s3_prefix="tenant-1/"))
    await strategy.put("x.txt", b"x")
    assert [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]] == [
        "tenant-1/x.txt"
    ]
    assert [i.key for i in (await strategy.list()).items] == ["x.txt"]


async def test_unreachable_endpoint_is_a_clear_error_without_secrets(
    s3_config: StorageConfig,
) -> None:
    from tests.services import free_port

    config = with_fields(
        s3_config,
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_secret_access_key="s3cr3t-value",
    )
    strategy = CloudStorageStrategy(config)
    status = await strategy.health_check()
    assert not status.healthy and "s3cr3t-value" not in str(status)
    with pytest.raises(StorageError) as caught:
        await strategy.put("x.txt", b"x")
    assert "s3cr3t-value" not in str(caught.value)
    assert "ADS_S3_ENDPOINT_URL" in str(caught.value)


async def test_endpoint_password_never_reaches_errors_or_health(s3_config: StorageConfig) -> None:
    from tests.services import free_port

    config = with_fields(s3_config, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    # StorageConfig refuses it; forced in past validation, it must not leak either.
    endpoint = config.s3_endpoint_url.replace("//", "//minio:hunter2pw@")  # type: ignore[union-attr]
    object.__setattr__(config, "s3_endpoint_url", endpoint)
    strategy = CloudStorageStrategy(config)
    status = await strategy.health_check()
    assert not status.healthy and status.detail and "hunter2pw" not in str(status)
    with pytest.raises(StorageError) as caught:
        await FileStorageManager(config, strategy).get_file("x.txt")
    assert "127.0.0.1" in str(caught.value) and "hunter2pw" not in str(caught.value)


async def test_metadata_named_like_a_header_never_becomes_one(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    manager = FileStorageManager(s3_config)
    with pytest.raises(InvalidFileNameError, match="'content-type' is reserved"):
        await manager.save_file(b"hello", "a.txt", metadata={"content-type": "text/html"})
    with pytest.raises(InvalidFileNameError, match="'content-disposition' is reserved"):
        await manager.save_file(b"hello", "a.txt", metadata={"content-disposition": "inline"})
    with pytest.raises(InvalidFileNameError, match="'Cache-Control' is reserved"):
        await manager.strategy.put("a.txt", b"hello", metadata={"Cache-Control": "no-store"})
    assert s3_client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


def block_until(done: Any, what: str) -> None:
    """Poll ``done()`` without yielding to the event loop (boto3 calls are synchronous):
    obstore finishes in its own threads, but no task learns of it meanwhile."""
    deadline = time.monotonic() + 30
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within 30 s")
        time.sleep(0.005)


def stored(client: Any, bucket: str, key: str, *, pending: bool) -> bool:
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError:
        return False
    return (PENDING in head["Metadata"]) is pending


def bucket_is_empty(client: Any, bucket: str) -> bool:
    return (
        client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
        and client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    )


async def test_create_cancelled_after_its_upload_landed_leaves_nothing(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(s3_config)
    await strategy.start()  # learns the server honours If-None-Match first
    task = asyncio.create_task(strategy.put("k.txt", b"hello"))
    await asyncio.sleep(0)  # the task hands its PUT to obstore and waits
    block_until(lambda: stored(s3_client, s3_bucket, "k.txt", pending=False), "the upload")
    task.cancel()  # the object is in the bucket; put() has not returned
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket_is_empty(s3_client, s3_bucket)
    await strategy.put("k.txt", b"again")  # the key is free
    assert await strategy.get("k.txt") == b"again"


async def test_multipart_create_cancelled_as_it_reserved_leaves_nothing(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(with_fields(s3_config, multipart_threshold=5 * MIB))
    await strategy.start()  # learns the server honours If-None-Match first
    task = asyncio.create_task(strategy.put("big.bin", os.urandom(6 * MIB)))
    await asyncio.sleep(0)  # the task sends its reservation and waits
    block_until(lambda: stored(s3_client, s3_bucket, "big.bin", pending=True), "the reservation")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket_is_empty(s3_client, s3_bucket)  # a reservation left would block the key
    await strategy.put("big.bin", b"again")
    assert await strategy.get("big.bin") == b"again"


async def test_multipart_create_cancelled_mid_upload_leaves_nothing(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    strategy = CloudStorageStrategy(with_fields(s3_config, multipart_threshold=5 * MIB))
    await strategy.start()  # learns the server honours If-None-Match first
    task = asyncio.create_task(strategy.put("big.bin", os.urandom(30 * MIB)))
    # obstore reads the parts through the event loop: let it run until the upload shows.
    deadline = time.monotonic() + 30
    while not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads"):
        assert not task.done() and time.monotonic() < deadline, "no upload in progress seen"
        await asyncio.sleep(0)
    task.cancel()  # no yield since the check: put() is still waiting for obstore
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket_is_empty(s3_client, s3_bucket)  # aborted (or completed and deleted)
