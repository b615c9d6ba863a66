"""The supplier sync's own tables: suppliers, the last synced content hash per family, stored media.

Products and variants stay in the catalog's tables (`catalog.py`); these
tables only remember what the sync needs to skip work next time: a family
whose hash matches was synced already, and a picture whose source URL is
known was downloaded and stored already.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow


class Supplier(Base):
    """A supplier folder of the feed (its code, e.g. `A23`) whose products land in one store."""

    __tablename__ = "suppliers"
    __table_args__ = (UniqueConstraint("store_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    last_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FamilyHash(Base):
    """The content hash of a family as last written to the catalog, with all its pictures stored."""

    __tablename__ = "supplier_family_hashes"
    __table_args__ = (UniqueConstraint("supplier_id", "family_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="CASCADE"), index=True)
    family_key: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SupplierMedia(Base):
    """One supplier picture, downloaded once: where it came from and where its bytes are stored."""

    __tablename__ = "supplier_media"
    __table_args__ = (UniqueConstraint("supplier_id", "source_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="CASCADE"), index=True)
    source_url: Mapped[str] = mapped_column(String(2048))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    storage_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
