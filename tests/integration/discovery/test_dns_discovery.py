"""DNS discovery: SRV records from a real DNS server (dnslib) the test starts and changes.

The records' TTL is 1 s: after the zone changes, the discovery re-resolves
when the answer's TTL runs out, and the calls follow the new records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from dnslib import QTYPE, RCODE, DNSRecord
from dnslib.server import DNSHandler

from ads_infra.core.errors import NoInstancesError
from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery import DnsDiscovery
from ads_infra.external_services import ExternalServiceConfig, ExternalServiceManager
from tests.dns_server import DnsTestServer, Zone, dns_server  # noqa: F401  (fixture)
from tests.integration.discovery.conftest import eventually

SRV_NAME = "_ai._tcp.ads.test"


async def _instance(name: str) -> tuple[web.AppRunner, int]:
    async def whoami(request: web.Request) -> web.StreamResponse:
        return web.json_response({"instance": name})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest.fixture
async def two_instances() -> AsyncIterator[dict[str, int]]:
    a, port_a = await _instance("A")
    b, port_b = await _instance("B")
    try:
        yield {"A": port_a, "B": port_b}
    finally:
        await a.cleanup()
        await b.cleanup()


def _config(server: DnsTestServer, **extra: object) -> DiscoveryConfig:
    return DiscoveryConfig(
        backend="dns",  # type: ignore[arg-type]
        dns_nameservers=[server.nameserver],
        dns_srv_name="_{service}._tcp.ads.test",
        resolve=["ai.openai=ai"],
        **extra,  # type: ignore[arg-type]
    )


async def test_srv_records_spread_calls_and_are_re_resolved_on_ttl(
    dns_server: DnsTestServer,  # noqa: F811
    two_instances: dict[str, int],
) -> None:
    zone = dns_server.zone
    zone.set(SRV_NAME, ("a.ads.test", two_instances["A"]), ("b.ads.test", two_instances["B"]))
    async with DnsDiscovery(_config(dns_server)) as discovery:
        live = discovery.instances("ai")
        assert sorted(live.urls) == sorted(
            f"http://127.0.0.1:{port}" for port in two_instances.values()
        )
        manager = ExternalServiceManager(discovery=discovery)
        manager.register_service("ai.openai", ExternalServiceConfig(base_url="http://ai.invalid"))
        try:

            async def who() -> str:
                return str((await manager.request_json("ai.openai", "GET", "/whoami"))["instance"])

            assert Counter([await who() for _ in range(10)]) == {"A": 5, "B": 5}

            # B leaves the zone: once the 1 s TTL runs out, it is resolved away.
            zone.set(SRV_NAME, ("a.ads.test", two_instances["A"]))
            await eventually(lambda: len(live.urls) == 1)
            assert Counter([await who() for _ in range(6)]) == {"A": 6}

            # The name disappears altogether: an error naming the service, nothing sent.
            zone.srv.clear()
            await eventually(lambda: not live.urls)
            with pytest.raises(NoInstancesError, match="'ai'"):
                await who()
        finally:
            await manager.close()
        health = await discovery.health_check()
        assert health.healthy and health.backend == "dns" and "ai: 0" in health.detail


async def test_an_unreachable_dns_server_keeps_the_last_known_instances(
    dns_server: DnsTestServer,  # noqa: F811
    two_instances: dict[str, int],
) -> None:
    dns_server.zone.set(SRV_NAME, ("a.ads.test", two_instances["A"]))
    async with DnsDiscovery(_config(dns_server, timeout=0.2)) as discovery:
        live = discovery.instances("ai")
        assert len(live.urls) == 1
        dns_server.stop()
        await eventually(lambda: live.stale_since is not None)
        assert live.urls == [f"http://127.0.0.1:{two_instances['A']}"]
        health = await discovery.health_check()
        assert not health.healthy
        assert "serving last known instances since" in health.detail


class _OneBrokenTarget(Zone):
    """A zone whose target ``broken.ads.test`` has no address in the SRV answer and
    whose own lookups fail (SERVFAIL), as a half-configured DNS would have it."""

    BROKEN = "broken.ads.test."

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        if str(request.q.qname) == self.BROKEN:
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        reply = super().resolve(request, handler)
        reply.ar = [rr for rr in reply.ar if str(rr.rname) != self.BROKEN]
        return reply


async def test_a_target_that_cannot_be_resolved_leaves_the_others_in_use(
    two_instances: dict[str, int],
) -> None:
    """One SRV target whose address lookup fails must not take the others out of use."""
    server = DnsTestServer(_OneBrokenTarget(ttl=1))
    server.start()
    try:
        server.zone.set(SRV_NAME, ("a.ads.test", two_instances["A"]), (_OneBrokenTarget.BROKEN, 9))
        async with DnsDiscovery(_config(server, timeout=0.5)) as discovery:
            live = await discovery.resolve("ai")
            assert live.urls == [f"http://127.0.0.1:{two_instances['A']}"]
    finally:
        server.stop()


class _NoAaaaAnswer(Zone):
    """A zone that sends no address in the SRV answer and answers SERVFAIL to every
    AAAA question, as some resolvers in front of IPv4-only zones do."""

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        if QTYPE[request.q.qtype] == "AAAA":
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        reply = super().resolve(request, handler)
        reply.ar = []
        return reply


async def test_a_target_whose_aaaa_lookup_fails_is_used_by_its_a_records(
    two_instances: dict[str, int],
) -> None:
    server = DnsTestServer(_NoAaaaAnswer(ttl=1))
    server.start()
    try:
        server.zone.set(SRV_NAME, ("a.ads.test", two_instances["A"]))
        async with DnsDiscovery(_config(server, timeout=0.5)) as discovery:
            live = await discovery.resolve("ai")
            assert live.urls == [f"http://127.0.0.1:{two_instances['A']}"]
    finally:
        server.stop()
