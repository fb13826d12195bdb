"""A real DNS server (dnslib, UDP on a free loopback port) serving a test zone tests change.

It answers SRV queries with the records a test set (each target's A record in
the additional section, as Kubernetes and Consul do) and A queries for the
targets; any other name is NXDOMAIN. Records carry the zone's ``ttl``, so the
discovery's re-resolution on TTL expiry is what the tests see.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, RR, SRV, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Zone(BaseResolver):  # type: ignore[misc]
    """SRV name -> [(target, port)], every target at 127.0.0.1."""

    def __init__(self, ttl: int = 1) -> None:
        self.ttl = ttl
        self.srv: dict[str, list[tuple[str, int]]] = {}
        self.queries = 0
        self._lock = threading.Lock()

    def set(self, name: str, *targets: tuple[str, int]) -> None:
        with self._lock:
            self.srv[name.rstrip(".") + "."] = list(targets)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        qname, qtype = str(request.q.qname), QTYPE[request.q.qtype]
        with self._lock:
            self.queries += 1
            records = self.srv.get(qname)
            targets = {t for entries in self.srv.values() for t, _ in entries}
        if qtype == "SRV" and records is not None:
            for target, port in records:
                reply.add_answer(RR(qname, QTYPE.SRV, ttl=self.ttl, rdata=SRV(0, 10, port, target)))
                reply.add_ar(RR(target, QTYPE.A, ttl=self.ttl, rdata=A("127.0.0.1")))
        elif qtype == "A" and qname in {t.rstrip(".") + "." for t in targets}:
            reply.add_answer(RR(qname, QTYPE.A, ttl=self.ttl, rdata=A("127.0.0.1")))
        elif records is None and qname not in {t.rstrip(".") + "." for t in targets}:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsTestServer:
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.port = _free_udp_port()
        self._server = DNSServer(
            zone,
            address="127.0.0.1",
            port=self.port,
            logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False),
        )

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start_thread()

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()


@pytest.fixture
def dns_server() -> Iterator[DnsTestServer]:
    """A DNS server of this test's own on a free loopback UDP port, with an empty zone."""
    server = DnsTestServer(Zone(ttl=1))
    server.start()
    try:
        yield server
    finally:
        server.stop()
