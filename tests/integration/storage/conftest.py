"""Storage test fixtures: an S3 config on the session's moto_server (tests/s3.py), backends."""

from __future__ import annotations

from typing import Any

import pytest

from ads_infra.config import Secret, StorageConfig, StorageType
from tests.plugin_packages import require_example
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def s3_config(moto_endpoint: str, s3_bucket: str) -> StorageConfig:
    return StorageConfig(
        storage_type=StorageType.S3,
        s3_bucket=s3_bucket,
        s3_endpoint_url=moto_endpoint,
        s3_region=REGION,
        s3_access_key_id=Secret(ACCESS_KEY),
        s3_secret_access_key=Secret(SECRET_KEY),
    )


# "tree": the example plugin's backend (examples/ads-infra-plugin-example), held to
# the same manager tests as the built-in ones.
@pytest.fixture(params=["local", "local-sidecar", "s3", "tree"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "tree":
        require_example()
    return str(request.param)


@pytest.fixture
def make_config(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """``make_config(**fields)`` -> a StorageConfig for this test's backend."""

    def make(**fields: Any) -> StorageConfig:
        if backend == "s3":
            base = request.getfixturevalue("s3_config").to_dict()
        elif backend == "tree":
            base = {"storage_type": "tree", "options": {"root": str(tmp_path / "tree")}}
        else:
            base = {"storage_type": "local", "base_path": str(tmp_path / "storage")}
            if backend == "local-sidecar":
                base["local_metadata"] = "sidecar"
        base.update(fields)
        return StorageConfig(**base)

    return make
