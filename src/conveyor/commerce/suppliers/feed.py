"""Reading the Promidata feed: the Import.txt index and the product files it lists.

The index is one `<file URL>|<hash>` line per product family; the supplier
code is the file's folder. The product file's fields are known from one
third-party integration only, so the models keep what the sync uses and
ignore the rest. The feed's profile URL is its only access control, so error
messages name a file by its supplier folder and name, never by its full URL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SUPPLIER_CODE = re.compile(r"^[A-Z]\d+$")
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class FeedError(Exception):
    """The feed could not be read even after retries (network, 5xx): the sync may succeed later."""


class BadFile(Exception):
    """One listed product file is missing or unreadable: skipped and reported, the sync goes on."""


@dataclass(frozen=True)
class IndexEntry:
    url: str
    hash: str
    supplier: str
    name: str
    """`<family SKU>.json`, what messages show instead of the URL."""


def parse_index(text: str) -> list[IndexEntry]:
    """Product file entries of Import.txt; blank lines and non-product lines (CAT.csv) are skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        url, sep, digest = line.rpartition("|")
        if not sep or not url:
            raise FeedError(f"Import.txt line {number} is not '<url>|<hash>'")
        folder, _, name = httpx.URL(url).path.rstrip("/").rpartition("/")
        supplier = folder.rpartition("/")[2]
        if not name.endswith(".json") or not SUPPLIER_CODE.match(supplier):
            continue
        entries.append(IndexEntry(url, digest, supplier, name))
    return entries


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class FeedImage(_Model):
    url: str = Field(alias="Url")


class FeedConfigurationField(_Model):
    name: str = Field(alias="ConfigurationName")
    value: str | None = Field(default=None, alias="ConfigurationValue")


class FeedDetails(_Model):
    name: str = Field(default="", alias="Name")
    description: str | None = Field(default=None, alias="Description")
    image: FeedImage | None = Field(default=None, alias="Image")
    gallery: list[FeedImage] = Field(default_factory=list, alias="MediaGalleryImages")
    configuration: list[FeedConfigurationField] = Field(default_factory=list, alias="ConfigurationFields")


class FeedPriceTier(_Model):
    price: float = Field(alias="Price")
    quantity: int = Field(default=1, alias="Quantity")


class FeedRegionPrices(_Model):
    selling: list[FeedPriceTier] = Field(default_factory=list, alias="RecommendedSellingPrice")


class FeedGeneral(_Model):
    category: str | None = Field(default=None, alias="Category")


class FeedItem(_Model):
    """A variant (`ChildProducts[]`) or the family's parent record: the same keys on both."""

    sku: str = Field(alias="Sku", min_length=1)
    a_number: str | None = Field(default=None, alias="ANumber")
    supplier_sku: str | None = Field(default=None, alias="SupplierSku")
    ean: str | None = Field(default=None, alias="Ean")
    details: dict[str, FeedDetails] = Field(default_factory=dict, alias="ProductDetails")
    general: FeedGeneral | None = Field(default=None, alias="NonLanguageDependedProductDetails")
    prices: dict[str, FeedRegionPrices] = Field(default_factory=dict, alias="ProductPriceCountryBased")


class FeedProduct(FeedItem):
    """One product file: the parent record and its variants."""

    children: list[FeedItem] = Field(default_factory=list, alias="ChildProducts")


def parse_product(entry: IndexEntry, body: bytes) -> FeedProduct:
    try:
        return FeedProduct.model_validate_json(body)
    except ValidationError as e:
        problem = e.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "file"
        raise BadFile(f"{entry.supplier}/{entry.name}: {where}: {problem['msg']}") from None


class FeedClient:
    """Downloads over one httpx client, a bounded number at a time, retrying transient failures."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        concurrency: int = 8,
        attempts: int = 3,
        retry_delay: float = 0.5,
    ) -> None:
        if concurrency < 1 or attempts < 1 or retry_delay < 0:
            raise ValueError("concurrency and attempts must be >= 1, retry_delay >= 0")
        self._client = client
        self._gate = asyncio.Semaphore(concurrency)
        self._attempts = attempts
        self._retry_delay = retry_delay

    async def get(self, url: str, label: str) -> httpx.Response:
        """GET with retries on network errors and 429/5xx; a 4xx raises `BadFile` at once."""
        problem = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._retry_delay * 2 ** (attempt - 1))
            try:
                async with self._gate:
                    response = await self._client.get(url)
            except httpx.TransportError as e:
                problem = type(e).__name__
                continue
            if response.status_code in RETRIED_STATUSES:
                problem = f"HTTP {response.status_code}"
                continue
            if response.is_error:
                raise BadFile(f"{label}: HTTP {response.status_code}")
            return response
        raise FeedError(f"{label}: {problem} after {self._attempts} attempt(s)")

    async def index(self, feed_url: str) -> list[IndexEntry]:
        response = await self.get(f"{feed_url.rstrip('/')}/Import/Import.txt", "Import/Import.txt")
        return parse_index(response.text)

    async def products(
        self, entries: Sequence[IndexEntry]
    ) -> tuple[list[tuple[IndexEntry, FeedProduct]], list[BadFile]]:
        """Every listed file, fetched concurrently; unreadable files come back apart, as errors."""

        async def one(entry: IndexEntry) -> tuple[IndexEntry, FeedProduct] | BadFile:
            try:
                response = await self.get(entry.url, f"{entry.supplier}/{entry.name}")
                return entry, parse_product(entry, response.content)
            except BadFile as e:
                return e

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(entry)) for entry in entries]
        except* FeedError as failed:  # the first lasting failure stops the others
            raise failed.exceptions[0] from None
        results = [task.result() for task in tasks]
        good = [r for r in results if not isinstance(r, BadFile)]
        return good, [r for r in results if isinstance(r, BadFile)]
