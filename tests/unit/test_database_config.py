"""The database section's topology settings: replicas, PgBouncer, libpq's TLS names."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ads_infra.config import DatabaseConfig, load_settings
from ads_infra.database.connect import connect_args, split_tls, ssl_argument
from ads_infra.database.manager import DatabaseManager
from ads_infra.errors import ConfigurationError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yml"


def test_replicas_and_pgbouncer_come_from_the_environment() -> None:
    environ = {
        "ADS_DATABASE_URL": "postgresql://ads:pw@primary:5432/ads",
        "ADS_DATABASE_REPLICA_URLS": "postgresql://ads:pw@r1/ads, postgres://ads:pw@r2:6432/ads",
        "ADS_DATABASE_PGBOUNCER": "1",
    }
    db = load_settings(REPO_CONFIG, environ=environ).database
    assert db.pgbouncer is True
    assert db.replica_urls == [
        "postgresql+asyncpg://ads:pw@r1/ads",
        "postgresql+asyncpg://ads:pw@r2:6432/ads",
    ]
    shown = repr(db) + str(db.masked())
    assert "pw" not in shown.replace("pwd", "") and "ads:***@r2:6432" in shown


@pytest.mark.parametrize(
    ("settings", "key", "fragment"),
    [
        ({"replica_urls": ["mysql://h/db"]}, "replica_urls[0]", "expected one of"),
        ({"replica_urls": ["postgresql://h/db?sslmode=bogus"]}, "replica_urls[0]?sslmode", "bogus"),
        ({"max_replica_lag": -1}, "max_replica_lag", ">= 0"),
        ({"replica_check_interval": 0}, "replica_check_interval", ">= 0.05"),
    ],
)
def test_bad_replica_settings_name_the_key(
    settings: dict[str, object], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        DatabaseConfig(url="postgresql://h/db", **settings)  # type: ignore[arg-type]
    assert info.value.key == key and fragment in str(info.value)


def test_replicas_need_a_postgresql_primary() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL primary"):
        DatabaseConfig(replica_urls=["postgresql://h/db"])


def test_auto_migrate_defaults_to_sqlite_only() -> None:
    assert DatabaseConfig().migrates_on_first_use  # the embedded default
    assert not DatabaseConfig(url="postgresql://h/db").migrates_on_first_use
    assert DatabaseConfig(url="postgresql://h/db", auto_migrate="always").migrates_on_first_use
    assert not DatabaseConfig(auto_migrate="never").migrates_on_first_use
    with pytest.raises(ConfigurationError) as info:
        DatabaseConfig(auto_migrate="yes")
    assert info.value.key == "auto_migrate" and "sqlite, always, never" in str(info.value)


def test_libpq_modes_map_to_what_asyncpg_takes() -> None:
    assert ssl_argument({}) is None
    for weak in ("disable", "allow", "prefer"):
        assert ssl_argument({"sslmode": weak}) == weak
    require = ssl_argument({"sslmode": "require"})
    assert isinstance(require, ssl.SSLContext)
    assert require.verify_mode is ssl.CERT_NONE and not require.check_hostname
    verify_ca = ssl_argument({"sslmode": "verify-ca", "sslrootcert": "system"})
    assert isinstance(verify_ca, ssl.SSLContext)
    assert verify_ca.verify_mode is ssl.CERT_REQUIRED and not verify_ca.check_hostname
    full = ssl_argument({"sslmode": "verify-full"})
    assert isinstance(full, ssl.SSLContext)
    assert full.verify_mode is ssl.CERT_REQUIRED and full.check_hostname
    with pytest.raises(ConfigurationError, match="require or stricter"):
        ssl_argument({"sslmode": "prefer", "sslcert": "client.crt"})


def test_tls_parameters_leave_the_url_asyncpg_gets() -> None:
    url, tls = split_tls("postgresql+asyncpg://u@h/db?sslmode=require&command_timeout=5")
    assert url == "postgresql+asyncpg://u@h/db?command_timeout=5"
    assert tls == {"sslmode": "require"}


def test_a_tls_value_set_twice_differently_is_refused() -> None:
    config = DatabaseConfig(url="postgresql://h/db?sslmode=require", sslmode="verify-full")
    with pytest.raises(ConfigurationError, match="set it in one place"):
        _ = DatabaseManager(config).engine


def test_pgbouncer_mode_turns_the_statement_caches_off_and_sends_no_timeout() -> None:
    url, args = connect_args(
        "postgresql+asyncpg://u@h/db?statement_cache_size=100",
        DatabaseConfig(url="postgresql://h/db", pgbouncer=True, statement_timeout=2),
        "database.url",
    )
    assert url == "postgresql+asyncpg://u@h/db"
    assert args["statement_cache_size"] == 0 and args["prepared_statement_cache_size"] == 0
    names = {args["prepared_statement_name_func"]() for _ in range(100)}
    assert len(names) == 100  # unique: no two clients' statements collide on a server connection
    assert args["server_settings"] == {"application_name": "ads-infra"}

    _, direct = connect_args(
        "postgresql+asyncpg://u@h/db?statement_cache_size=100&connect_timeout=3",
        DatabaseConfig(url="postgresql://h/db", statement_timeout=2),
        "database.url",
    )
    assert direct["statement_cache_size"] == 100 and direct["timeout"] == 3.0
    assert direct["server_settings"]["statement_timeout"] == "2000"
    assert "prepared_statement_name_func" not in direct
