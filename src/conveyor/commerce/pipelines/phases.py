"""The phase jobs: one marketplace call per product of a batch, for one phase, with the account's key.

A phase job is safe to retry and to repeat: `product_data` first asks the
marketplace which SKUs it already holds and updates those instead of creating
them again (a create that answered late, an attempt cut short by a 5xx after
some products, a later campaign after an edit), and the connectors reconcile
variants by SKU and images by URL. A product the marketplace refuses
(`Unrecoverable`: its validation) goes to the error bag and is marked failed
in the ledger, and the batch's next phases go on without it; refused
credentials (`CredentialsRejected`) fail the job at once, since no product of
the account can go through; anything else
propagates, so the engine retries the job (5xx, timeouts) or re-delays it
without spending an attempt (`RateLimited`, after the limiter was fed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from conveyor import Clock, JobContext, Unrecoverable
from conveyor.commerce.catalog import MarketplaceKind
from conveyor.commerce.connectors import (
    Connector,
    CredentialsRejected,
    Listing,
    Pacer,
    RateLimitHook,
    RateLimitInfo,
    RemoteProduct,
    RetryPolicy,
)
from conveyor.commerce.ledger import Ledger

from . import catalog_io
from .marketplaces import MARKETPLACES, ConnectorOptions, Marketplace, remote_from_json, remote_to_json

PHASES = ("product_data", "variants", "images")
"""Jumpseller's phases (seed 000), in the order a batch runs them."""

PhaseHandler = Callable[..., Awaitable[dict[str, Any]]]


class PhaseRunner:
    """Builds the three phase handlers over one catalog, ledger and clock, with one pacer per account."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ledger: Ledger,
        clock: Clock,
        timeout: float,
        retry: RetryPolicy,
    ) -> None:
        self.sessions = sessions
        self.ledger = ledger
        self.clock = clock
        self.timeout = timeout
        self.retry = retry
        self.marketplaces: dict[MarketplaceKind, Marketplace] = dict(MARKETPLACES)
        self._pacers: dict[int, Pacer] = {}

    def options(self, ctx: JobContext, account_id: int) -> ConnectorOptions:
        pacer = self._pacers.setdefault(account_id, Pacer(self.clock))
        return ConnectorOptions(_holding_readings(ctx), self.clock, self.timeout, self.retry, pacer)

    def handler(self, phase: str) -> PhaseHandler:
        async def run_phase(
            ctx: JobContext, account_id: int, shipment_id: int, products: list[int], remote: dict[str, Any]
        ) -> dict[str, Any]:
            return await self.run(ctx, phase, account_id, shipment_id, products, remote)

        run_phase.__name__ = f"publish_{phase}"
        run_phase.__doc__ = f"The {phase} phase for one batch of products on one account."
        return run_phase

    async def run(
        self,
        ctx: JobContext,
        phase: str,
        account_id: int,
        shipment_id: int,
        products: list[int],
        remote: dict[str, Any],
    ) -> dict[str, Any]:
        """Publish `phase` for `products`; returns the remote ids of those that went through."""
        account = await asyncio.to_thread(catalog_io.load_account, self.sessions, account_id)
        listings = await asyncio.to_thread(catalog_io.load_listings, self.sessions, products)
        market = self.marketplaces[MarketplaceKind(account.kind)]
        done: dict[str, dict[str, Any]] = {}
        async with market.connect(account, self.options(ctx, account_id)) as connector:
            known = await market.find(connector, list(listings.values())) if phase == "product_data" else {}
            for product_id in products:
                listing = listings.get(product_id)
                if listing is None:
                    continue  # deleted since it was shipped: nothing left to publish
                ctx.check()
                try:
                    previous = known.get(listing.sku) if phase == "product_data" else None
                    if phase != "product_data":
                        previous = remote_from_json(remote[str(product_id)])
                    result = await _call(connector, phase, listing, previous)
                except CredentialsRejected:
                    raise
                except Unrecoverable as e:
                    ctx.bag_error("rejected", f"{phase}: {e}", item=listing.sku)
                    await self._settle(shipment_id, {product_id}, error=str(e))
                    continue
                done[str(product_id)] = remote_to_json(result)
        if phase == PHASES[-1]:
            await self._settle(shipment_id, {int(pid) for pid in done})
        return {"remote": done}

    async def _settle(self, shipment_id: int, product_ids: set[int], error: str | None = None) -> None:
        """Record the outcome in the ledger, by the versions the shipment bound for these products."""
        if not product_ids:
            return
        shipment = await asyncio.to_thread(self.ledger.shipment, shipment_id)
        versions = [item.version_id for item in shipment.items if item.product_id in product_ids]
        if error is None:
            await asyncio.to_thread(self.ledger.mark_delivered, shipment_id, *versions)
        else:
            for version_id in versions:
                await asyncio.to_thread(self.ledger.mark_failed, shipment_id, version_id, error)


def _holding_readings(ctx: JobContext) -> RateLimitHook:
    """Feed the account's limiter only the readings that hold its jobs back: window empty, or refused.

    Phase job types set no rate of their own, so a reading with calls left
    changes nothing in the engine; skipping it saves a backend round trip per
    request (a Redis script call on the Redis backend).
    """

    async def feed(info: RateLimitInfo) -> None:
        if info.retry_after is not None or (info.remaining is not None and info.remaining < 1):
            await ctx.feed_limiter(
                remaining=info.remaining, reset_at=info.reset_at, retry_after=info.retry_after
            )

    return feed


async def _call(
    connector: Connector, phase: str, listing: Listing, remote: RemoteProduct | None
) -> RemoteProduct:
    if phase == "product_data":
        return await connector.create_or_update_product(listing, remote)
    assert remote is not None, "later phases run only for products the product_data phase placed"
    if phase == "variants":
        return await connector.upsert_variants(listing, remote)
    return await connector.add_images(listing, remote)
