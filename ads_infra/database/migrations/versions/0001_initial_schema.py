"""Initial schema: campaigns, ad groups, ads, daily performance, optimization suggestions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:55:29.605715
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("objective", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("daily_budget_micros", sa.BigInteger(), nullable=False),
        sa.Column("total_budget_micros", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "objective IN ('awareness', 'traffic', 'engagement', 'leads', 'app_promotion', 'sales')",  # noqa: E501
            name=op.f("ck_campaigns_objective"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'paused', 'archived')", name=op.f("ck_campaigns_status")
        ),
        sa.CheckConstraint(
            "daily_budget_micros >= 0", name=op.f("ck_campaigns_daily_budget_micros_non_negative")
        ),
        sa.CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
            name=op.f("ck_campaigns_dates"),
        ),
        sa.CheckConstraint(
            "total_budget_micros >= 0", name=op.f("ck_campaigns_total_budget_micros_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("id", "user_id", name=op.f("uq_campaigns_id_user_id")),
    )
    op.create_index(
        op.f("ix_campaigns_user_id_created_at_id"),
        "campaigns",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_campaigns_user_id_id"), "campaigns", ["user_id", "id"], unique=False)
    op.create_index(
        op.f("ix_campaigns_user_id_status"), "campaigns", ["user_id", "status"], unique=False
    )
    op.create_table(
        "ad_groups",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "targeting",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("bid_strategy", sa.String(length=32), nullable=False),
        sa.Column("bid_amount_micros", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "bid_strategy IN ('manual_cpc', 'maximize_clicks', 'maximize_conversions', 'target_cpa', 'target_roas')",  # noqa: E501
            name=op.f("ck_ad_groups_bid_strategy"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'paused', 'archived')", name=op.f("ck_ad_groups_status")
        ),
        sa.CheckConstraint(
            "bid_amount_micros >= 0", name=op.f("ck_ad_groups_bid_amount_micros_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id", "user_id"],
            ["campaigns.id", "campaigns.user_id"],
            name=op.f("fk_ad_groups_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_groups")),
        sa.UniqueConstraint(
            "id", "campaign_id", "user_id", name=op.f("uq_ad_groups_id_campaign_id_user_id")
        ),
    )
    op.create_index(
        op.f("ix_ad_groups_campaign_id_user_id"),
        "ad_groups",
        ["campaign_id", "user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ad_groups_user_id_created_at_id"),
        "ad_groups",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(op.f("ix_ad_groups_user_id_id"), "ad_groups", ["user_id", "id"], unique=False)
    op.create_table(
        "ads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ad_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("headline", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("final_url", sa.String(length=2048), nullable=True),
        sa.Column("creative_key", sa.String(length=1024), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "ad_type IN ('text', 'image', 'video', 'carousel', 'responsive')",
            name=op.f("ck_ads_ad_type"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'paused', 'archived')", name=op.f("ck_ads_status")
        ),
        sa.ForeignKeyConstraint(
            ["group_id", "campaign_id", "user_id"],
            ["ad_groups.id", "ad_groups.campaign_id", "ad_groups.user_id"],
            name=op.f("fk_ads_group_id_ad_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ads")),
    )
    op.create_index(op.f("ix_ads_campaign_id"), "ads", ["campaign_id"], unique=False)
    op.create_index(
        op.f("ix_ads_group_id_campaign_id_user_id"),
        "ads",
        ["group_id", "campaign_id", "user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ads_user_id_created_at_id"), "ads", ["user_id", "created_at", "id"], unique=False
    )
    op.create_index(op.f("ix_ads_user_id_id"), "ads", ["user_id", "id"], unique=False)
    op.create_index(op.f("ix_ads_user_id_status"), "ads", ["user_id", "status"], unique=False)
    op.create_table(
        "optimization_suggestions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=True),
        sa.Column("ad_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "expected_impact",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'applied', 'dismissed')",
            name=op.f("ck_optimization_suggestions_status"),
        ),
        sa.CheckConstraint(
            "type IN ('budget', 'bid', 'targeting', 'creative', 'pause')",
            name=op.f("ck_optimization_suggestions_type"),
        ),
        sa.ForeignKeyConstraint(
            ["ad_id"],
            ["ads.id"],
            name=op.f("fk_optimization_suggestions_ad_id_ads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id", "user_id"],
            ["campaigns.id", "campaigns.user_id"],
            name=op.f("fk_optimization_suggestions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["ad_groups.id"],
            name=op.f("fk_optimization_suggestions_group_id_ad_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optimization_suggestions")),
    )
    op.create_index(
        op.f("ix_optimization_suggestions_ad_id"),
        "optimization_suggestions",
        ["ad_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_optimization_suggestions_campaign_id"),
        "optimization_suggestions",
        ["campaign_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_optimization_suggestions_group_id"),
        "optimization_suggestions",
        ["group_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_optimization_suggestions_user_id_id"),
        "optimization_suggestions",
        ["user_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_optimization_suggestions_user_id_status_id"),
        "optimization_suggestions",
        ["user_id", "status", "id"],
        unique=False,
    )
    op.create_table(
        "performance_daily",
        sa.Column("ad_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("conversion_value_micros", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("clicks >= 0", name=op.f("ck_performance_daily_clicks_non_negative")),
        sa.CheckConstraint(
            "conversion_value_micros >= 0",
            name=op.f("ck_performance_daily_conversion_value_micros_non_negative"),
        ),
        sa.CheckConstraint(
            "conversions >= 0", name=op.f("ck_performance_daily_conversions_non_negative")
        ),
        sa.CheckConstraint(
            "cost_micros >= 0", name=op.f("ck_performance_daily_cost_micros_non_negative")
        ),
        sa.CheckConstraint(
            "impressions >= 0", name=op.f("ck_performance_daily_impressions_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["ad_id"], ["ads.id"], name=op.f("fk_performance_daily_ad_id_ads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ad_id", "date", name=op.f("pk_performance_daily")),
    )
    op.create_index(
        op.f("ix_performance_daily_campaign_id_date"),
        "performance_daily",
        ["campaign_id", "date"],
        unique=False,
    )
    op.create_index(
        op.f("ix_performance_daily_group_id_date"),
        "performance_daily",
        ["group_id", "date"],
        unique=False,
    )
    op.create_index(
        op.f("ix_performance_daily_user_id_date"),
        "performance_daily",
        ["user_id", "date"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_performance_daily_user_id_date"), table_name="performance_daily")
    op.drop_index(op.f("ix_performance_daily_group_id_date"), table_name="performance_daily")
    op.drop_index(op.f("ix_performance_daily_campaign_id_date"), table_name="performance_daily")
    op.drop_table("performance_daily")
    op.drop_index(
        op.f("ix_optimization_suggestions_user_id_status_id"), table_name="optimization_suggestions"
    )
    op.drop_index(
        op.f("ix_optimization_suggestions_user_id_id"), table_name="optimization_suggestions"
    )
    op.drop_index(
        op.f("ix_optimization_suggestions_group_id"), table_name="optimization_suggestions"
    )
    op.drop_index(
        op.f("ix_optimization_suggestions_campaign_id"), table_name="optimization_suggestions"
    )
    op.drop_index(op.f("ix_optimization_suggestions_ad_id"), table_name="optimization_suggestions")
    op.drop_table("optimization_suggestions")
    op.drop_index(op.f("ix_ads_user_id_status"), table_name="ads")
    op.drop_index(op.f("ix_ads_user_id_id"), table_name="ads")
    op.drop_index(op.f("ix_ads_user_id_created_at_id"), table_name="ads")
    op.drop_index(op.f("ix_ads_group_id_campaign_id_user_id"), table_name="ads")
    op.drop_index(op.f("ix_ads_campaign_id"), table_name="ads")
    op.drop_table("ads")
    op.drop_index(op.f("ix_ad_groups_user_id_id"), table_name="ad_groups")
    op.drop_index(op.f("ix_ad_groups_user_id_created_at_id"), table_name="ad_groups")
    op.drop_index(op.f("ix_ad_groups_campaign_id_user_id"), table_name="ad_groups")
    op.drop_table("ad_groups")
    op.drop_index(op.f("ix_campaigns_user_id_status"), table_name="campaigns")
    op.drop_index(op.f("ix_campaigns_user_id_id"), table_name="campaigns")
    op.drop_index(op.f("ix_campaigns_user_id_created_at_id"), table_name="campaigns")
    op.drop_table("campaigns")
