"""The ``ads-infra`` command line: config, health, plugins, db migrations and benchmarks.

User errors (a bad configuration, an unreachable backend, a database that
refuses the login) print one clear line and exit with a non-zero code, never
a traceback: 2 for configuration, 1 for a failed operation. ``-v`` prints
the traceback above that line.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import yaml

from ads_infra.core.errors import ConfigurationError, InfrastructureError
from ads_infra.core.health import HealthStatus
from ads_infra.core.lifecycle import running
from ads_infra.core.loader import DEFAULT_CONFIG_FILE, config_lookup, load_settings
from ads_infra.core.template import render_config
from ads_infra.entrypoints.discovery_cli import discovery_commands

if TYPE_CHECKING:
    from ads_infra.containers import Container

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"ads-infra: {message}", err=True)
    sys.exit(code)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and isinstance(root.obj, dict) and root.obj.get("verbose"))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning ads-infra and database errors into one line and an exit code."""
    from ads_infra.database import is_database_error, translate_error

    try:
        return asyncio.run(coro)
    except Exception as exc:
        if _verbose():
            traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, ConfigurationError):
            _fail(f"configuration error: {exc}", EXIT_CONFIG)
        if isinstance(exc, InfrastructureError):
            _fail(str(exc), EXIT_FAILURE)
        if is_database_error(exc):  # one the code below the CLI did not translate
            _fail(str(translate_error(exc)), EXIT_FAILURE)
        raise


def _container(ctx: click.Context, **overrides: Any) -> Container:
    from ads_infra.containers import create_container

    try:
        return create_container(ctx.obj["config_file"], **overrides)
    except ConfigurationError as exc:
        _fail(f"configuration error: {exc}", EXIT_CONFIG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    default=None,
    metavar="FILE",
    help="Configuration file (default: $ADS_INFRA_CONFIG, then ./config.yml, then the "
    "packaged defaults; `ads-infra config show` says which).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, verbose: int) -> None:
    """ads-infra: database, cache, storage, services and repositories for ads systems."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"config_file": config_file, "verbose": verbose}


# --- config ------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Inspect the configuration, or write a starter file."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration (secrets masked) and where it came from."""
    try:
        settings = load_settings(ctx.obj["config_file"])
    except ConfigurationError as exc:
        _fail(f"configuration error: {exc}", EXIT_CONFIG)
    lookup = config_lookup(ctx.obj["config_file"])
    if as_json:
        report = {
            "source": next(where for _what, where, used in lookup if used),
            "lookup": [{"what": w, "where": where, "used": used} for w, where, used in lookup],
            "settings": settings.masked(),
        }
        click.echo(json.dumps(report, indent=2))
        return
    click.echo("# lookup order (the first that applies is used):")
    for what, where, used in lookup:
        click.echo(f"#   {'->' if used else '  '} {what}: {where}")
    click.echo(yaml.safe_dump(settings.masked(), sort_keys=False).rstrip())


@config.command("init")
@click.argument("path", default=DEFAULT_CONFIG_FILE, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def config_init(path: str, force: bool) -> None:
    """Write a commented starter configuration to PATH (default: ./config.yml).

    Every key with its default and the environment variable that sets it.
    """
    target = Path(path)
    if target.exists() and not force:
        _fail(f"{target} exists; pass --force to overwrite it", EXIT_CONFIG)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_config(), encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {target}: {exc.strerror}", EXIT_FAILURE)
    click.echo(f"wrote {target}; check it with: ads-infra --config {target} config show")


# --- health ------------------------------------------------------------------------

# Sub-container -> the provider whose object has ``async health_check()``, in the
# order they start (and the reverse of the order they close): the coordination link
# first, as in the container, because the cache and services managers use it while
# they close. It is None with ``coordination.backend: local``: nothing to check.
HEALTH_PROVIDERS = (
    ("coordination", "link"),
    ("database", "manager"),
    ("cache", "manager"),
    ("storage", "manager"),
    ("discovery", "backend"),
    ("services", "manager"),
)


async def collect_health(container: Container) -> list[HealthStatus]:
    """Health of every configured component, each checked once, never raising.

    Each manager is started first, as the container's resources would be (a
    local storage folder or SQLite file is created then); a start that fails
    is not fatal here: the health check that follows reports why.
    """
    for name in ("ai", "analytics", "notifications"):
        getattr(container.services, name)()  # registers each service with the manager
    provided = (getattr(getattr(container, sub), name)() for sub, name in HEALTH_PROVIDERS)
    managers = [manager for manager in provided if manager is not None]
    for manager in managers:
        with contextlib.suppress(Exception):
            await manager.start()
    # Plugin services register their upstreams when started, so that they are checked.
    plugin_services = container.services.plugins()
    reports: list[HealthStatus] = []
    # The database reports its replicas too, when it has any.
    checks = [getattr(m, "health_checks", m.health_check) for m in managers]
    try:
        await plugin_services.start()
        for result in await asyncio.gather(*(check() for check in checks)):
            reports.extend(result if isinstance(result, list) else [result])
    finally:
        await plugin_services.close()
        for manager in reversed(managers):
            await manager.close()
    return reports


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def health(ctx: click.Context, as_json: bool) -> None:
    """Check every configured backend; exit 1 when one is unreachable."""
    # A probe resolves what the app would, but must not announce this process
    # in etcd as an instance of the services it registers.
    container = _container(ctx, discovery={"register": []})
    reports = _run(collect_health(container))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for r in reports:
            state = "healthy" if r.healthy else "UNHEALTHY"
            latency = f" {r.latency_ms:.1f} ms" if r.latency_ms is not None else ""
            click.echo(f"{r.component:<24} {r.backend:<14} {state}{latency}  {r.target}")
            if not r.healthy:
                click.echo(f"  why: {r.detail}")
            elif r.component.startswith("database"):
                click.echo(f"  {r.detail}")  # the connection budget, a replica's lag
    bad = [r for r in reports if not r.healthy]
    if bad:
        names = ", ".join(f"{r.component} ({r.backend})" for r in bad)
        _fail(f"unhealthy: {names}", EXIT_FAILURE)


# --- plugins -----------------------------------------------------------------------


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_command(as_json: bool) -> None:
    """List the installed plugins (cache, storage, services) and whether each loads.

    Exit 1 when one is broken: its import fails, or it does not implement its group's
    interface (docs/plugins.md).
    """
    from ads_infra.core.plugins import GROUPS
    from ads_infra.entrypoints.plugins_report import plugin_report

    rows = plugin_report()
    if as_json:
        click.echo(json.dumps({"groups": list(GROUPS), "plugins": rows}, indent=2))
    else:
        for group in GROUPS:
            found = [row for row in rows if row["group"] == group]
            click.echo(f"{group}:{'' if found else ' (none installed)'}")
            for row in found:
                where = f"{row['distribution'] or '?'} {row['version'] or ''}".rstrip()
                click.echo(f"  {row['name']:<16} {row['entry_point']}  [{where}]")
                click.echo(f"    {row['status']}")
    broken = [row["name"] for row in rows if row["status"].startswith("error")]
    if broken:
        _fail(f"broken plugins: {', '.join(broken)} (see their status above)", EXIT_FAILURE)


# --- db ----------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations (Alembic, shipped with the package)."""


def _with_database(ctx: click.Context, action: Callable[[Any], Awaitable[T]]) -> T:
    container = _container(ctx)

    async def go() -> T:
        manager = container.database.manager()
        try:
            return await action(manager)
        finally:
            await manager.close()

    return _run(go())


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option(
    "--sql",
    "as_sql",
    is_flag=True,
    help="Print the migration SQL (from the start, or FROM:TO) instead of running it; "
    "nothing connects.",
)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str, as_sql: bool) -> None:
    """Migrate the configured database up to REVISION (default: head)."""
    from ads_infra.database import migrate

    if as_sql:
        try:
            settings = load_settings(ctx.obj["config_file"])
        except ConfigurationError as exc:
            _fail(f"configuration error: {exc}", EXIT_CONFIG)
        dialect = "sqlite" if settings.database.is_sqlite else "postgresql"
        try:
            click.echo(migrate.upgrade_sql(dialect, revision), nl=False)
        except Exception as exc:  # alembic's CommandError: an unknown revision
            if _verbose():
                traceback.print_exception(exc, file=sys.stderr)
            _fail(f"cannot render the migration SQL: {exc}", EXIT_FAILURE)
        return
    _with_database(ctx, lambda manager: migrate.upgrade(manager, revision))
    click.echo(f"database upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision", default="base")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the configured database down to REVISION (default: base, all tables dropped)."""
    from ads_infra.database import migrate

    _with_database(ctx, lambda manager: migrate.downgrade(manager, revision))
    click.echo(f"database downgraded to {revision}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the revision the configured database is at."""
    from ads_infra.database import migrate

    revision = _with_database(ctx, migrate.current)
    click.echo(revision or "(not migrated)")


# --- demo and stats ------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--users", default=3, show_default=True, help="How many demo users to seed.")
@click.option("--days", default=90, show_default=True, help="Days of daily performance.")
@click.pass_context
def demo(ctx: click.Context, as_json: bool, users: int, days: int) -> None:
    """Run the main job: seed a data set and exercise every component (InfrastructureSystemDemo)."""
    from ads_infra.entrypoints.demo import InfrastructureSystemDemo

    runner = InfrastructureSystemDemo(_container(ctx), users=users, days=days, quiet=as_json)
    report = _run(runner.run_comprehensive_demo())
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Pool, cache, storage and service statistics of the configured backends, and row counts."""
    container = _container(ctx)
    report = _run(collect_stats(container))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for section, values in report.items():
        click.echo(f"{section}:")
        for key, value in values.items():
            click.echo(f"  {key}: {value}")


async def collect_stats(container: Container) -> dict[str, Any]:
    """What ``ads-infra stats`` prints; opens and closes the backends it reads."""
    from sqlalchemy import func, select

    from ads_infra.database import migrate
    from ads_infra.database.tables import metadata

    async with running(container):
        db = container.database.manager()
        rows: dict[str, Any] = {}
        if await migrate.current(db) is None:
            rows["schema"] = "not migrated (run: ads-infra db upgrade)"
        else:
            async with db.get_session() as session:
                for table in metadata.sorted_tables:
                    count = select(func.count()).select_from(table)
                    rows[table.name] = (await session.execute(count)).scalar_one()
        return {
            "rows": rows,
            "pool": await db.get_pool_stats(),
            "cache": await container.cache.manager().get_stats(),
            "storage": await container.storage.manager().get_storage_stats(),
            "services": container.services.manager().get_service_status(),
        }


# --- soak --------------------------------------------------------------------------


@cli.command()
@click.option("--seconds", default=30.0, show_default=True, help="How long to run the workload.")
@click.option("--concurrency", default=16, show_default=True, help="Concurrent workers.")
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Soak processes on the same backends, their reports added up.",
)
@click.option("--keep", is_flag=True, help="Keep the soak's rows and files afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--worker", default=0, hidden=True, help="This process's index in a fleet soak.")
@click.option("--latencies-file", default=None, hidden=True, help="Write raw latencies here.")
@click.pass_context
def soak(
    ctx: click.Context,
    seconds: float,
    concurrency: int,
    processes: int,
    keep: bool,
    as_json: bool,
    worker: int,
    latencies_file: str | None,
) -> None:
    """Run the demo's workload, then check every acknowledged write; exit 1 if one is lost."""
    from ads_infra.entrypoints.soak import run_soak

    if processes > 1:
        _soak_fleet(ctx, processes, seconds, concurrency, keep, as_json)
        return
    container = _container(ctx)
    report = _run(
        run_soak(container, seconds=seconds, concurrency=concurrency, keep=keep, worker=worker)
    )
    if latencies_file:
        Path(latencies_file).write_text(json.dumps(report.latencies))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.summary_lines():
            click.echo(line)
    if report.lost or report.unhandled:
        _fail(
            f"{report.lost} acknowledged writes lost, {len(report.unhandled)} unhandled exceptions",
            EXIT_FAILURE,
        )


def _soak_fleet(
    ctx: click.Context, processes: int, seconds: float, concurrency: int, keep: bool, as_json: bool
) -> None:
    from ads_infra.database import migrate
    from ads_infra.entrypoints.fleet_soak import run_fleet

    container = _container(ctx)

    async def upgrade() -> None:
        async with running(container):
            await migrate.upgrade(container.database.manager())

    _run(upgrade())  # once, here: N workers migrating together would race
    report = run_fleet(
        config_file=ctx.obj["config_file"],
        processes=processes,
        seconds=seconds,
        concurrency=concurrency,
        keep=keep,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.summary_lines():
            click.echo(line)
    if report.lost or report.unhandled or report.failures:
        _fail(
            f"{report.lost} acknowledged writes lost, {report.unhandled} unhandled exceptions, "
            f"{len(report.failures)} workers failed",
            EXIT_FAILURE,
        )


# --- discovery (ads_infra/entrypoints/discovery_cli.py) ------------------------------

cli.add_command(discovery_commands(_run, _container, _fail))


# --- bench -------------------------------------------------------------------------


@cli.command()
@click.argument("areas", nargs=-1)
@click.option("--quick", is_flag=True, help="Fewer operations, the slowest rows skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Exit 1 when a row misses its target.")
def bench(areas: tuple[str, ...], quick: bool, as_json: bool, check: bool) -> None:
    """Benchmark AREAS (default: all) against raw-library baselines, in one process."""
    benchmarks = _checkout_benchmarks()
    unknown = [a for a in areas if a not in benchmarks.AREAS]
    if unknown:
        _fail(
            f"unknown benchmark area {unknown[0]!r}; choose from {', '.join(benchmarks.AREAS)}", 2
        )
    # The report, the run's conditions and --check live with the benchmarks.
    code = benchmarks.main(
        areas or tuple(benchmarks.AREAS), quick=quick, as_json=as_json, check=check, runner=_run
    )
    sys.exit(code)


def _checkout_benchmarks() -> Any:
    """The repository's ``benchmarks`` package: it runs from a checkout, it is not installed.

    Looked up beside the package's source (an editable install) and in the
    current folder, so a host app's own ``benchmarks`` module is never taken.
    """
    package_root = Path(__file__).resolve().parents[2]
    for root in dict.fromkeys((package_root, Path.cwd().resolve())):
        if (root / "benchmarks" / "report.py").is_file() and (root / "containers").is_dir():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            module = importlib.import_module("benchmarks")
            if Path(module.__file__ or "").resolve().parent == root / "benchmarks":
                return module
    _fail(
        "ads-infra bench runs from a checkout of the ads-infra repository (benchmarks/ is "
        "not part of the installed package); run it there",
        EXIT_FAILURE,
    )


def main() -> None:
    cli(prog_name="ads-infra")


if __name__ == "__main__":
    main()
