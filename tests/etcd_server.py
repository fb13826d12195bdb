"""etcd processes that tests start themselves: free loopback ports, a private data dir.

The Debian package ``etcd-server`` (3.4 on bookworm) provides ``/usr/bin/etcd``;
``.ci/install-packages`` installs it when missing. A test that needs etcd
uses the ``etcd_server`` fixture, which skips (or fails, with
``ADS_REQUIRE_SERVICES=1``) when the binary is absent. The server can be
stopped (SIGKILL) and started again on the same ports and data, which is what
the "etcd went away" tests do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import free_port, unavailable

ETCD = shutil.which("etcd") or ("/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None)


class EtcdServer:
    """One single-member etcd on fixed loopback ports; can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.client_port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        assert ETCD is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = (self.directory / "etcd.log").open("ab")
        self.process = subprocess.Popen(
            [
                ETCD,
                "--name",
                "test",
                "--data-dir",
                str(self.directory / "data"),
                "--listen-client-urls",
                self.url,
                "--advertise-client-urls",
                self.url,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"test={peer}",
                "--initial-cluster-state",
                "new",
                "--log-level",
                "warn",
            ],
            stdout=log,
            stderr=log,
            # The machine's own etcd settings (ETCD_*) must not leak into the private one.
            env={k: v for k, v in os.environ.items() if not k.startswith("ETCD_")},
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                    if b'"true"' in resp.read():
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd on {self.url} did not become healthy: {self.log()}")

    def stop(self) -> None:
        """Kill the server abruptly (SIGKILL): watches and keep-alives break."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.directory / "etcd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@pytest.fixture
def etcd_server(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd of this test's own, on free loopback ports, stopped afterwards."""
    if ETCD is None:
        unavailable("etcd is not installed (Debian package etcd-server; .ci/install-packages)")
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    try:
        yield server
    finally:
        server.stop()
