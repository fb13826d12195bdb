"""SQLAlchemy Core tables of the ads domain: one MetaData for the app and for Alembic.

The naming convention gives every constraint and index a stable name, so
Alembic migrations can drop and alter them on PostgreSQL and SQLite alike.

Ownership is enforced twice: repositories scope every statement by
``user_id``, and composite foreign keys (``campaign_id, user_id`` ->
``campaigns (id, user_id)``) make it impossible to store an ad under another
user's campaign or a group of another campaign. Indexes lead with
``user_id`` because every query does; they end with ``id`` so keyset
pagination reads an index range.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from ads_infra.domain.entities import (
    AdType,
    BidStrategy,
    Objective,
    Status,
    SuggestionStatus,
    SuggestionType,
)

__all__ = [
    "ad_groups",
    "ads",
    "campaigns",
    "metadata",
    "optimization_suggestions",
    "performance_daily",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (not BIGINT).
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)


def _one_of(column: str, values: type[enum.Enum], name: str | None = None) -> CheckConstraint:
    allowed = ", ".join(f"'{m.value}'" for m in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or column)


def _non_negative(*columns: str) -> list[CheckConstraint]:
    return [CheckConstraint(f"{c} >= 0", name=f"{c}_non_negative") for c in columns]


campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("name", String(255), nullable=False),
    Column("objective", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("daily_budget_micros", BigInteger, nullable=False),
    Column("total_budget_micros", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("id", "user_id"),
    _one_of("objective", Objective),
    _one_of("status", Status),
    *_non_negative("daily_budget_micros", "total_budget_micros"),
    CheckConstraint("end_date IS NULL OR start_date IS NULL OR end_date >= start_date", "dates"),
    Index(None, "user_id", "id"),
    Index(None, "user_id", "created_at", "id"),
    Index(None, "user_id", "status"),
)

ad_groups = Table(
    "ad_groups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("campaign_id", BigInteger, nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("targeting", Json, nullable=False),
    Column("bid_strategy", String(32), nullable=False),
    Column("bid_amount_micros", BigInteger, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("id", "campaign_id", "user_id"),
    ForeignKeyConstraint(
        ["campaign_id", "user_id"], ["campaigns.id", "campaigns.user_id"], ondelete="CASCADE"
    ),
    _one_of("status", Status),
    _one_of("bid_strategy", BidStrategy),
    *_non_negative("bid_amount_micros"),
    Index(None, "user_id", "id"),
    Index(None, "user_id", "created_at", "id"),
    Index(None, "campaign_id", "user_id"),
)

ads = Table(
    "ads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("campaign_id", BigInteger, nullable=False),
    Column("group_id", BigInteger, nullable=False),
    Column("name", String(255), nullable=False),
    Column("ad_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("headline", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("final_url", String(2048), nullable=True),
    Column("creative_key", String(1024), nullable=True),
    Column("metadata", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    ForeignKeyConstraint(
        ["group_id", "campaign_id", "user_id"],
        ["ad_groups.id", "ad_groups.campaign_id", "ad_groups.user_id"],
        ondelete="CASCADE",
    ),
    _one_of("ad_type", AdType),
    _one_of("status", Status),
    Index(None, "user_id", "id"),
    Index(None, "user_id", "created_at", "id"),
    Index(None, "user_id", "status"),
    Index(None, "group_id", "campaign_id", "user_id"),
    Index(None, "campaign_id"),
)

performance_daily = Table(
    "performance_daily",
    metadata,
    Column("ad_id", BigInteger, nullable=False),
    Column("date", Date, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("campaign_id", BigInteger, nullable=False),
    Column("group_id", BigInteger, nullable=False),
    Column("impressions", BigInteger, nullable=False),
    Column("clicks", BigInteger, nullable=False),
    Column("conversions", Numeric(18, 4), nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("conversion_value_micros", BigInteger, nullable=False),
    PrimaryKeyConstraint("ad_id", "date"),
    ForeignKeyConstraint(["ad_id"], ["ads.id"], ondelete="CASCADE"),
    *_non_negative(
        "impressions", "clicks", "conversions", "cost_micros", "conversion_value_micros"
    ),
    Index(None, "user_id", "date"),
    Index(None, "campaign_id", "date"),
    Index(None, "group_id", "date"),
)

optimization_suggestions = Table(
    "optimization_suggestions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("campaign_id", BigInteger, nullable=False),
    Column("group_id", BigInteger, nullable=True),
    Column("ad_id", BigInteger, nullable=True),
    Column("type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("title", String(255), nullable=False),
    Column("payload", Json, nullable=False),
    Column("evidence", Json, nullable=False),
    Column("expected_impact", Json, nullable=False),
    Column("score", Float, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("applied_at", Timestamp, nullable=True),
    Column("dismissed_at", Timestamp, nullable=True),
    ForeignKeyConstraint(
        ["campaign_id", "user_id"], ["campaigns.id", "campaigns.user_id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(["group_id"], ["ad_groups.id"], ondelete="CASCADE"),
    ForeignKeyConstraint(["ad_id"], ["ads.id"], ondelete="CASCADE"),
    _one_of("type", SuggestionType),
    _one_of("status", SuggestionStatus),
    Index(None, "user_id", "id"),
    Index(None, "user_id", "status", "id"),
    Index(None, "campaign_id"),
    Index(None, "group_id"),
    Index(None, "ad_id"),
)
