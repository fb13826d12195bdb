"""``ads-infra discovery``: what this process would resolve, and a registration for scripts.

``list [SERVICE] [--json]`` prints the instances each discovered service has
(with ``static``: each upstream's configured base URL). ``register SERVICE URL
[--ttl S]`` keeps one etcd registration alive until interrupted (Ctrl-C or
SIGTERM deregister at once; a killed process's registration expires after
its TTL), for scripts and tests that stand in for a service.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.loader import load_settings
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import DiscoveryBackend
from ads_infra.discovery import ServiceDiscovery

if TYPE_CHECKING:
    from ads_infra.containers import Container

__all__ = ["discovery_commands"]


async def _listing(container: Container, service: str | None) -> dict[str, Any]:
    found: ServiceDiscovery = container.discovery.backend()
    report: dict[str, Any] = {"backend": found.backend, "services": {}}
    if found.backend == DiscoveryBackend.STATIC:
        # Today's behaviour: each upstream calls its configured base URL.
        for name in ("ai", "analytics", "notifications"):
            await getattr(container.services, name)().start()
        manager = container.services.manager()
        for upstream in manager.services:
            if service is not None and upstream != service:
                continue
            entry: dict[str, Any] = {"upstreams": [upstream]}
            try:
                entry["instances"] = [mask_url(manager.get_config(upstream).base_url)]
            except ConfigurationError:  # the offline AI provider: no network at all
                entry["instances"], entry["problem"] = [], "in process, no URL to resolve"
            report["services"][upstream] = entry
        return report
    await found.start()
    try:
        names = [service] if service else [*found.config.resolved.values()]
        for name in names:
            await found.resolve(name)
        sets = found.snapshot()
        for name, instances in sets.items():
            if service is not None and name != service:
                continue
            upstreams = [u for u, s in found.config.resolved.items() if s == name]
            report["services"][name] = {
                "instances": [mask_url(url) for url in instances.urls],
                "upstreams": upstreams,
                "stale_since": instances.stale_since,
                "problem": instances.problem,
            }
        health = await found.health_check()
        report["healthy"], report["detail"] = health.healthy, health.detail
    finally:
        await found.close()
    return report


async def _keep_registered(ctx: click.Context, service: str, url: str, ttl: int | None) -> None:
    from ads_infra.discovery.etcd_client import EtcdClient  # the etcd extra: only when used
    from ads_infra.discovery.registration import Registration

    settings = load_settings(ctx.obj["config_file"]).discovery
    cfg = dataclasses.replace(
        settings,
        backend=DiscoveryBackend.ETCD,
        register=[f"{service}={url}"],
        ttl=ttl if ttl is not None else settings.ttl,
    )
    client = EtcdClient(cfg.etcd_endpoints, timeout=cfg.timeout)
    registration = Registration(client, cfg.key_prefix, cfg.registrations, cfg.ttl)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await registration.start()
        click.echo(
            f"registered {service} at {mask_url(url)} as {registration.keys[0]} "
            f"(ttl {cfg.ttl} s); interrupt to deregister",
            err=True,
        )
        await stop.wait()
    finally:
        await registration.close()
        await client.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)


def _print(report: dict[str, Any]) -> None:
    click.echo(f"backend: {report['backend']}")
    if "detail" in report:
        click.echo(f"  {report['detail']}")
    for name, entry in report["services"].items():
        upstreams = [u for u in entry["upstreams"] if u != name]
        via = f" (for {', '.join(upstreams)})" if upstreams else ""
        if not entry["instances"] and entry.get("problem"):
            click.echo(f"{name}{via}: {entry['problem']}")
            continue
        click.echo(f"{name}{via}: {len(entry['instances'])} instance(s)")
        for url in entry["instances"]:
            click.echo(f"  {url}")


def discovery_commands(
    run: Callable[[Coroutine[Any, Any, Any]], Any],
    container: Callable[[click.Context], Container],
    fail: Callable[[str, int], NoReturn],
) -> click.Group:
    """The ``discovery`` group, given the CLI's runner, container factory and exit helper.

    Passed in rather than imported, so that this module and ``cli`` do not import each other.
    """

    @click.group()
    def discovery() -> None:
        """Service discovery: list what resolves, or register an instance (etcd)."""

    @discovery.command("list")
    @click.argument("service", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def list_services(ctx: click.Context, service: str | None, as_json: bool) -> None:
        """Show the instances this process would resolve (SERVICE: only that one)."""
        report = run(_listing(container(ctx), service))
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            _print(report)

    @discovery.command("register")
    @click.argument("service")
    @click.argument("url")
    @click.option("--ttl", type=click.IntRange(min=2), default=None, help="Lease seconds.")
    @click.pass_context
    def register(ctx: click.Context, service: str, url: str, ttl: int | None) -> None:
        """Register SERVICE at URL in etcd until interrupted (etcd at ADS_ETCD_URL)."""
        try:
            run(_keep_registered(ctx, service, url, ttl))
        except ConfigurationError as exc:  # raised building the section, before the loop
            fail(f"configuration error: {exc}", 2)

    return discovery
