"""``ads-infra soak``: the demo's workload for N seconds, then a check of every acknowledged write.

Workers run a weighted mix against the configured container (meant for
PostgreSQL, Redis and local storage): cached ad reads, campaign+group+ad
writes through a retried unit of work, performance upserts, storage saves and
AI calls to a local OpenAI-compatible server this module starts on
127.0.0.1. Every write the infrastructure acknowledged is recorded; at the
end each is looked up in the database or storage. Errors are counted by kind:
an ads-infra error is *handled* (the caller got a clear, typed error), any
other exception is *unhandled* and a defect.

Faults are injected from outside (a test, or an operator): stop Redis, kill
PostgreSQL backends (the soak's connections carry application_name
``ads-infra``). ``fault_hook`` lets a caller run that choreography in the
same loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ads_infra.core.errors import InfrastructureError
from ads_infra.core.lifecycle import running
from ads_infra.database import migrate
from ads_infra.domain import Ad, AdGroup, Campaign, PerformanceRecord, Status
from ads_infra.domain.errors import DomainError
from ads_infra.external_services import ExternalServiceConfig, ServiceType

if TYPE_CHECKING:
    from ads_infra.containers import Container

SOAK_USER_ID = 990_001
PROVIDER = "soak"
BASE_DATE = dt.date(2000, 1, 1)

# operation -> weight in the mix
MIX = {"read": 40, "write": 15, "upsert": 20, "save": 10, "ai": 15}


@dataclasses.dataclass
class SoakReport:
    """What the soak did and whether every acknowledged write is still there."""

    seconds: float
    concurrency: int
    operations: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    unhandled: list[str] = dataclasses.field(default_factory=list)
    error_samples: dict[str, str] = dataclasses.field(default_factory=dict)
    latencies: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    acknowledged: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    found: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    final_cache_backend: str = ""
    final_database_healthy: bool = False
    database_retries: int = 0
    cache_fallbacks: int = 0

    @property
    def lost(self) -> int:
        return sum(self.acknowledged.values()) - sum(self.found.values())

    @staticmethod
    def _percentile(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def latency_ms(self) -> dict[str, dict[str, float]]:
        everything = [v for values in self.latencies.values() for v in values]
        out = {
            op: {"p50": self._percentile(v, 0.5) * 1000, "p99": self._percentile(v, 0.99) * 1000}
            for op, v in sorted(self.latencies.items())
        }
        out["all"] = {
            "p50": self._percentile(everything, 0.5) * 1000,
            "p99": self._percentile(everything, 0.99) * 1000,
        }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "concurrency": self.concurrency,
            "operations": dict(self.operations),
            "operations_total": sum(self.operations.values()),
            "errors": dict(self.errors),
            "unhandled_exceptions": len(self.unhandled),
            "unhandled_samples": self.unhandled[:5],
            "error_samples": dict(self.error_samples),
            "latency_ms": self.latency_ms(),
            "writes_acknowledged": dict(self.acknowledged),
            "writes_found": dict(self.found),
            "writes_lost": self.lost,
            "database_retries": self.database_retries,
            "cache_fallbacks": self.cache_fallbacks,
            "final_cache_backend": self.final_cache_backend,
            "final_database_healthy": self.final_database_healthy,
        }

    def summary_lines(self) -> list[str]:
        lat = self.latency_ms()
        lines = [
            f"soak: {sum(self.operations.values()):,} operations in {self.seconds:.1f} s "
            f"with {self.concurrency} workers ({dict(self.operations)})",
            f"errors by kind: {dict(self.errors) or 'none'}; unhandled exceptions: "
            f"{len(self.unhandled)}",
            f"latency p50 {lat['all']['p50']:.1f} ms, p99 {lat['all']['p99']:.1f} ms",
            f"writes acknowledged {sum(self.acknowledged.values()):,} "
            f"({dict(self.acknowledged)}), found {sum(self.found.values()):,}, lost {self.lost}",
            f"database retries {self.database_retries}, cache fallbacks {self.cache_fallbacks}; "
            f"at the end: cache on {self.final_cache_backend}, database "
            f"{'healthy' if self.final_database_healthy else 'UNHEALTHY'}",
        ]
        lines.extend(f"  {kind}: {sample}" for kind, sample in self.error_samples.items())
        return lines


async def _upstream() -> tuple[web.AppRunner, str]:
    """A local OpenAI-compatible chat completions endpoint for the service calls."""

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {
                "id": "soak",
                "model": body.get("model", "soak"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Soak ad"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


class Soak:
    """One soak run over a container; see the module docstring."""

    def __init__(
        self,
        container: Container,
        *,
        seconds: float,
        concurrency: int,
        seed: int = 1,
        user_id: int = SOAK_USER_ID,
    ) -> None:
        self.container = container
        # Each process of ``soak --processes N`` has its own user: its cleanup
        # must not delete the rows the others are about to verify.
        self.user_id = user_id
        self.report = SoakReport(seconds=seconds, concurrency=concurrency)
        self.rng = random.Random(seed)
        self.ad_ids: list[int] = []
        self.campaign_ids: list[int] = []
        self.upserts: list[tuple[int, dt.date, int]] = []
        self.files: list[tuple[str, str]] = []
        self._date_counter = 0
        self._ops: list[str] = [op for op, weight in MIX.items() for _ in range(weight)]

    # --- setup and teardown -----------------------------------------------------------

    async def _setup(self) -> None:
        c = self.container
        self._runner, url = await _upstream()
        await c.services.ai().register_provider(
            PROVIDER,
            ExternalServiceConfig(
                service_type=ServiceType.AI_PROVIDER,
                base_url=url,
                api_key="sk-soak-local",
                rate_limit=10_000,
                timeout=5.0,
            ),
        )
        await self._cleanup()
        factory = c.repositories.factory()

        async def seed(uow: Any) -> list[int]:
            campaign = await uow.campaigns.create(
                Campaign(user_id=self.user_id, name="soak seed", status=Status.ACTIVE)
            )
            group = await uow.groups.create(
                AdGroup(user_id=self.user_id, campaign_id=campaign.id, name="soak seed")
            )
            ads = [
                await uow.ads.create(
                    Ad(
                        user_id=self.user_id,
                        campaign_id=campaign.id,
                        group_id=group.id,
                        name=f"soak ad {i}",
                    )
                )
                for i in range(20)
            ]
            return [a.id for a in ads]

        self.ad_ids = await factory.run(seed)

    async def _cleanup(self) -> None:
        """Remove the soak user's rows and files (the seed of a previous run included)."""
        campaigns = self.container.repositories.campaigns()
        while page := (await campaigns.list(user_id=self.user_id, limit=200)).items:
            for campaign in page:
                assert campaign.id is not None
                await campaigns.delete(campaign.id, user_id=self.user_id)
        storage = self.container.storage.manager()
        for name, _digest in self.files:
            await storage.delete_file(name)

    async def _teardown(self, keep: bool) -> None:
        if not keep:
            with contextlib.suppress(InfrastructureError):  # best effort: the verdict is in
                await self._cleanup()
        await self._runner.cleanup()

    # --- operations -------------------------------------------------------------------

    async def _read(self) -> None:
        ads = self.container.repositories.ads()
        await ads.get_by_id(self.rng.choice(self.ad_ids), user_id=self.user_id)

    async def _write(self) -> None:
        n = self.rng.randrange(1_000_000)

        async def unit(uow: Any) -> int:
            campaign = await uow.campaigns.create(
                Campaign(user_id=self.user_id, name=f"soak {n}", daily_budget_micros=1_000_000)
            )
            group = await uow.groups.create(
                AdGroup(user_id=self.user_id, campaign_id=campaign.id, name=f"soak {n}")
            )
            await uow.ads.create(
                Ad(user_id=self.user_id, campaign_id=campaign.id, group_id=group.id, name="w")
            )
            return int(campaign.id)

        campaign_id = await self.container.repositories.factory().run(unit)
        self.campaign_ids.append(campaign_id)
        self.report.acknowledged["campaigns"] += 1

    async def _upsert(self) -> None:
        self._date_counter += 1  # a key per upsert: each acknowledged value stays checkable
        day = BASE_DATE + dt.timedelta(days=self._date_counter)
        ad_id = self.rng.choice(self.ad_ids)
        clicks = self.rng.randrange(1, 1000)
        record = PerformanceRecord(
            ad_id=ad_id,
            date=day,
            impressions=clicks * 20,
            clicks=clicks,
            conversions=Decimal(1),
            cost_micros=clicks * 10_000,
        )
        await self.container.repositories.performance().bulk_upsert([record], user_id=self.user_id)
        self.upserts.append((ad_id, day, clicks))
        self.report.acknowledged["performance_rows"] += 1

    async def _save(self) -> None:
        content = f"soak {self.rng.random()}\n".encode() * 16
        name = await self.container.storage.manager().save_file(content, "soak.txt")
        self.files.append((name, hashlib.sha256(content).hexdigest()))
        self.report.acknowledged["files"] += 1

    async def _ai(self) -> None:
        await self.container.services.ai().generate_content(PROVIDER, "Create a soak ad", "soak")

    # --- the run ----------------------------------------------------------------------

    async def _worker(self, deadline: float) -> None:
        ops: dict[str, Callable[[], Awaitable[None]]] = {
            "read": self._read, "write": self._write, "upsert": self._upsert,
            "save": self._save, "ai": self._ai,
        }  # fmt: skip
        report = self.report
        while time.monotonic() < deadline:
            op = self.rng.choice(self._ops)
            started = time.perf_counter()
            try:
                await ops[op]()
            except (InfrastructureError, DomainError) as exc:
                kind = f"{op}:{type(exc).__name__}"
                report.errors[kind] += 1
                report.error_samples.setdefault(kind, str(exc)[:300])
            except Exception as exc:  # a defect: an error that escaped the hierarchy
                report.errors[f"{op}:unhandled:{type(exc).__name__}"] += 1
                report.unhandled.append(f"{op}: {type(exc).__name__}: {exc}"[:300])
            else:
                report.operations[op] += 1
                report.latencies[op].append(time.perf_counter() - started)

    async def _verify(self) -> None:
        repos = self.container.repositories
        campaigns = repos.campaigns()
        for campaign_id in self.campaign_ids:
            if await campaigns.get_by_id(campaign_id, user_id=self.user_id) is not None:
                self.report.found["campaigns"] += 1
        performance = repos.performance()
        for ad_id, day, clicks in self.upserts:
            row = await performance.get(ad_id, day, user_id=self.user_id)
            if row is not None and row.clicks == clicks:
                self.report.found["performance_rows"] += 1
        storage = self.container.storage.manager()
        for name, digest in self.files:
            try:
                content = await storage.get_file(name)
            except InfrastructureError:
                continue  # missing or corrupt: not found
            if hashlib.sha256(content).hexdigest() == digest:
                self.report.found["files"] += 1

    async def run(
        self, *, fault_hook: Callable[[], Awaitable[None]] | None = None, keep: bool = False
    ) -> SoakReport:
        await migrate.upgrade(self.container.database.manager())
        async with running(self.container):
            await self._setup()
            try:
                seconds = self.report.seconds
                deadline = time.monotonic() + seconds
                tasks: list[Awaitable[None]] = [
                    self._worker(deadline) for _ in range(self.report.concurrency)
                ]
                if fault_hook is not None:
                    tasks.append(fault_hook())
                await asyncio.gather(*tasks)
                await self._settle()
                await self._verify()
            finally:
                await self._teardown(keep)
        return self.report

    async def _settle(self, patience: float = 15.0) -> None:
        """Wait for the backends to recover from the last fault, then record where they are."""
        c = self.container
        cache, db = c.cache.manager(), c.database.manager()
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            healthy = (await db.health_check()).healthy
            if healthy and not cache.in_fallback:
                break
            await cache.get("soak:probe")  # traffic lets the cache's breaker probe Redis
            await asyncio.sleep(0.2)
        self.report.final_database_healthy = (await db.health_check()).healthy
        self.report.final_cache_backend = cache.active_backend
        self.report.database_retries = db.retries
        self.report.cache_fallbacks = cache.stats.fallbacks


async def run_soak(
    container: Container,
    *,
    seconds: float,
    concurrency: int,
    fault_hook: Callable[[], Awaitable[None]] | None = None,
    keep: bool = False,
    worker: int = 0,
) -> SoakReport:
    """Run the soak on ``container``; see :class:`Soak` (``worker``: its index in a fleet)."""
    soak = Soak(
        container,
        seconds=seconds,
        concurrency=concurrency,
        seed=1 + worker,
        user_id=SOAK_USER_ID + worker,
    )
    return await soak.run(fault_hook=fault_hook, keep=keep)
