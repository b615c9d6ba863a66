"""The three units of a supplier sync, usable from a job or inline: plan, write a family, store a picture.

The jobs (`jobs.py`) and the inline mode (`service.py`) call the same three
methods, so queued and direct runs cannot drift apart; only the fan-out
differs (flow children vs. plain loops).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import certifi
import httpx

from .feed import FeedClient
from .grouping import Family, FamilyKey, group_families
from .storage import MediaStorage, storage_key
from .store import ImageSlot, StoredMedia, SupplierRef, SupplierStore

Report = Callable[[float, str, str], None]
"""`report(percent, step, message)`: where a stage says how far the sync is."""

STEPS = {
    "parsing_index": 10.0,
    "fetching_variants": 30.0,
    "grouping_families": 50.0,
    "checking_hashes": 60.0,
    "enqueueing_families": 70.0,
    "done": 100.0,
}
"""The supplier job's progress steps and the percent each one reports."""


@dataclass(frozen=True)
class SyncSettings:
    feed_url: str
    family_key: FamilyKey = FamilyKey.SKU
    language: str = "en"
    price_region: str | None = "GERMANY"
    fetch_concurrency: int = 8
    fetch_attempts: int = 3
    retry_delay: float = 0.5
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.feed_url.startswith(("http://", "https://")):
            raise ValueError("feed_url must be the feed's http(s) profile URL")
        if self.fetch_concurrency < 1 or self.fetch_attempts < 1:
            raise ValueError("fetch_concurrency and fetch_attempts must be >= 1")
        if self.timeout <= 0 or self.retry_delay < 0:
            raise ValueError("timeout must be > 0 and retry_delay >= 0")


@dataclass
class Plan:
    """What a supplier's sync must do: the families whose content changed since the last sync."""

    supplier: SupplierRef
    families: int = 0
    changed: list[Family] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Files that were listed but unreadable: skipped this time and reported."""

    @property
    def skipped(self) -> int:
        return self.families - len(self.changed)


@dataclass(frozen=True)
class FamilyWrite:
    product_id: int
    to_store: list[ImageSlot]
    """Pictures not downloaded before: one image job each."""


@dataclass(frozen=True)
class ImageOutcome:
    downloaded: bool
    written: bool
    content_hash: str


class SupplierPipeline:
    def __init__(self, settings: SyncSettings, store: SupplierStore, storage: MediaStorage) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self._tls = ssl.create_default_context(cafile=certifi.where())
        self._shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> httpx.AsyncClient:
        # One TLS context for every client: building one per image job would reload the CA bundle each time.
        return httpx.AsyncClient(timeout=self.settings.timeout, follow_redirects=True, verify=self._tls)

    def shared_client(self) -> httpx.AsyncClient:
        """One pooled client per event loop, for the many short image jobs (kept-alive connections)."""
        loop = asyncio.get_running_loop()
        client = self._shared.get(loop)
        if client is None or client.is_closed:
            client = self._shared[loop] = self.client()
        return client

    async def aclose(self) -> None:
        """Close this event loop's shared client; call it when the process stops serving image jobs."""
        client = self._shared.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def feed(self, client: httpx.AsyncClient) -> FeedClient:
        """Downloads through `client`, at most `fetch_concurrency` at a time across this FeedClient."""
        s = self.settings
        return FeedClient(
            client, concurrency=s.fetch_concurrency, attempts=s.fetch_attempts, retry_delay=s.retry_delay
        )

    async def plan(self, supplier: SupplierRef, report: Report) -> Plan:
        """Index → variant files → families → one batch hash check; raises `FeedError` if the feed is down."""
        plan = Plan(supplier)
        async with self.client() as client:
            feed = self.feed(client)
            entries = [e for e in await feed.index(self.settings.feed_url) if e.supplier == supplier.code]
            report(STEPS["parsing_index"], "parsing_index", f"{len(entries)} product files listed")
            products, bad = await feed.products(entries)
        report(
            STEPS["fetching_variants"], "fetching_variants", f"fetched {len(products)}/{len(entries)} files"
        )
        families, unkeyed = group_families(
            products,
            key=self.settings.family_key,
            language=self.settings.language,
            region=self.settings.price_region,
        )
        plan.problems = [str(e) for e in [*bad, *unkeyed]]
        plan.families = len(families)
        report(STEPS["grouping_families"], "grouping_families", f"{len(families)} product families")
        synced = await asyncio.to_thread(self.store.synced_hashes, supplier.id, [f.key for f in families])
        plan.changed = [f for f in families if synced.get(f.key) != f.content_hash()]
        report(
            STEPS["checking_hashes"],
            "checking_hashes",
            f"{len(plan.changed)} changed, {plan.skipped} unchanged",
        )
        return plan

    async def write_family(self, supplier: SupplierRef, family: Family) -> FamilyWrite:
        product_id, slots = await asyncio.to_thread(self.store.write_family, supplier, family)
        return FamilyWrite(product_id, [slot for slot in slots if slot.known is None])

    async def finish_family(self, supplier: SupplierRef, family: Family, product_id: int) -> None:
        await asyncio.to_thread(self.store.record_family, supplier.id, family, product_id)

    async def store_image(
        self, feed: FeedClient, supplier_id: int, product_id: int, slot: ImageSlot
    ) -> ImageOutcome:
        """Download unless already recorded; write unless the same bytes are stored; record the media."""
        media = await asyncio.to_thread(self.store.media, supplier_id, slot.url)
        if media is not None:
            await asyncio.to_thread(
                self.store.fill_slot,
                product_id=product_id,
                position=slot.position,
                url=slot.url,
                content_hash=media.content_hash,
            )
            return ImageOutcome(downloaded=False, written=False, content_hash=media.content_hash)
        response = await feed.get(slot.url, f"picture {slot.position} of product {product_id}")
        data = response.content
        content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0]
        digest = hashlib.sha256(data).hexdigest()
        media = StoredMedia(digest, storage_key(digest, content_type))
        written = not await asyncio.to_thread(self.storage.exists, media.storage_key)
        if written:
            await asyncio.to_thread(self.storage.put, media.storage_key, data, content_type)
        await asyncio.to_thread(
            self.store.record_media,
            supplier_id=supplier_id,
            url=slot.url,
            media=media,
            content_type=content_type,
            size=len(data),
            product_id=product_id,
            position=slot.position,
        )
        return ImageOutcome(downloaded=True, written=written, content_hash=digest)
