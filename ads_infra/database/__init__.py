"""The database adapter: engine and sessions, error translation, tables, migrations.

``from ads_infra.database import DatabaseConfig, DatabaseManager`` is the
seed's import; :mod:`.manager` owns the engines, :mod:`.connect` builds them
(TLS, PgBouncer mode), :mod:`.pool` counts the pool's waiters,
:mod:`.replicas` routes reads, :mod:`.budget` reads the server's connection
limit, :mod:`.errors` classifies driver errors, :mod:`.tables` holds the
schema and :mod:`.migrate` runs the Alembic migrations under :mod:`.migrations`.
"""

from ads_infra.core.settings import DatabaseConfig
from ads_infra.database.errors import (
    PoolExhaustedError,
    is_database_error,
    is_transient_error,
    translate_error,
    translated,
)
from ads_infra.database.manager import AFTER_COMMIT, DatabaseManager
from ads_infra.database.pool import ConnectionPool

__all__ = [
    "AFTER_COMMIT",
    "ConnectionPool",
    "DatabaseConfig",
    "DatabaseManager",
    "PoolExhaustedError",
    "is_database_error",
    "is_transient_error",
    "translate_error",
    "translated",
]
