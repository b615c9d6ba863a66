"""The store jobs' own tables: AI credits, UI labels, imported categories, Akeneo connections.

They sit beside the catalog (same `Base`, own Alembic branch `store_jobs`)
and point at `stores` so a deleted store takes its credits and labels along.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conveyor.commerce.catalog import CREDENTIAL_SCHEMES
from conveyor.commerce.db import Base, utcnow


class CreditBalance(Base):
    """A store's AI credits; `daily_charge` is what `system:daily_credit_deduction` takes each day."""

    __tablename__ = "store_credit_balances"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(default=0)
    daily_charge: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreditDebit(Base):
    """One charge; unique per (store, job, item), so a retried attempt finds it instead of paying again.

    `result` keeps what the credit bought (an AI title, a translation), so a
    retry reuses it rather than asking the provider a second time.
    """

    __tablename__ = "store_credit_debits"
    __table_args__ = (UniqueConstraint("store_id", "job_id", "item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int]
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UiLabel(Base):
    """A storefront UI text by key and language; translations are rows in the target language."""

    __tablename__ = "store_ui_labels"
    __table_args__ = (UniqueConstraint("store_id", "key", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)


class ImportedCategory(Base):
    """A Shopify collection or Akeneo category, by its code in the source system."""

    __tablename__ = "store_categories"
    __table_args__ = (UniqueConstraint("store_id", "source", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    parent_code: Mapped[str | None] = mapped_column(String(200))


class AkeneoConnection(Base):
    """Where a store's Akeneo PIM is and which credentials reference opens it (never the secret)."""

    __tablename__ = "store_akeneo_connections"
    __table_args__ = (
        CheckConstraint(
            " OR ".join(f"credentials_ref LIKE '{scheme}%'" for scheme in CREDENTIAL_SCHEMES),
            name="credentials_ref_is_reference",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    credentials_ref: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
