"""Marketplace exports (Amazon, eBay) with optional AI title optimisation paid for in credits.

The run is all-or-nothing on validation: every product is checked before
anything is charged or sent, and one invalid product fails the job at once
with the reasons (the owner fixes the data and exports again). Then, with AI
on, each product's title is bought once per job: the debit row keeps the
title, so a retry after a marketplace failure reuses it without paying or
asking the provider again. Last, each product is published through the
marketplace's connector, whose writes are keyed by SKU and safe to repeat.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Clock, JobContext, Unrecoverable
from conveyor.commerce.catalog import MarketplaceKind, Product
from conveyor.commerce.connectors import Listing, key_limiter_hook
from conveyor.commerce.pipelines import catalog_io

from .connections import RefusalWatch, credentials_checked, load_account, marketplace_connector
from .credits import CreditLedger
from .providers import AISettings, open_provider

MARKETPLACE_NAMES = {MarketplaceKind.AMAZON: "Amazon", MarketplaceKind.EBAY: "eBay"}


class ProductValidationFailed(Unrecoverable):
    """Products miss what the catalog or the marketplace requires; fixing the data, not retrying, fixes it."""


class Exporter:
    """Runs `amazon:export:products` and `ebay:export:products`; one instance serves every job."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        credits: CreditLedger,
        ai: AISettings | None,
        clock: Clock,
        timeout: float,
        credits_per_title: int,
    ) -> None:
        self._sessions = sessions
        self._credits = credits
        self._ai = ai
        self._clock = clock
        self._timeout = timeout
        self._credits_per_title = credits_per_title

    async def run(
        self,
        ctx: JobContext,
        kind: MarketplaceKind,
        store_id: int,
        account_id: int,
        product_ids: list[int],
        ai_optimize: bool,
    ) -> dict[str, object]:
        account = await asyncio.to_thread(load_account, self._sessions, store_id, account_id, (kind,))
        listings = await self._valid_listings(store_id, product_ids)
        spent = 0
        if ai_optimize:
            listings, spent = await self._optimize(ctx, store_id, kind, listings)
        watch = RefusalWatch()
        connector = marketplace_connector(account, key_limiter_hook(ctx), self._clock, self._timeout, watch)
        marketplace = MARKETPLACE_NAMES[kind]
        async with connector, credentials_checked(f"{marketplace} account {account_id}", watch):
            for n, listing in enumerate(listings, 1):
                try:
                    await connector.publish(listing)
                except Unrecoverable as e:
                    if watch.refused or not watch.rejected_content:
                        raise
                    raise ProductValidationFailed(f"Product validation failed: {listing.sku}: {e}") from e
                done = len(listings) + n if ai_optimize else n
                ctx.progress(
                    None,
                    f"Exporting to {marketplace}: {listing.name} ({n}/{len(listings)})",
                    step="export",
                    done=done,
                    total=len(listings) * (2 if ai_optimize else 1),
                )
        return {"exported": [listing.sku for listing in listings], "credits_spent": spent}

    async def _valid_listings(self, store_id: int, product_ids: list[int]) -> list[Listing]:
        """The products as listings, in the order asked; `ProductValidationFailed` naming every problem."""
        product_ids = list(dict.fromkeys(product_ids))
        owners = await asyncio.to_thread(_owners, self._sessions, product_ids)
        problems = [f"product {pid}: not found" for pid in product_ids if pid not in owners]
        problems += [
            f"product {pid}: belongs to another store" for pid, sid in owners.items() if sid != store_id
        ]
        checked = await asyncio.to_thread(catalog_io.check_products, self._sessions, list(owners))
        problems += [f"{c.sku or c.product_id}: {c.reason}" for c in checked if c.reason is not None]
        if problems:
            raise ProductValidationFailed("Product validation failed: " + "; ".join(problems))
        listings = await asyncio.to_thread(catalog_io.load_listings, self._sessions, product_ids)
        return [listings[pid] for pid in product_ids]

    async def _optimize(
        self, ctx: JobContext, store_id: int, kind: MarketplaceKind, listings: list[Listing]
    ) -> tuple[list[Listing], int]:
        if self._ai is None:
            raise Unrecoverable("AI optimisation was asked for, but no AI provider is configured")
        optimized, spent = [], 0
        async with open_provider(self._ai, None, self._clock) as provider:
            for n, listing in enumerate(listings, 1):
                ctx.progress(
                    None,
                    f"AI optimizing: {listing.name} ({n}/{len(listings)})",
                    step="ai",
                    done=n - 1,
                    total=2 * len(listings),
                )
                title, cost = await self._credits.buy(
                    store_id,
                    ctx.job.id,
                    f"title:{kind}:{listing.sku}",
                    self._credits_per_title,
                    partial(
                        provider.optimize_title,
                        listing.name,
                        marketplace=str(kind),
                        description=listing.description,
                    ),
                )
                spent += cost
                optimized.append(replace(listing, name=title))
        return optimized, spent


def _owners(sessions: sessionmaker[Session], product_ids: list[int]) -> dict[int, int]:
    with sessions.begin() as session:
        rows = session.execute(select(Product.id, Product.store_id).where(Product.id.in_(product_ids)))
        return {pid: sid for pid, sid in rows}
