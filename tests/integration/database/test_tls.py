"""TLS with libpq's names against a private PostgreSQL with ssl=on and a self-signed CA.

The cluster refuses plain connections (``hostnossl ... reject``), so a
connection that works is an encrypted one; each test also asks the server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ads_infra.config import DatabaseConfig, load_settings
from ads_infra.database import DatabaseManager
from ads_infra.entrypoints.cli import cli
from ads_infra.errors import ConfigurationError, PermanentDatabaseError
from tests.pg_servers import Cluster, TlsFiles

REPO = Path(__file__).resolve().parents[3]
ENCRYPTED = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")


async def encrypted(config: DatabaseConfig) -> bool:
    db = DatabaseManager(config)
    try:
        return await db.run(_ssl)
    finally:
        await db.close()


async def _ssl(session: object) -> bool:
    return bool((await session.execute(ENCRYPTED)).scalar_one())  # type: ignore[attr-defined]


def cfg(url: str, **settings: object) -> DatabaseConfig:
    return DatabaseConfig(url=url, pool_size=1, max_overflow=0, retry_delay=0.01, **settings)  # type: ignore[arg-type]


async def test_sslmode_require_in_the_url(tls_cluster: tuple[Cluster, TlsFiles]) -> None:
    cluster, _ = tls_cluster
    assert await encrypted(cfg(cluster.url(query="sslmode=require")))
    # disable really sends no TLS: this server then refuses the login.
    with pytest.raises(PermanentDatabaseError, match=r"refused the login.*no encryption"):
        await encrypted(cfg(cluster.url(query="sslmode=disable")))


async def test_verify_full_with_sslrootcert_as_a_cloud_provider_prints_it(
    tls_cluster: tuple[Cluster, TlsFiles], tmp_path: Path
) -> None:
    """``postgresql://user@host:port/db?sslmode=verify-full&sslrootcert=ca.pem`` from the
    environment, the way a provider's console shows the connection string."""
    cluster, files = tls_cluster
    url = f"postgresql://postgres@localhost:{cluster.port}/postgres?sslmode=verify-full&sslrootcert={files.ca}"
    settings = load_settings(REPO / "config.yml", environ={"ADS_DATABASE_URL": url})
    assert await encrypted(settings.database)
    # The certificate names localhost only; verify-ca checks the chain, not the name.
    assert await encrypted(cfg(cluster.url(query=f"sslmode=verify-ca&sslrootcert={files.ca}")))


async def test_tls_from_the_config_section(tls_cluster: tuple[Cluster, TlsFiles]) -> None:
    cluster, files = tls_cluster
    config = cfg(cluster.url(host="localhost"), sslmode="verify-full", sslrootcert=str(files.ca))
    assert await encrypted(config)


async def test_a_wrong_root_certificate_fails_with_one_clear_error(
    tls_cluster: tuple[Cluster, TlsFiles],
) -> None:
    cluster, files = tls_cluster
    url = cluster.url(host="localhost", query=f"sslmode=verify-full&sslrootcert={files.wrong_ca}")
    db = DatabaseManager(cfg(url, max_retries=3))
    try:
        with pytest.raises(PermanentDatabaseError) as info:
            await db.run(_ssl)
        assert db.retries == 0  # the same certificate is refused every time
        message = str(info.value)
        assert "TLS to the database failed" in message and "certificate verify failed" in message
        assert "sslrootcert" in message
        health = await db.health_check()
        assert not health.healthy and "sslrootcert" in health.detail
    finally:
        await db.close()


async def test_verify_full_refuses_a_host_name_the_certificate_does_not_name(
    tls_cluster: tuple[Cluster, TlsFiles],
) -> None:
    cluster, files = tls_cluster
    # 127.0.0.1 is the same server, but the certificate names localhost only.
    url = cluster.url(host="127.0.0.1", query=f"sslmode=verify-full&sslrootcert={files.ca}")
    db = DatabaseManager(cfg(url))
    try:
        with pytest.raises(PermanentDatabaseError, match="TLS to the database failed"):
            await db.run(_ssl)
    finally:
        await db.close()


def test_the_cli_prints_one_line_for_a_wrong_root_certificate(
    tls_cluster: tuple[Cluster, TlsFiles], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, files = tls_cluster
    shutil.copy(REPO / "config.yml", tmp_path / "config.yml")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ADS_") and name != "ADS_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("ADS_DATABASE_URL", cluster.url(host="localhost"))
    monkeypatch.setenv("ADS_DATABASE_SSLMODE", "verify-full")
    monkeypatch.setenv("ADS_DATABASE_SSLROOTCERT", str(files.wrong_ca))
    result = CliRunner().invoke(cli, ["db", "current"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "certificate verify failed" in lines[0], result.output
    monkeypatch.setenv("ADS_DATABASE_SSLROOTCERT", str(files.ca))
    result = CliRunner().invoke(cli, ["db", "current"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("settings", "key", "fragment"),
    [
        ({"url": "postgresql://h/db?sslmode=requir"}, "url?sslmode", "verify-full"),
        ({"sslmode": "on"}, "sslmode", "allow, prefer, require"),
        ({"sslrootcert": "/nonexistent/ca.pem"}, "sslrootcert", "does not exist"),
        ({"url": "postgresql://h/db?sslcert=/nope.crt"}, "url?sslcert", "does not exist"),
    ],
)
def test_bad_tls_values_are_configuration_errors_naming_them(
    settings: dict[str, str], key: str, fragment: str
) -> None:
    values = {"url": "postgresql://h/db", **settings}
    with pytest.raises(ConfigurationError) as info:
        DatabaseConfig(**values)  # type: ignore[arg-type]
    assert info.value.key == key
    assert fragment in str(info.value)


async def test_unknown_url_parameters_are_named_and_numbers_are_typed(postgres_url: str) -> None:
    db = DatabaseManager(DatabaseConfig(url="postgresql://h/db?sslmod=require"))
    with pytest.raises(ConfigurationError, match="unknown connection parameter 'sslmod'"):
        _ = db.engine
    # asyncpg crashed with a TypeError on the string "0" from the URL.
    typed = DatabaseManager(cfg(f"{postgres_url}?statement_cache_size=0&command_timeout=5"))
    try:
        assert await typed.run(lambda s: s.execute(text("SELECT 1"))) is not None
    finally:
        await typed.close()
