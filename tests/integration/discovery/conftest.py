"""Real etcd, real HTTP instances (subprocesses) and a real DNS server for the discovery tests.

``etcd_server`` is a private etcd (tests/etcd_server.py). :class:`InstanceProcess`
is one stand-in service instance (tests/discovery_instance.py) that registers
itself in that etcd and can be killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.etcd_server import etcd_server  # noqa: F401  (fixture)
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[3]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.filterwarnings("error::ResourceWarning"))


async def eventually(condition: Callable[[], bool], *, seconds: float = 20.0) -> None:
    """Wait for something the background does (a lease to expire, a watch to deliver).

    Fails only if it never happens within a generous bound; no test asserts how fast.
    """
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never became true")


class InstanceProcess:
    """One stand-in instance of ``service`` on its own port, registered in etcd with ``ttl``."""

    def __init__(self, name: str, etcd_url: str, service: str, ttl: int) -> None:
        self.name = name
        self.etcd_url = etcd_url
        self.service = service
        self.ttl = ttl
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.discovery_instance",
                self.name,
                str(self.port),
                self.etcd_url,
                self.service,
                str(self.ttl),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "ready" once registered (or EOF if it died)
        if line.strip() != "ready":
            self.process.wait(timeout=10)
            raise RuntimeError(
                f"instance {self.name} did not start (exit {self.process.returncode})"
            )

    def kill(self) -> None:
        """SIGKILL: no deregistration, the lease is left to expire."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@pytest.fixture
def instances() -> Iterator[Callable[[str, str, str, int], InstanceProcess]]:
    """Start stand-in instances; every one still running is killed afterwards."""
    started: list[InstanceProcess] = []

    def start(name: str, etcd_url: str, service: str, ttl: int) -> InstanceProcess:
        instance = InstanceProcess(name, etcd_url, service, ttl)
        instance.start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.kill()
