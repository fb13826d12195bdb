"""The database adapter: engine and sessions, error translation, tables, migrations.

``from ads_infra.database import DatabaseConfig, DatabaseManager`` is the
seed's import; :mod:`.manager` owns the engine, :mod:`.errors` classifies
driver errors, :mod:`.tables` holds the schema and :mod:`.migrate` runs the
Alembic migrations under :mod:`.migrations`.
"""

from ads_infra.core.settings import DatabaseConfig
from ads_infra.database.errors import (
    is_database_error,
    is_transient_error,
    translate_error,
    translated,
)
from ads_infra.database.manager import AFTER_COMMIT, ConnectionPool, DatabaseManager

__all__ = [
    "AFTER_COMMIT",
    "ConnectionPool",
    "DatabaseConfig",
    "DatabaseManager",
    "is_database_error",
    "is_transient_error",
    "translate_error",
    "translated",
]
