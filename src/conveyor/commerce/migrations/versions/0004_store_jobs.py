"""Store jobs: AI credit balances and debits, UI labels, imported categories, Akeneo connections.

Revision ID: 0004_store_jobs
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_store_jobs"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("store_jobs",)
depends_on: str | Sequence[str] | None = None


def _store_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["store_id"], ["stores.id"], name=op.f(f"fk_{table}_store_id_stores"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "store_credit_balances",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("daily_charge", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_store_credit_balances_balance_not_negative")),
        _store_fk("store_credit_balances"),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_store_credit_balances")),
    )
    op.create_table(
        "store_credit_debits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _store_fk("store_credit_debits"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_credit_debits")),
        sa.UniqueConstraint(
            "store_id", "job_id", "item", name=op.f("uq_store_credit_debits_store_id_job_id_item")
        ),
    )
    op.create_table(
        "store_ui_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _store_fk("store_ui_labels"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_ui_labels")),
        sa.UniqueConstraint(
            "store_id", "key", "language", name=op.f("uq_store_ui_labels_store_id_key_language")
        ),
    )
    op.create_table(
        "store_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("parent_code", sa.String(length=200), nullable=True),
        _store_fk("store_categories"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_categories")),
        sa.UniqueConstraint(
            "store_id", "source", "code", name=op.f("uq_store_categories_store_id_source_code")
        ),
    )
    op.create_table(
        "store_akeneo_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("credentials_ref", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "credentials_ref LIKE 'env:%' OR credentials_ref LIKE 'file:%'",
            name=op.f("ck_store_akeneo_connections_credentials_ref_is_reference"),
        ),
        _store_fk("store_akeneo_connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_akeneo_connections")),
    )
    for table in ("store_credit_debits", "store_ui_labels", "store_categories", "store_akeneo_connections"):
        op.create_index(op.f(f"ix_{table}_store_id"), table, ["store_id"], unique=False)


def downgrade() -> None:
    for table in ("store_akeneo_connections", "store_categories", "store_ui_labels", "store_credit_debits"):
        op.drop_index(op.f(f"ix_{table}_store_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("store_credit_balances")
