"""The main job: build the container from config.yml and exercise every component.

``InfrastructureSystemDemo().run_comprehensive_demo()`` (the seed's name, and
``ads-infra demo``) migrates the database, seeds a realistic data set
(several users, campaigns, ad groups, ads and 90 days of daily performance),
then reads through the cache, stores and reads back creatives, writes ad copy
with the configured AI provider, reports analytics with derived metrics,
derives optimization suggestions with their evidence, calls analytics and
notification endpoints where configured, and ends with pool, cache, storage
and service statistics. It returns the report as a dict (``--json`` prints it).

The demo owns its users (ids from ``first_user_id``): it deletes their earlier
data first, so it can run again and again on the same database.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ads_infra.core.lifecycle import running
from ads_infra.domain.ports import CopyBrief
from ads_infra.entrypoints.demo.data import (
    UserPlan,
    build_dataset,
    campaign_performance,
    tiny_png,
)
from ads_infra.entrypoints.demo.report import print_report

if TYPE_CHECKING:
    from ads_infra.containers import Container

__all__ = ["InfrastructureSystemDemo", "main"]


class InfrastructureSystemDemo:
    """Runs the whole infrastructure end to end and reports what it saw.

    >>> demo = InfrastructureSystemDemo()
    >>> await demo.run_comprehensive_demo()
    """

    def __init__(
        self,
        container: Container | None = None,
        *,
        config_file: str | os.PathLike[str] | None = None,
        users: int = 3,
        days: int = 90,
        console: Console | None = None,
        quiet: bool = False,
        first_user_id: int = 1001,
    ) -> None:
        self._container = container
        self.config_file = config_file
        self.dataset = build_dataset(users=users, days=days, first_user_id=first_user_id)
        # Wide enough for the analytics table when the output is piped (rich's default is 80).
        width = None if quiet or sys.stdout.isatty() else 130
        self.console = console or Console(stderr=quiet, width=width)
        self.quiet = quiet
        self.report: dict[str, Any] = {}

    @property
    def container(self) -> Container:
        if self._container is None:
            from ads_infra.containers import create_container

            self._container = create_container(self.config_file)
        return self._container

    # --- the run -------------------------------------------------------------------------

    async def run_comprehensive_demo(self) -> dict[str, Any]:
        """Run every step; return the report (also printed unless ``quiet``)."""
        from ads_infra.database import migrate

        container = self.container
        started = time.perf_counter()
        await migrate.upgrade(container.database.manager())
        async with running(container):
            self.report = {"backends": self._backends()}
            self.report["seed"] = await self._seed()
            self.report["cache"] = await self._cached_reads()
            self.report["storage"] = await self._creatives()
            self.report["ai"] = await self._ad_copy()
            self.report["analytics"] = await self._analytics()
            self.report["optimization"] = await self._optimization()
            self.report["external"] = await self._external_calls()
            self.report["stats"] = await self._stats()
        self.report["seconds"] = round(time.perf_counter() - started, 2)
        if not self.quiet:
            self.print_report()
        return self.report

    def _backends(self) -> dict[str, str]:
        c = self.container
        return {
            "database": c.database.manager().config.masked_url,
            "cache": c.cache.manager().active_backend,
            "storage": c.storage.manager().target,
            "ai": c.services.ai().default_provider,
        }

    # --- seeding -----------------------------------------------------------------------

    async def _seed(self) -> dict[str, Any]:
        factory = self.container.repositories.factory()
        data = self.dataset
        started = time.perf_counter()
        with self._progress() as progress:
            task = progress.add_task("seeding", total=data.counts["performance_rows"])
            for user in data.users:
                await self._reset_user(user.user_id)
                await factory.run(lambda uow, user=user: self._create_entities(uow, user))
                performance = factory.create_performance_repository()
                for plan in user.campaigns:
                    rows = list(campaign_performance(plan, data))
                    await performance.bulk_upsert(rows, user_id=user.user_id)
                    progress.advance(task, len(rows))
        return {
            **data.counts,
            "days": data.days,
            "seconds": round(time.perf_counter() - started, 2),
        }

    async def _reset_user(self, user_id: int) -> None:
        """Delete the user's earlier demo data: creatives first, then campaigns (cascading)."""
        ads = self.container.repositories.ads()
        storage = self.container.storage.manager()
        cursor: str | None = None
        while True:
            ad_page = await ads.list(user_id=user_id, limit=200, cursor=cursor)
            for ad in ad_page.items:
                if ad.creative_key:
                    await storage.delete_file(ad.creative_key)
            if ad_page.next_cursor is None:
                break
            cursor = ad_page.next_cursor
        campaigns = self.container.repositories.campaigns()
        while True:
            page = await campaigns.list(user_id=user_id, limit=100)
            if not page.items:
                return
            for campaign in page.items:
                assert campaign.id is not None
                await campaigns.delete(campaign.id, user_id=user_id)

    @staticmethod
    async def _create_entities(uow: Any, user: UserPlan) -> None:
        for plan in user.campaigns:
            campaign = await uow.campaigns.create(plan.campaign)
            plan.campaign = campaign
            for group_plan in plan.groups:
                group = await uow.groups.create(
                    dataclasses.replace(group_plan.group, campaign_id=campaign.id)
                )
                group_plan.group = group
                for ad_plan in group_plan.ads:
                    ad_plan.ad = await uow.ads.create(
                        dataclasses.replace(ad_plan.ad, campaign_id=campaign.id, group_id=group.id)
                    )

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=self.quiet,
        )

    # --- components ----------------------------------------------------------------------

    async def _cached_reads(self) -> dict[str, Any]:
        ads = self.container.repositories.ads()
        cache = self.container.cache.manager()
        before = await cache.get_stats()
        reads = 0
        for user in self.dataset.users:
            ids = [a.ad.id for c in user.campaigns for g in c.groups for a in g.ads]
            for _round in range(3):  # the first read misses, the next two hit
                for ad_id in ids:
                    assert ad_id is not None
                    await ads.get_by_id(ad_id, user_id=user.user_id)
                    reads += 1
        after = await cache.get_stats()
        hits = after["hits"] - before["hits"]
        misses = after["misses"] - before["misses"]
        return {
            "reads": reads,
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
            "backend": cache.active_backend,
        }

    async def _creatives(self) -> dict[str, Any]:
        service = self.container.domain.ad_service()
        storage = self.container.storage.manager()
        saved = verified = 0
        for user in self.dataset.users:
            ads = [a.ad for c in user.campaigns for g in c.groups for a in g.ads][:4]
            for ad in ads:
                assert ad.id is not None
                content = tiny_png(ad.id)
                updated = await service.attach_creative(
                    ad.id, user_id=user.user_id, content=content, filename=f"ad-{ad.id}.png"
                )
                saved += 1
                assert updated.creative_key is not None
                if await storage.get_file(updated.creative_key) == content:
                    verified += 1
        stats = await storage.get_storage_stats()
        return {"saved": saved, "verified": verified, "total_files": stats["total_files"]}

    async def _ad_copy(self) -> list[dict[str, Any]]:
        service = self.container.domain.ad_service()
        out: list[dict[str, Any]] = []
        for user in self.dataset.users[:2]:
            for plan in user.campaigns[:2]:
                group = plan.groups[0].group
                brief = CopyBrief(
                    product=plan.campaign.name,
                    audience=str(group.targeting.get("audience", "")),
                    keywords=("free returns",),
                )
                copy = await service.generate_copy(brief)
                out.append(
                    {
                        "user_id": user.user_id,
                        "campaign": plan.campaign.name,
                        "headline": copy.headline,
                        "description": copy.description,
                        "provider": copy.provider,
                        "model": copy.model,
                    }
                )
        return out

    async def _analytics(self) -> list[dict[str, Any]]:
        analytics = self.container.repositories.analytics()
        data = self.dataset
        rows: list[dict[str, Any]] = []
        for user in data.users:
            for summary in await analytics.summaries(
                "campaign", user_id=user.user_id, start_date=data.start_date, end_date=data.end_date
            ):
                rows.append({"user_id": user.user_id, **summary.to_dict()})
        return rows

    async def _optimization(self) -> list[dict[str, Any]]:
        service = self.container.domain.optimization_service()
        out: list[dict[str, Any]] = []
        for user in self.dataset.users:
            for s in await service.generate(user.user_id, end_date=self.dataset.end_date):
                out.append(
                    {
                        "user_id": user.user_id,
                        "type": s.type.value,
                        "title": s.title,
                        "score": s.score,
                        "payload": s.payload,
                        "evidence": s.evidence,
                        "expected_impact": s.expected_impact,
                    }
                )
        return out

    async def _external_calls(self) -> dict[str, Any]:
        services = self.container.services
        result: dict[str, Any] = {}
        analytics = services.analytics()
        if analytics.enabled:
            for user in self.dataset.users:
                await analytics.track("demo_completed", {"ads": 18}, user_id=user.user_id)
            result["analytics"] = {"events_sent": await analytics.flush()}
        else:
            result["analytics"] = "skipped: set ADS_ANALYTICS_URL to send events"
        notifications = services.notifications()
        channels = notifications.channels
        if channels:
            for channel in channels:
                await notifications.send_notification(channel, "ads-infra demo finished")
            result["notifications"] = {"sent": len(channels), "channels": list(channels)}
        else:
            result["notifications"] = (
                "skipped: set ADS_SLACK_WEBHOOK_URL, or ADS_WEBHOOK_URL with ADS_WEBHOOK_SECRET, "
                "to send notifications"
            )
        return result

    async def _stats(self) -> dict[str, Any]:
        c = self.container
        return {
            "pool": await c.database.manager().get_pool_stats(),
            "cache": await c.cache.manager().get_stats(),
            "storage": await c.storage.manager().get_storage_stats(),
            "services": c.services.manager().get_service_status(),
        }

    # --- printing ------------------------------------------------------------------------

    def print_report(self) -> None:
        print_report(self.report, self.dataset, self.console)


async def main(**kwargs: Any) -> dict[str, Any]:
    """Run the demo with :class:`InfrastructureSystemDemo` keyword arguments."""
    return await InfrastructureSystemDemo(**kwargs).run_comprehensive_demo()
