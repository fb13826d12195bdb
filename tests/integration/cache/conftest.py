"""A 3-node Redis Cluster the cache tests start themselves (tests/redis_server.py).

Plain ``redis-server --cluster-enabled yes`` processes on free ports in a tmp
dir, joined with ``redis-cli --cluster create``, torn down after the session.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.redis_server import (
    REDIS_CLI,
    REDIS_SERVER,
    RedisServer,
    _cluster_port,
    _wait_until,
)
from tests.services import unavailable


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-primary Redis Cluster on free ports; yields the URL of one node."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        unavailable("redis-server / redis-cli are not installed")
    root = tmp_path_factory.mktemp("redis-cluster")
    nodes: list[RedisServer] = []
    try:
        for _ in range(3):
            port = _cluster_port()
            node = RedisServer(
                root / str(port),
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "5000",
            )
            node.start()
            nodes.append(node)
        created = subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        for node in nodes:
            _wait_until(
                lambda node=node: "cluster_state:ok" in node.cli("CLUSTER", "INFO"),
                f"cluster_state:ok on {node.port}",
            )
        yield f"redis://127.0.0.1:{nodes[0].port}/0"
    finally:
        for node in nodes:
            node.stop()
