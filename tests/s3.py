"""A real S3 for tests: ``moto_server`` on 127.0.0.1 and a free port, one bucket per test.

``python -m tests.s3 demo`` (``make demo-s3``) runs the demo on it.

The server runs once per session (starting it takes ~1 s); each test gets its
own bucket, emptied and deleted afterwards. boto3 is the independent client
tests use to check what ads-infra wrote. The fixtures are registered in
tests/conftest.py so every test folder can use them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import free_port, unavailable, unique_name

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # moto accepts any credentials; these are the conventional dummies
REGION = "us-east-1"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run ``moto_server`` on 127.0.0.1 and a free port; yield its URL, stop it afterwards."""
    port = free_port()
    # A file, not a pipe: moto logs a line per request to stderr, and a pipe
    # nobody reads fills up after a few hundred requests and freezes the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        err = log.read().decode(errors="replace")[-500:]
                        raise RuntimeError(
                            f"moto_server did not start on port {port}: {err}"
                        ) from None
                    time.sleep(0.1)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto_server started for this session, stopped after it."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        unavailable("moto[server] is not installed; pip install -e '.[test]'")
    try:
        server = moto_server()
        endpoint = server.__enter__()
    except RuntimeError as exc:
        unavailable(str(exc))
    try:
        yield endpoint
    finally:
        server.__exit__(None, None, None)


def client_for(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Any:
    return client_for(moto_endpoint)


def empty_bucket(client: Any, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A fresh bucket, emptied and deleted after the test."""
    bucket = unique_name("ads-test").replace("_", "-").lower()
    s3_client.create_bucket(Bucket=bucket)
    yield bucket
    empty_bucket(s3_client, bucket)
    s3_client.delete_bucket(Bucket=bucket)


def demo() -> int:
    """``make demo-s3``: the demo on a local S3 (moto_server), the bucket created first."""
    import os

    with moto_server() as endpoint:
        bucket = "ads-demo"
        client_for(endpoint).create_bucket(Bucket=bucket)
        env = {
            **os.environ,
            "ADS_STORAGE_TYPE": "s3",
            "ADS_S3_ENDPOINT_URL": endpoint,
            "ADS_S3_BUCKET": bucket,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        cli = os.path.join(os.path.dirname(sys.executable), "ads-infra")
        return subprocess.call([cli, "demo", *sys.argv[2:]], env=env)


if __name__ == "__main__" and sys.argv[1:2] == ["demo"]:
    sys.exit(demo())
