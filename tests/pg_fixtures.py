"""Session-scoped fixtures of the private servers in :mod:`tests.pg_servers`.

Each is started once per test session, the first time a test asks for it,
and stopped at the end. A test that stops one (the replica) starts it again
before it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg_servers import Cluster, PgBouncer, TlsFiles, _own_dir, missing_programs
from tests.services import unavailable


def _require(*programs: str) -> None:
    missing = missing_programs(*programs)
    if missing:
        unavailable(
            f"{', '.join(missing)} not installed (run .ci/install-packages: it installs "
            "postgresql-15, pgbouncer and openssl)"
        )


@pytest.fixture(scope="session")
def pgbouncer(postgres_server_url: str) -> Iterator[PgBouncer]:
    """PgBouncer 1.x in transaction pooling mode in front of the test PostgreSQL (port 5432)."""
    _require("pgbouncer")
    bouncer = PgBouncer(5432)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def tls_cluster() -> Iterator[tuple[Cluster, TlsFiles]]:
    """A private PostgreSQL with ssl=on and a self-signed certificate; plain connections refused."""
    _require("initdb", "pg_ctl", "openssl")
    files = TlsFiles(_own_dir("ads-pg-tls-"))
    files.make()
    cluster = Cluster("tls", tls=files).init()
    cluster.start()
    try:
        yield cluster, files
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def replicated() -> Iterator[tuple[Cluster, Cluster]]:
    """A private primary and its streaming replica (pg_basebackup -R), each on its own port."""
    _require("initdb", "pg_ctl", "pg_basebackup")
    primary = Cluster("primary").init()
    primary.start()
    replica = Cluster("replica")
    try:
        replica.init_replica_of(primary)
        replica.start()
        yield primary, replica
    finally:
        replica.destroy()
        primary.destroy()
