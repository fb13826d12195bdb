"""redis-server processes that tests start themselves, on free ports, persistence off.

A private server (the ``private_redis`` fixture) is what fault tests stop and
start: the machine's Redis is never stopped or reconfigured. The cache tests
also build a 3-node cluster from :class:`RedisServer` (their conftest).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import free_port, unavailable

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free too."""
    for _ in range(50):
        port = free_port()
        if port < 55535 and _port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _cli(port: int, *args: str, timeout: float = 5.0) -> str:
    assert REDIS_CLI is not None
    done = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


def _wait_until(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"gave up waiting for {what}")


class RedisServer:
    """One redis-server process on a fixed port; can be stopped and started again."""

    def __init__(self, directory: Path, port: int, *extra: str) -> None:
        self.directory = directory
        self.port = port
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until(lambda: _cli(self.port, "PING").strip() == "PONG", f"redis on {self.port}")

    def stop(self) -> None:
        """Kill the server abruptly (SIGKILL): in-flight commands fail."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def cli(self, *args: str) -> str:
        return _cli(self.port, *args)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port (never the machine's)."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        unavailable("redis-server / redis-cli are not installed")
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
