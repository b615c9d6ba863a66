"""Seller data (seed 004): users, seller accounts, analysis cache, job-status records.

Revision ID: 0003_seller_data
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_seller_data"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("seller_data",)
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "seller_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data_updated_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_users")),
    )
    op.create_index(
        op.f("ix_seller_users_data_updated_at"), "seller_users", ["data_updated_at"], unique=False
    )
    op.create_table(
        "seller_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "region",
            sa.Enum(
                "NA", "EU", "FE", name="seller_region", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("marketplace_id", sa.String(length=20), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("credentials_ref", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "credentials_ref LIKE 'env:%' OR credentials_ref LIKE 'file:%'",
            name=op.f("ck_seller_accounts_credentials_ref_is_reference"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["seller_users.id"],
            name=op.f("fk_seller_accounts_user_id_seller_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_accounts")),
        sa.UniqueConstraint(
            "user_id", "region", "country", name=op.f("uq_seller_accounts_user_id_region_country")
        ),
    )
    op.create_index(op.f("ix_seller_accounts_user_id"), "seller_accounts", ["user_id"], unique=False)
    op.create_table(
        "seller_data_cache",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("analysis", JSON_DOCUMENT, nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["seller_accounts.id"],
            name=op.f("fk_seller_data_cache_account_id_seller_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["seller_users.id"],
            name=op.f("fk_seller_data_cache_user_id_seller_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_seller_data_cache")),
    )
    op.create_index(op.f("ix_seller_data_cache_user_id"), "seller_data_cache", ["user_id"], unique=False)
    op.create_table(
        "seller_data_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "retrying",
                "completed",
                "partial",
                "failed",
                "interrupted",
                name="seller_run_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("accounts_total", sa.Integer(), nullable=False),
        sa.Column("accounts_processed", sa.Integer(), nullable=False),
        sa.Column("errors", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["seller_users.id"],
            name=op.f("fk_seller_data_runs_user_id_seller_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_data_runs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_seller_data_runs_job_id")),
    )
    op.create_index(op.f("ix_seller_data_runs_user_id"), "seller_data_runs", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_seller_data_runs_user_id"), table_name="seller_data_runs")
    op.drop_table("seller_data_runs")
    op.drop_index(op.f("ix_seller_data_cache_user_id"), table_name="seller_data_cache")
    op.drop_table("seller_data_cache")
    op.drop_index(op.f("ix_seller_accounts_user_id"), table_name="seller_accounts")
    op.drop_table("seller_accounts")
    op.drop_index(op.f("ix_seller_users_data_updated_at"), table_name="seller_users")
    op.drop_table("seller_users")
