"""StorageConfig's own checks: the S3 endpoint, prefix and presigned URL lifetime."""

from __future__ import annotations

import pytest

from ads_infra.config import StorageConfig, StorageType
from ads_infra.errors import ConfigurationError, InvalidFileNameError
from ads_infra.storage.base import validate_key


def s3(**fields: object) -> StorageConfig:
    return StorageConfig(storage_type=StorageType.S3, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://minio:hunter2pw@127.0.0.1:9000",
        "https://AKIA:hunter2pw@s3.example.com",
        "http://user@127.0.0.1:9000",
    ],
)
def test_endpoint_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        s3(s3_endpoint_url=url)
    message = str(caught.value)
    assert caught.value.key == "s3_endpoint_url"
    assert "hunter2pw" not in message
    assert "s3_access_key_id" in message and "AWS_SECRET_ACCESS_KEY" in message


def test_endpoint_without_credentials_is_accepted() -> None:
    assert s3(s3_endpoint_url="http://127.0.0.1:9000").s3_endpoint_url == "http://127.0.0.1:9000"


BAD_PREFIXES = ["a//b", "../x", "a/./b", "a/..", "a\x00b", "a\x7fb", "a\\b", "C:x", "é" * 256]


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_s3_prefix_follows_the_key_rules(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="'/'-separated names") as caught:
        s3(s3_prefix=prefix)
    assert caught.value.key == "s3_prefix"
    with pytest.raises(InvalidFileNameError):  # the rules are the keys' (validate_key)
        validate_key(f"{prefix}/x")


@pytest.mark.parametrize("prefix", ["", "/", "tenant-1", "tenant-1/", "/a/b/", "tenant 1", "ü"])
def test_usable_s3_prefixes_are_accepted(prefix: str) -> None:
    assert s3(s3_prefix=prefix).s3_prefix == prefix


def test_presign_expiry_is_at_most_seven_days() -> None:
    assert s3(presign_expiry=604_800).presign_expiry == 604_800
    with pytest.raises(ConfigurationError, match="<= 604800") as caught:
        s3(presign_expiry=604_801)
    assert caught.value.key == "presign_expiry"
