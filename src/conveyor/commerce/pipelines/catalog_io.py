"""The publish pipeline's reads and writes of the catalog, as plain values for job handlers.

Each function is one short transaction and returns data, not ORM objects,
so handlers can run it in a thread (`asyncio.to_thread`) without sharing a
session with the event loop.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from conveyor import Unrecoverable
from conveyor.commerce.catalog import (
    Campaign,
    CampaignProduct,
    CampaignStatus,
    MarketplaceAccount,
    MarketplaceKind,
    Product,
)
from conveyor.commerce.connectors import Listing

from .marketplaces import listing_of


@dataclass(frozen=True)
class Checked:
    product_id: int
    sku: str
    reason: str | None
    """Why the product cannot be published, or None when it can."""


def problem(product: Product) -> str | None:
    """The first reason a marketplace would refuse the product (seed 000: price, stock, SKU)."""
    if not (product.sku or "").strip():
        return "SKU missing"
    if product.price is None or Decimal(product.price) <= 0:
        return "price must be greater than 0"
    if product.stock is None or product.stock < 0:
        return "stock must not be negative"
    return None


def start_campaign(sessions: sessionmaker[Session], campaign_id: int) -> dict[int, list[int]]:
    """Mark the campaign `publishing`; its product ids per account id, both sorted."""
    with sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise Unrecoverable(f"no campaign {campaign_id}")
        campaign.status = CampaignStatus.PUBLISHING
        groups: dict[int, list[int]] = defaultdict(list)
        rows = session.execute(
            select(CampaignProduct.account_id, CampaignProduct.product_id)
            .where(CampaignProduct.campaign_id == campaign_id)
            .order_by(CampaignProduct.account_id, CampaignProduct.product_id)
        )
        for account_id, product_id in rows:
            groups[account_id].append(product_id)
        campaign.products_total = sum(len(ids) for ids in groups.values())
        return dict(groups)


def finish_campaign(
    sessions: sessionmaker[Session], campaign_id: int, status: CampaignStatus, published: int, failed: int
) -> None:
    with sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise Unrecoverable(f"no campaign {campaign_id}")
        campaign.status = status
        campaign.products_published = published
        campaign.products_failed = failed


def account_kind(sessions: sessionmaker[Session], account_id: int) -> MarketplaceKind:
    with sessions.begin() as session:
        account = session.get(MarketplaceAccount, account_id)
        if account is None:
            raise Unrecoverable(f"no marketplace account {account_id}")
        return MarketplaceKind(account.kind)


def check_products(sessions: sessionmaker[Session], product_ids: list[int]) -> list[Checked]:
    with sessions.begin() as session:
        products = session.scalars(select(Product).where(Product.id.in_(product_ids)).order_by(Product.id))
        return [Checked(p.id, p.sku, problem(p)) for p in products]


def load_account(sessions: sessionmaker[Session], account_id: int) -> MarketplaceAccount:
    """A detached account (kind, credentials reference, settings) for building a connector."""
    with sessions.begin() as session:
        account = session.get(MarketplaceAccount, account_id)
        if account is None:
            raise Unrecoverable(f"no marketplace account {account_id}")
        session.expunge(account)
        return account


def load_listings(sessions: sessionmaker[Session], product_ids: list[int]) -> dict[int, Listing]:
    """Current content by product id; a product deleted since it was shipped is simply absent."""
    with sessions.begin() as session:
        query = (
            select(Product)
            .where(Product.id.in_(product_ids))
            .options(selectinload(Product.variants), selectinload(Product.images))
        )
        return {p.id: listing_of(p) for p in session.scalars(query)}
