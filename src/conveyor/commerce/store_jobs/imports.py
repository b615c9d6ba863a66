"""Catalog imports from Shopify and Akeneo: read every page, write each page into the catalog.

Each page is written in its own transaction as it arrives, so a failure on
page 7 keeps pages 1 to 6 and the retry rewrites them in place (upserts by SKU
or code). Records the catalog cannot hold are put in the job's error bag and
skipped; the job still succeeds with the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from conveyor import Clock, JobContext
from conveyor.commerce.catalog import MarketplaceKind
from conveyor.commerce.connectors import key_limiter_hook
from conveyor.commerce.connectors.akeneo import AkeneoConnector
from conveyor.commerce.connectors.shopify_read import ShopifyCatalogReader

from . import catalog_writes as writes
from .connections import (
    RefusalWatch,
    akeneo_connector,
    credentials_checked,
    load_account,
    load_akeneo,
    shopify_reader,
)

Pages = AsyncIterator[list[dict[str, Any]]]


class Importer:
    """Runs the Shopify and Akeneo import jobs; connectors are opened per job, never shared."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, timeout: float, page_size: int) -> None:
        self._sessions = sessions
        self._clock = clock
        self._timeout = timeout
        self._page_size = page_size

    async def shopify_products(self, ctx: JobContext, store_id: int, account_id: int) -> dict[str, int]:
        async with self._shopify(ctx, store_id, account_id) as reader:
            total = await reader.count_products()
            return await self._products(ctx, store_id, reader.products(), writes.shopify_to_draft, total)

    async def shopify_collections(self, ctx: JobContext, store_id: int, account_id: int) -> dict[str, int]:
        async with self._shopify(ctx, store_id, account_id) as reader:
            pages = reader.custom_collections()
            return await self._categories(
                ctx, store_id, "shopify", pages, writes.collection_to_draft, "collections"
            )

    async def akeneo_products(self, ctx: JobContext, store_id: int, connection_id: int) -> dict[str, int]:
        async with self._akeneo(ctx, store_id, connection_id) as pim:
            total = await pim.count_products()
            return await self._products(ctx, store_id, pim.products(), writes.akeneo_to_draft, total)

    async def akeneo_categories(self, ctx: JobContext, store_id: int, connection_id: int) -> dict[str, int]:
        async with self._akeneo(ctx, store_id, connection_id) as pim:
            pages = pim.categories()
            return await self._categories(
                ctx, store_id, "akeneo", pages, writes.category_to_draft, "categories"
            )

    @asynccontextmanager
    async def _shopify(
        self, ctx: JobContext, store_id: int, account_id: int
    ) -> AsyncIterator[ShopifyCatalogReader]:
        """The store's Shopify reader for one job; a refusal of its credentials ends the job."""
        account = await asyncio.to_thread(
            load_account, self._sessions, store_id, account_id, (MarketplaceKind.SHOPIFY,)
        )
        watch = RefusalWatch()
        reader = shopify_reader(
            account, key_limiter_hook(ctx), self._clock, self._timeout, self._page_size, watch
        )
        async with reader, credentials_checked(f"Shopify account {account_id}", watch):
            yield reader

    @asynccontextmanager
    async def _akeneo(
        self, ctx: JobContext, store_id: int, connection_id: int
    ) -> AsyncIterator[AkeneoConnector]:
        """The store's Akeneo connector for one job; a refusal of its credentials ends the job."""
        connection = await asyncio.to_thread(load_akeneo, self._sessions, store_id, connection_id)
        watch = RefusalWatch()
        pim = akeneo_connector(
            connection, key_limiter_hook(ctx), self._clock, self._timeout, self._page_size, watch
        )
        async with pim, credentials_checked(f"Akeneo connection {connection_id}", watch):
            yield pim

    async def _products(
        self,
        ctx: JobContext,
        store_id: int,
        pages: Pages,
        to_draft: Callable[[dict[str, Any]], writes.ProductDraft],
        total: int,
    ) -> dict[str, int]:
        seen = imported = 0
        ctx.progress(0, f"Importing products: 0/{total}", step="products")
        async for page in pages:
            drafts = []
            for record in page:
                try:
                    drafts.append(to_draft(record))
                except writes.InvalidRecord as e:
                    ctx.bag_error(
                        "validation", str(e), item=str(record.get("identifier") or record.get("id"))
                    )
            imported += await asyncio.to_thread(writes.upsert_products, self._sessions, store_id, drafts)
            seen += len(page)
            ctx.progress(
                None, f"Importing products: {seen}/{max(total, seen)}", done=seen, total=max(total, seen)
            )
        return {"products": imported, "skipped": seen - imported}

    async def _categories(
        self,
        ctx: JobContext,
        store_id: int,
        source: str,
        pages: Pages,
        to_draft: Callable[[dict[str, Any]], writes.CategoryDraft],
        label: str,
    ) -> dict[str, int]:
        imported = 0
        async for page in pages:
            drafts = [to_draft(record) for record in page]
            imported += await asyncio.to_thread(
                writes.upsert_categories, self._sessions, store_id, source, drafts
            )
            ctx.progress(None, f"Importing {label}: {imported}", step=label)
        return {label: imported}
