"""Supplier sync: suppliers, family content hashes and stored supplier media.

Revision ID: 0002_suppliers
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_suppliers"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("suppliers",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppliers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_suppliers_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppliers")),
        sa.UniqueConstraint("store_id", "code", name=op.f("uq_suppliers_store_id_code")),
    )
    op.create_index(op.f("ix_suppliers_store_id"), "suppliers", ["store_id"], unique=False)

    op.create_table(
        "supplier_family_hashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("family_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_supplier_family_hashes_supplier_id_suppliers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_supplier_family_hashes_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_family_hashes")),
        sa.UniqueConstraint(
            "supplier_id", "family_key", name=op.f("uq_supplier_family_hashes_supplier_id_family_key")
        ),
    )
    op.create_index(
        op.f("ix_supplier_family_hashes_supplier_id"), "supplier_family_hashes", ["supplier_id"], unique=False
    )
    op.create_index(
        op.f("ix_supplier_family_hashes_product_id"), "supplier_family_hashes", ["product_id"], unique=False
    )

    op.create_table(
        "supplier_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.String(length=2048), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_supplier_media_supplier_id_suppliers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_media")),
        sa.UniqueConstraint(
            "supplier_id", "source_url", name=op.f("uq_supplier_media_supplier_id_source_url")
        ),
    )
    op.create_index(op.f("ix_supplier_media_supplier_id"), "supplier_media", ["supplier_id"], unique=False)
    op.create_index(op.f("ix_supplier_media_content_hash"), "supplier_media", ["content_hash"], unique=False)


def downgrade() -> None:
    op.drop_table("supplier_media")
    op.drop_table("supplier_family_hashes")
    op.drop_table("suppliers")
