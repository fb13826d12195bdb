"""``ads-infra bench storage``: FileStorageManager against the raw libraries under it.

Local: save and read 4 KiB and 1 MiB files, against raw aiofiles doing the same
durable write (temporary file, write, fsync, rename) and a plain read. Ours
also validates, hashes, keeps metadata and verifies the checksum on read;
compression and encryption are off in the rows with a target (a 1 MiB row with
both on shows their price).

S3: the same against raw obstore put/get on the same endpoint:
ADS_S3_ENDPOINT_URL (bucket ADS_S3_BUCKET, objects under a unique prefix,
deleted afterwards), else a moto_server started on a free port for the run.
Without moto installed the S3 rows are skipped with a note.

Each row times baseline and ours one operation at a time, in alternation, and
reports ops/s from the median operation, so a noisy neighbour on a shared
machine (fsync latency swings a lot) hurts both sides alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiofiles
import aiofiles.os
import obstore
from obstore.store import S3Store

from ads_infra.core.redact import Secret
from ads_infra.core.settings import StorageConfig, StorageType
from ads_infra.storage import FileStorageManager
from benchmarks.report import Measurement

KIB = 1024
SETUP = "files under ./ (the filesystem of ./var/storage), S3 on moto_server"
MIB = 1024 * KIB
PDF = b"%PDF-1.7\n"


def _content(size: int) -> bytes:
    return PDF + os.urandom(size - len(PDF))


async def _paired(
    baseline: Callable[[], Awaitable[Any]], ours: Callable[[], Awaitable[Any]], n: int
) -> tuple[float, float]:
    """(ours, baseline) in ops/s, from the median time of one operation.

    Durable writes are dominated by fsync latency, which swings with whatever
    else the disk is doing: the two sides are timed in turns, one operation
    each (the order flipping every time), so both see the same conditions, and
    the median keeps a few stalls from deciding the ratio.
    """
    for _ in range(2):  # warm-up: folders, caches, connections
        await baseline()
        await ours()
    times: dict[str, list[float]] = {"baseline": [], "ours": []}
    for i in range(n):
        pair = (("baseline", baseline), ("ours", ours))
        for side, op in pair if i % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            await op()
            times[side].append(time.perf_counter() - started)
    return 1 / statistics.median(times["ours"]), 1 / statistics.median(times["baseline"])


async def _raw_save(folder: str, data: bytes) -> None:
    final = os.path.join(folder, uuid.uuid4().hex)
    tmp = final + ".tmp"
    async with aiofiles.open(tmp, "wb") as f:
        await f.write(data)
        await f.flush()
        await aiofiles.os.wrap(os.fsync)(f.fileno())
    await aiofiles.os.replace(tmp, final)


async def _raw_read(path: str) -> bytes:
    async with aiofiles.open(path, "rb") as f:
        return await f.read()


def _cycle(items: list[str]) -> Callable[[], str]:
    state = {"i": 0}

    def next_item() -> str:
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]

    return next_item


async def _local(quick: bool) -> list[Measurement]:
    # In the working folder: the filesystem the default ./var/storage lives on.
    root = await asyncio.to_thread(tempfile.mkdtemp, prefix="ads-bench-storage-", dir=".")
    out: list[Measurement] = []
    try:
        raw_dir = os.path.join(root, "raw")
        os.makedirs(raw_dir)
        plain = FileStorageManager(
            StorageConfig(
                base_path=os.path.join(root, "ours"),
                compression_enabled=False,
                encryption_enabled=False,
            )
        )
        sealed = FileStorageManager(
            StorageConfig(
                base_path=os.path.join(root, "sealed"),
                compression_enabled=True,
                encryption_enabled=True,
                encryption_key=Secret(os.urandom(32).hex()),
            )
        )
        await plain.start()
        await sealed.start()
        for label, size, n in (
            ("4 KiB", 4 * KIB, 150 if quick else 2000),
            ("1 MiB", MIB, 20 if quick else 200),
        ):
            data = _content(size)
            ours, base = await _paired(
                lambda data=data: _raw_save(raw_dir, data),  # type: ignore[misc]
                lambda data=data: plain.save_file(data, "bench.pdf"),  # type: ignore[misc]
                n,
            )
            out.append(
                Measurement(
                    "storage", f"local save {label}", ours, "aiofiles+fsync+rename", base,
                    target=0.8, note="compression and encryption off",
                )
            )  # fmt: skip
            raw_files = [os.path.join(raw_dir, f) for f in os.listdir(raw_dir)][:50]
            our_files = [item.key async for item in plain.strategy.iter_all()][:50]
            next_raw, next_ours = _cycle(raw_files), _cycle(our_files)
            ours, base = await _paired(
                lambda next_raw=next_raw: _raw_read(next_raw()),  # type: ignore[misc]
                lambda next_ours=next_ours: plain.get_file(next_ours()),  # type: ignore[misc]
                n * 2,
            )
            out.append(
                Measurement(
                    "storage", f"local read {label}", ours, "aiofiles read", base,
                    note="ours also reads metadata and verifies sha256",
                )
            )  # fmt: skip
        text = (b"campaign,impressions,clicks\n" + b"c1,1000,17\n" * (MIB // 11))[:MIB]
        ours, base = await _paired(
            lambda: _raw_save(raw_dir, text),
            lambda: sealed.save_file(text, "bench.csv"),
            8 if quick else 60,
        )
        out.append(
            Measurement(
                "storage", "local save 1 MiB csv, gzip+AES-GCM", ours, "aiofiles+fsync+rename",
                base, note="the price of compression and encryption",
            )
        )  # fmt: skip
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)
    return out


async def _raw_put(store: S3Store, data: bytes, keys: list[str]) -> None:
    key = uuid.uuid4().hex
    await obstore.put_async(store, key, data)
    keys.append(key)


async def _raw_get(store: S3Store, key: str) -> bytes:
    result = await obstore.get_async(store, key)
    return bytes(await result.bytes_async())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _s3_endpoint() -> AsyncIterator[tuple[str, str, str | None]]:
    """(endpoint, bucket, note): the configured endpoint, or a moto_server of our own."""
    configured = os.environ.get("ADS_S3_ENDPOINT_URL")
    if configured:
        yield configured, os.environ.get("ADS_S3_BUCKET", "ads-storage"), None
        return
    if importlib.util.find_spec("moto") is None:
        yield "", "", "moto is not installed (pip install -e '.[test]'): S3 rows skipped"
        return
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await asyncio.to_thread(urllib.request.urlopen, f"{endpoint}/moto-api/", None, 1)
                break
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    yield "", "", "moto_server did not start: S3 rows skipped"
                    return
                await asyncio.sleep(0.1)
        bucket = "ads-bench"
        # moto does not check signatures: a bare PUT creates the bucket.
        request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
        await asyncio.to_thread(urllib.request.urlopen, request, None, 5)
        yield endpoint, bucket, None
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def _s3(quick: bool) -> tuple[list[Measurement], str | None]:
    out: list[Measurement] = []
    async with _s3_endpoint() as (endpoint, bucket, note):
        if note:
            return out, note
        if not os.environ.get("ADS_S3_ENDPOINT_URL"):  # our moto: any credentials do
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        prefix = f"ads-bench-{uuid.uuid4().hex[:8]}"
        config = StorageConfig(
            storage_type=StorageType.S3,
            s3_bucket=bucket,
            s3_endpoint_url=endpoint,
            s3_prefix=f"{prefix}/ours",
            compression_enabled=False,
        )
        manager = FileStorageManager(config)
        raw = S3Store(
            bucket,
            prefix=f"{prefix}/raw",
            endpoint=endpoint,
            region=config.s3_region,
            virtual_hosted_style_request=False,
            client_options={"allow_http": endpoint.startswith("http://")},
        )
        try:
            for label, size, n in (
                ("4 KiB", 4 * KIB, 40 if quick else 300),
                ("1 MiB", MIB, 10 if quick else 60),
            ):
                data = _content(size)
                raw_keys: list[str] = []

                ours, base = await _paired(
                    lambda data=data, keys=raw_keys: _raw_put(raw, data, keys),  # type: ignore[misc]
                    lambda data=data: manager.save_file(data, "b.pdf"),  # type: ignore[misc]
                    n,
                )
                out.append(Measurement("storage", f"s3 save {label}", ours, "obstore put", base))
                our_keys = [item.key async for item in manager.strategy.iter_all()][:20]
                next_raw, next_ours = _cycle(raw_keys[:20]), _cycle(our_keys)
                ours, base = await _paired(
                    lambda next_raw=next_raw: _raw_get(raw, next_raw()),  # type: ignore[misc]
                    lambda next_ours=next_ours: manager.get_file(next_ours()),  # type: ignore[misc]
                    n,
                )
                out.append(Measurement("storage", f"s3 read {label}", ours, "obstore get", base))
        finally:
            for store in (raw, manager.strategy.store):  # type: ignore[attr-defined]
                keys = [m["path"] async for chunk in obstore.list(store) for m in chunk]
                if keys:
                    await obstore.delete_async(store, keys)
    return out, None


async def run(*, quick: bool) -> list[Measurement]:
    measurements = await _local(quick)
    s3_rows, note = await _s3(quick)
    if note:
        print(f"bench storage: {note}", file=sys.stderr)
    return measurements + s3_rows
