"""How an engine reaches its server: URL parameters, TLS, PgBouncer mode, the counting pool.

:func:`create_engine_for` builds the AsyncEngine of one server (the primary or
a replica) from its URL and the section's settings:

- libpq's TLS names (``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``), in
  the URL or the section, become the SSL context asyncpg takes (asyncpg
  itself refuses them as keywords);
- the other URL parameters must be ones asyncpg or the dialect know: numbers
  arrive as strings and are converted (asyncpg would crash on ``"0"``), and an
  unknown one is a ConfigurationError naming it;
- ``pgbouncer``: no statement cache on either side, a unique name for every
  prepared statement (PgBouncer hands a client's statements to whichever server
  connection is free, so the driver's per-connection counter names collide), no
  ``statement_timeout`` startup parameter (PgBouncer refuses it: it is applied
  with ``SET LOCAL`` at the start of each transaction instead);
- the pool (:class:`~ads_infra.database.pool.CountingQueuePool`) counts the
  callers waiting for a connection, so an exhausted pool says how many queued.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.settings import TLS_KEYS, DatabaseConfig
from ads_infra.database.pool import CountingQueuePool

__all__ = ["connect_args", "create_engine_for", "create_sqlite_engine", "split_tls", "ssl_argument"]

APPLICATION_NAME = "ads-infra"
logger = logging.getLogger(__name__)

# URL parameters passed on to asyncpg.connect() (or read by SQLAlchemy's dialect),
# with the type a string from the URL is converted to.
_PASSED_ON: dict[str, type] = {
    "timeout": float,
    "command_timeout": float,
    "statement_cache_size": int,
    "max_cached_statement_lifetime": int,
    "max_cacheable_statement_size": int,
    "prepared_statement_cache_size": int,
    "direct_tls": bool,
    "target_session_attrs": str,
    "passfile": str,
    "krbsrvname": str,
    "gsslib": str,
}
# libpq names asyncpg spells differently.
_RENAMED = {"connect_timeout": "timeout"}


def split_tls(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without libpq's TLS parameters, and those parameters."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    tls = {k: v for k, v in query if k in TLS_KEYS}
    rest = [(k, v) for k, v in query if k not in TLS_KEYS]
    return urlunsplit(parts._replace(query=urlencode(rest))), tls


def ssl_argument(values: dict[str, str | None]) -> ssl.SSLContext | str | None:
    """What asyncpg's ``ssl=`` gets for libpq's ``sslmode`` and file names.

    ``disable``/``allow``/``prefer`` stay strings (asyncpg then falls back
    between TLS and plain as libpq does). ``require`` encrypts without checking
    the certificate, unless ``sslrootcert`` names a CA: then, as in libpq, it is
    ``verify-ca``. ``verify-ca`` checks the chain, ``verify-full`` the host name
    too; without ``sslrootcert`` (or with ``system``) against the system's CAs.
    """
    mode, rootcert = values.get("sslmode"), values.get("sslrootcert")
    cert, key = values.get("sslcert"), values.get("sslkey")
    if mode is None:
        if not (rootcert or cert or key):
            return None  # asyncpg's default: prefer
        mode = "verify-full" if rootcert else "require"
    if mode in ("disable", "allow", "prefer"):
        if cert or key:
            raise ConfigurationError(
                f"a client certificate (sslcert/sslkey) needs sslmode require or stricter, "
                f"not {mode!r}",
                key="database.sslmode",
            )
        return mode
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode == "require" and not rootcert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        if rootcert in (None, "", "system"):
            context.load_default_certs()
        else:
            context.load_verify_locations(cafile=rootcert)
        context.check_hostname = mode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
    if cert:
        context.load_cert_chain(cert, keyfile=key or None)
    return context


def connect_args(url: str, cfg: DatabaseConfig, key: str) -> tuple[str, dict[str, Any]]:
    """The URL SQLAlchemy gets (only parameters it passes on as they are) and connect_args."""
    clean, tls = split_tls(url)
    parts = urlsplit(clean)
    args: dict[str, Any] = {"timeout": cfg.pool_timeout}
    server_settings = {"application_name": APPLICATION_NAME}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        name = _RENAMED.get(name, name)
        if name == "application_name":
            server_settings["application_name"] = value
            continue
        kind = _PASSED_ON.get(name)
        if kind is None:
            known = sorted({*_PASSED_ON, *_RENAMED, *TLS_KEYS, "application_name"})
            raise ConfigurationError(
                f"unknown connection parameter {name!r} in the URL; known: {', '.join(known)}",
                key=key,
            )
        try:
            args[name] = value.lower() in ("1", "true", "on") if kind is bool else kind(value)
        except ValueError:
            raise ConfigurationError(
                f"connection parameter {name!r} must be a {kind.__name__}, got {value!r}", key=key
            ) from None
    tls_values: dict[str, str | None] = dict(cfg.tls_fields())
    for name, value in tls.items():
        if tls_values.get(name) not in (None, "", value):
            raise ConfigurationError(
                f"{name} is {value!r} in the URL but {tls_values[name]!r} in database.{name}; "
                "set it in one place",
                key=key,
            )
        tls_values[name] = value
    try:
        ssl_arg = ssl_argument(tls_values)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the TLS files: {exc}", key=key) from None
    if ssl_arg is not None:
        args["ssl"] = ssl_arg
    if cfg.pgbouncer:
        args.update(
            statement_cache_size=0,
            prepared_statement_cache_size=0,
            prepared_statement_name_func=_unique_statement_name,
        )
    else:
        server_settings["statement_timeout"] = str(int(cfg.statement_timeout * 1000))
    args["server_settings"] = server_settings
    # The dialect reads the query too: hand it none, everything is in connect_args.
    return urlunsplit(parts._replace(query="")), args


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _text_json_codecs(conn: Any) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=str.__str__, decoder=orjson.loads, format="text"
        )


def _json_as_text(dbapi_connection: Any, _record: Any) -> None:
    """JSON and JSONB exchanged as text, parsed by orjson itself.

    SQLAlchemy's asyncpg dialect takes them in binary form and parses each
    value in a Python function of its own (the format's version byte cut
    off, the bytes decoded, then the deserializer called): a frame and two
    copies per value, the largest client-side cost of a page of ads after
    building the entities. Here asyncpg decodes the text in C and hands it
    to ``orjson.loads`` directly. What is sent is unchanged: the dialect
    serializes a JSON parameter to text before any codec sees it
    (``str.__str__`` passes text on as it is, and refuses anything else).
    """
    dbapi_connection.run_async(_text_json_codecs)


def _unique_statement_name() -> str:
    return f"__ads_{uuid.uuid4().hex}__"


def create_engine_for(url: str, cfg: DatabaseConfig, *, key: str = "database.url") -> AsyncEngine:
    """The AsyncEngine of one PostgreSQL server (``key`` names the URL in errors)."""
    clean, arguments = connect_args(url, cfg, key)
    engine = create_async_engine(
        clean,
        # orjson parses a row's JSONB several times faster than json: a page of
        # ads spends more on its metadata than on anything else client-side.
        json_deserializer=orjson.loads,
        json_serializer=_json_text,
        echo=cfg.echo,
        pool_pre_ping=cfg.pool_pre_ping,
        poolclass=CountingQueuePool,
        pool_size=cfg.pool_size,
        max_overflow=cfg.max_overflow,
        pool_recycle=cfg.pool_recycle,
        pool_timeout=cfg.pool_timeout,
        connect_args=arguments,
    )
    event.listen(engine.sync_engine, "connect", _json_as_text)
    if cfg.pgbouncer and cfg.statement_timeout > 0:
        timeout_sql = f"SET LOCAL statement_timeout = {int(cfg.statement_timeout * 1000)}"

        def set_timeout(conn: Connection) -> None:
            # Each transaction may run on another server connection: a session
            # setting would land on one of them only, SET LOCAL goes with the
            # transaction.
            conn.exec_driver_sql(timeout_sql)

        event.listen(engine.sync_engine, "begin", set_timeout)
    return engine


def create_sqlite_engine(cfg: DatabaseConfig) -> AsyncEngine:
    """The AsyncEngine of the embedded SQLite file (its folder is created)."""
    database = make_url(cfg.url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"echo": cfg.echo, "pool_pre_ping": cfg.pool_pre_ping}
    if ":memory:" not in cfg.url and "mode=memory" not in cfg.url:
        kwargs.update(
            poolclass=CountingQueuePool,
            pool_size=cfg.pool_size,
            max_overflow=cfg.max_overflow,
            pool_recycle=cfg.pool_recycle,
            pool_timeout=cfg.pool_timeout,
        )
    # sqlite3's busy timeout: how long a writer waits for another's lock
    # before "database is locked" (which run() then retries).
    kwargs["connect_args"] = {"timeout": cfg.statement_timeout}
    engine = create_async_engine(cfg.url, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on (SQLite's default is off) and WAL, so readers don't block the writer."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        _use_wal(cursor)
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Put the file in WAL mode, which it keeps for every connection once set.

    Switching needs the file to itself, and SQLite does not wait for that while
    another connection holds a write lock: it says "database is locked" at
    once, busy timeout or not. So a process connecting while another writes
    (two processes starting on a new file: one migrating, one connecting)
    does not fail: it goes on in the file's current mode, and the switch is
    left to a later connection (or to the writer, which may be switching).
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except Exception as exc:  # the driver's OperationalError, whichever adapter raised it
        if "database is locked" not in str(exc):
            raise
        logger.debug("SQLite file busy, its journal mode is left to a later connection")
