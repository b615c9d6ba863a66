"""Turning imported records into catalog rows: Shopify and Akeneo products, collections, categories.

Products are upserted by (store, SKU), so importing twice updates rather
than duplicates, and a retried page rewrites what the failed attempt wrote.
Mapping is pure (`*_to_draft`) and writing is one transaction per page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from conveyor.commerce.catalog import Image, Product, ProductStatus, Variant
from conveyor.commerce.db import insert_ignoring_conflicts

from .tables import ImportedCategory


class InvalidRecord(ValueError):
    """An imported record the catalog cannot hold (no SKU, no price); the import reports and skips it."""


@dataclass(frozen=True)
class VariantDraft:
    sku: str
    price: Decimal | None
    stock: int
    options: dict[str, str]


@dataclass(frozen=True)
class ProductDraft:
    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    status: ProductStatus
    variants: list[VariantDraft] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CategoryDraft:
    code: str
    name: str
    parent_code: str | None


def _money(value: Any, what: str) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRecord(f"{what}: price {value!r} is not a number") from None
    if price < 0:
        raise InvalidRecord(f"{what}: price must not be negative")
    return price


def shopify_to_draft(product: dict[str, Any]) -> ProductDraft:
    """A Shopify REST product: SKUs live on variants; a lone `Default Title` variant is the product itself.

    A product with real variants takes its handle (unique per shop) as its own SKU.
    """
    variants = product.get("variants") or []
    if not variants:
        raise InvalidRecord(f"Shopify product {product.get('id')}: no variants, so no price")
    first = variants[0]
    single = len(variants) == 1 and first.get("title") == "Default Title"
    fallback = f"shopify-{product['id']}"
    sku = str(first.get("sku") or fallback) if single else str(product.get("handle") or fallback)
    names = [o["name"] for o in product.get("options") or []]
    drafts = []
    if not single:
        for v in variants:
            options = {name: str(v[f"option{n}"]) for n, name in enumerate(names, 1) if v.get(f"option{n}")}
            vsku = str(v.get("sku") or f"{sku}-{v['id']}")
            drafts.append(
                VariantDraft(
                    vsku, _money(v.get("price", "0"), vsku), int(v.get("inventory_quantity") or 0), options
                )
            )
    status = product.get("status", "active")
    return ProductDraft(
        sku=sku,
        name=str(product.get("title") or sku),
        description=str(product.get("body_html") or ""),
        price=_money(first.get("price", "0"), sku),
        stock=sum(d.stock for d in drafts) if drafts else int(first.get("inventory_quantity") or 0),
        status=ProductStatus(status) if status in ProductStatus.__members__.values() else ProductStatus.DRAFT,
        variants=drafts,
        images=[str(i["src"]) for i in product.get("images") or [] if i.get("src")],
    )


def _value(values: dict[str, Any], attribute: str) -> Any:
    entries = values.get(attribute) or []
    return entries[0].get("data") if entries else None


def akeneo_to_draft(product: dict[str, Any]) -> ProductDraft:
    """An Akeneo product in the standard format; `name`, `description` and `price` are attribute values."""
    identifier = str(product.get("identifier") or "")
    if not identifier.strip():
        raise InvalidRecord("Akeneo product without an identifier")
    values = product.get("values") or {}
    prices = _value(values, "price") or []
    if not prices:
        raise InvalidRecord(f"{identifier}: no price")
    return ProductDraft(
        sku=identifier,
        name=str(_value(values, "name") or identifier),
        description=str(_value(values, "description") or ""),
        price=_money(prices[0].get("amount"), identifier),
        stock=0,
        status=ProductStatus.ACTIVE if product.get("enabled", True) else ProductStatus.DRAFT,
    )


def upsert_products(sessions: sessionmaker[Session], store_id: int, drafts: Iterable[ProductDraft]) -> int:
    """Create or update the drafts' products (variants and images replaced); returns how many were written."""
    drafts = list(drafts)
    with sessions.begin() as session:
        query = (
            select(Product)
            .where(Product.store_id == store_id, Product.sku.in_([d.sku for d in drafts]))
            .options(selectinload(Product.variants), selectinload(Product.images))
        )
        existing = {p.sku: p for p in session.scalars(query)}
        for draft in drafts:
            product = existing.get(draft.sku) or Product(store_id=store_id, sku=draft.sku)
            product.name, product.description = draft.name, draft.description
            product.price, product.stock, product.status = draft.price, draft.stock, draft.status
            if product.variants or product.images:
                # Delete the old rows before inserting their replacements, which reuse their unique keys.
                product.variants, product.images = [], []
                session.flush()
            product.variants = [
                Variant(sku=v.sku, price=v.price, stock=v.stock, options=v.options) for v in draft.variants
            ]
            product.images = [Image(url=url, position=n) for n, url in enumerate(draft.images, 1)]
            session.add(product)
        return len(drafts)


def upsert_categories(
    sessions: sessionmaker[Session], store_id: int, source: str, drafts: Iterable[CategoryDraft]
) -> int:
    drafts = list(drafts)
    with sessions.begin() as session:
        codes = [d.code for d in drafts]
        query = select(ImportedCategory).where(
            ImportedCategory.store_id == store_id,
            ImportedCategory.source == source,
            ImportedCategory.code.in_(codes),
        )
        existing = {c.code: c for c in session.scalars(query)}
        rows = [
            {
                "store_id": store_id,
                "source": source,
                "code": d.code,
                "name": d.name,
                "parent_code": d.parent_code,
            }
            for d in drafts
            if d.code not in existing
        ]
        insert_ignoring_conflicts(session, ImportedCategory, rows, ("store_id", "source", "code"))
        for draft in drafts:
            if draft.code in existing:
                existing[draft.code].name = draft.name
                existing[draft.code].parent_code = draft.parent_code
        return len(drafts)


def collection_to_draft(collection: dict[str, Any]) -> CategoryDraft:
    return CategoryDraft(
        str(collection.get("handle") or collection["id"]), str(collection.get("title") or ""), None
    )


def category_to_draft(category: dict[str, Any]) -> CategoryDraft:
    labels = category.get("labels") or {}
    name = next(iter(labels.values()), None) if labels else None
    return CategoryDraft(str(category["code"]), str(name or category["code"]), category.get("parent"))
