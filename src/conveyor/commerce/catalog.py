"""The catalog: stores, their marketplace accounts, products and campaigns.

The database keeps integrity rules (unique SKUs, references, known statuses,
credential references instead of secrets) and nothing more: whether a product
is publishable (a price, stock, a SKU) is decided by the publish pipeline, which
must be able to load an invalid product in order to report why it failed.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .db import Base, JSONDocument, string_enum, utcnow

CREDENTIAL_SCHEMES = ("env:", "file:")
"""How a credential may be referenced: `env:NAME` or `file:/path#key`; the secret never enters the catalog."""


class MarketplaceKind(enum.StrEnum):
    JUMPSELLER = "jumpseller"
    SHOPIFY = "shopify"
    AMAZON = "amazon"
    EBAY = "ebay"


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"


def _json_object() -> Any:
    # MutableDict so that `account.settings["x"] = 1` is saved without reassigning the dict.
    return MutableDict.as_mutable(JSONDocument)


class Store(Base):
    """A tenant: everything else in the catalog belongs to exactly one store."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    accounts: Mapped[list[MarketplaceAccount]] = relationship(
        back_populates="store", cascade="all, delete-orphan", passive_deletes=True
    )
    products: Mapped[list[Product]] = relationship(
        back_populates="store", cascade="all, delete-orphan", passive_deletes=True
    )
    campaigns: Mapped[list[Campaign]] = relationship(
        back_populates="store", cascade="all, delete-orphan", passive_deletes=True
    )


class MarketplaceAccount(Base):
    """One seller account on one marketplace; the ledger's delivery target."""

    __tablename__ = "marketplace_accounts"
    __table_args__ = (
        UniqueConstraint("store_id", "name"),
        CheckConstraint(
            " OR ".join(f"credentials_ref LIKE '{scheme}%'" for scheme in CREDENTIAL_SCHEMES),
            name="credentials_ref_is_reference",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    kind: Mapped[MarketplaceKind] = mapped_column(string_enum(MarketplaceKind, "marketplace_kind"))
    name: Mapped[str] = mapped_column(String(200))
    credentials_ref: Mapped[str] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(_json_object(), default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    store: Mapped[Store] = relationship(back_populates="accounts")

    @validates("credentials_ref")
    def _check_reference(self, _key: str, value: str) -> str:
        if not value.startswith(CREDENTIAL_SCHEMES):
            raise ValueError("credentials_ref must be a reference (env:NAME or file:/path#key), not a secret")
        return value


class Product(Base):
    """A sellable product; `ready` is the owner's sign that it may be delivered to marketplaces."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("store_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int] = mapped_column(default=0)
    status: Mapped[ProductStatus] = mapped_column(
        string_enum(ProductStatus, "product_status"), default=ProductStatus.DRAFT
    )
    ready: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship(back_populates="products")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", cascade="all, delete-orphan", passive_deletes=True, order_by="Variant.sku"
    )
    images: Mapped[list[Image]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Image.position",
    )


class Variant(Base):
    """One buyable combination of a product's modifier groups (`options`, e.g. {"Size": "M"})."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("product_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    """None means the product's price."""
    stock: Mapped[int] = mapped_column(default=0)
    options: Mapped[dict[str, Any]] = mapped_column(_json_object(), default=dict)

    product: Mapped[Product] = relationship(back_populates="variants")


class Image(Base):
    """A product image; `content_hash` (of the bytes) lets pipelines skip re-uploading the same picture."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("product_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    position: Mapped[int] = mapped_column(default=0)
    content_hash: Mapped[str | None] = mapped_column(String(64))

    product: Mapped[Product] = relationship(back_populates="images")


class Campaign(Base):
    """A publishing run of chosen products to chosen accounts, with its outcome counts."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        string_enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    products_total: Mapped[int] = mapped_column(default=0)
    products_published: Mapped[int] = mapped_column(default=0)
    products_failed: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship(back_populates="campaigns")
    items: Mapped[list[CampaignProduct]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", passive_deletes=True
    )


class CampaignProduct(Base):
    """One product to publish to one marketplace account within a campaign."""

    __tablename__ = "campaign_products"
    __table_args__ = (UniqueConstraint("campaign_id", "product_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("marketplace_accounts.id", ondelete="CASCADE"), index=True
    )

    campaign: Mapped[Campaign] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()
    account: Mapped[MarketplaceAccount] = relationship()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(Decimal(value).quantize(Decimal("0.01")), "f")


def product_document(product: Product) -> dict[str, Any]:
    """What a marketplace sees of a product; ids, timestamps and `ready` are not content."""
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": _money(product.price),
        "stock": product.stock,
        "status": str(product.status),
        "variants": [
            {"sku": v.sku, "price": _money(v.price), "stock": v.stock, "options": v.options}
            for v in sorted(product.variants, key=lambda v: v.sku)
        ],
        "images": [
            {"url": i.url, "position": i.position, "content_hash": i.content_hash}
            for i in sorted(product.images, key=lambda i: (i.position, i.url))
        ],
    }


def content_hash(product: Product) -> str:
    canonical = json.dumps(
        product_document(product), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
