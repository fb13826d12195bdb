"""What other S3 readers get, tiny files, and create-only writes on a server that ignores
If-None-Match: on the session's moto_server, read back with boto3 and plain HTTP."""

from __future__ import annotations

import dataclasses
import gzip
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ads_infra.config import StorageConfig
from ads_infra.errors import ObjectExistsError, StorageError
from ads_infra.storage import CloudStorageStrategy, FileStorageManager

CSV = b"campaign,clicks,cost\n" + b"".join(b"%d,%d,%d.50\n" % (i, i * 7, i) for i in range(400))
KEY = "00" * 32


def plain_get(url: str) -> tuple[bytes, dict[str, str]]:
    """A GET that decodes nothing, as curl without --compressed does."""
    with urllib.request.urlopen(url) as response:  # a presigned URL on 127.0.0.1
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


async def test_a_csv_saved_on_s3_by_default_reads_as_the_original_everywhere(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    manager = FileStorageManager(s3_config)  # compression_enabled unset: off on S3
    name = await manager.save_file(CSV, "report.csv")

    got = s3_client.get_object(Bucket=s3_bucket, Key=name)
    assert got["Body"].read() == CSV  # boto3, and so the aws CLI
    assert got["ContentType"].startswith("text/csv") and "ContentEncoding" not in got
    body, headers = plain_get(await manager.get_file_url(name) or "")
    assert body == CSV and "content-encoding" not in headers  # curl on a presigned URL
    assert (await manager.get_file_info(name))["compressed"] is False
    assert (await manager.get_storage_stats())["compression_enabled"] is False


async def test_a_compressed_csv_on_s3_says_content_encoding_gzip(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    manager = FileStorageManager(dataclasses.replace(s3_config, compression_enabled=True))
    name = await manager.save_file(CSV, "report.csv")
    url = await manager.get_file_url(name) or ""

    # An HTTP client honouring Content-Encoding (browsers, requests, aiohttp,
    # curl --compressed) gets the CSV from the presigned URL.
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert await response.read() == CSV
        assert response.headers["Content-Type"].startswith("text/csv")
    body, headers = plain_get(url)
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == CSV
    # boto3 does not decode, but is told how the bytes are encoded.
    got = s3_client.get_object(Bucket=s3_bucket, Key=name)
    assert got["ContentEncoding"] == "gzip"
    assert gzip.decompress(got["Body"].read()) == CSV
    assert await manager.get_file(name) == CSV
    info = await manager.get_file_info(name)
    assert info["compressed"] and info["stored_size"] < len(CSV) / 2


async def test_an_encrypted_object_claims_no_content_encoding(
    s3_config: StorageConfig, s3_client: Any, s3_bucket: str
) -> None:
    config = dataclasses.replace(
        s3_config, compression_enabled=True, encryption_enabled=True, encryption_key=KEY
    )
    manager = FileStorageManager(config)
    name = await manager.save_file(CSV, "report.csv")
    got = s3_client.get_object(Bucket=s3_bucket, Key=name)
    assert "ContentEncoding" not in got  # ciphertext is no gzip stream
    assert got["Metadata"]["ads-encoding"] == "gzip"
    assert await manager.get_file(name) == CSV


@pytest.mark.parametrize("content", [b"4 B!", b"", b'{"a": 1}'])
async def test_gzip_is_not_kept_when_it_would_not_shrink_the_file(
    make_config: Any, content: bytes
) -> None:
    manager = FileStorageManager(make_config(compression_enabled=True))
    name = await manager.save_file(content, "tiny.json" if content.startswith(b"{") else "t.txt")
    info = await manager.get_file_info(name)
    assert info["stored_size"] == len(content) and info["compressed"] is False
    assert await manager.get_file(name) == content


async def test_a_small_stream_is_judged_whole_and_a_large_one_compressed(make_config: Any) -> None:
    manager = FileStorageManager(make_config(compression_enabled=True))

    async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    tiny = await manager.save_file(chunks(b"tiny!", 2), "t.txt")
    assert (await manager.get_file_info(tiny))["stored_size"] == 5
    big_csv = CSV * 40  # ~250 KB: past the first 64 KiB, streamed
    big = await manager.save_file(chunks(big_csv, 8192), "big.csv")
    info = await manager.get_file_info(big)
    assert info["compressed"] and info["stored_size"] < len(big_csv) / 2
    assert await manager.get_file(big) == big_csv


# --- a server that ignores If-None-Match (as s3rver does) ----------------------------------


@pytest.fixture
async def careless_s3(moto_endpoint: str) -> AsyncIterator[str]:
    """moto behind a proxy that drops If-None-Match: an S3 server ignoring it."""
    session = aiohttp.ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("if-none-match", "host", "content-length", "transfer-encoding")
        }
        async with session.request(
            request.method,
            moto_endpoint + request.path_qs,
            headers=headers,
            data=await request.read(),
        ) as upstream:
            body = await upstream.read()
            dropped = ("transfer-encoding", "connection")
            if request.method != "HEAD":  # a HEAD's Content-Length is the object's size
                dropped += ("content-length",)
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
            return web.Response(status=upstream.status, body=body, headers=passed)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{path:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await session.close()


def on(config: StorageConfig, endpoint: str, mode: str) -> CloudStorageStrategy:
    return CloudStorageStrategy(
        dataclasses.replace(config, s3_endpoint_url=endpoint, s3_create_only=mode)
    )


async def test_a_server_ignoring_if_none_match_overwrites_when_trusted(
    s3_config: StorageConfig, careless_s3: str
) -> None:
    # The hazard itself: what "trust" does on such a server, and why it is not the default.
    strategy = on(s3_config, careless_s3, "trust")
    await strategy.start()
    await strategy.put("k.txt", b"first")
    await strategy.put("k.txt", b"second")  # create-only, yet it overwrote
    assert await strategy.get("k.txt") == b"second"


async def test_a_server_ignoring_if_none_match_is_refused_at_start(
    s3_config: StorageConfig, careless_s3: str, s3_client: Any, s3_bucket: str
) -> None:
    strategy = on(s3_config, careless_s3, "verify")
    with pytest.raises(StorageError, match=r"ignores If-None-Match.*s3_create_only: emulate"):
        await strategy.start()
    with pytest.raises(StorageError, match="ignores If-None-Match"):
        await strategy.put("k.txt", b"first")  # not started: the check runs on first write
    assert s3_client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0  # probe removed


async def test_emulated_create_only_refuses_an_existing_key(
    s3_config: StorageConfig, careless_s3: str
) -> None:
    strategy = on(s3_config, careless_s3, "emulate")
    await strategy.start()
    await strategy.put("k.txt", b"first")
    with pytest.raises(ObjectExistsError):
        await strategy.put("k.txt", b"second")
    assert await strategy.get("k.txt") == b"first"
    await strategy.put("k.txt", b"second", overwrite=True)
    assert await strategy.get("k.txt") == b"second"


async def test_a_server_honouring_if_none_match_passes_the_check(s3_config: StorageConfig) -> None:
    strategy = CloudStorageStrategy(s3_config)
    await strategy.start()
    await strategy.put("k.txt", b"first")
    with pytest.raises(ObjectExistsError):
        await strategy.put("k.txt", b"second")
