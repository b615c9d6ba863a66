"""What the publish pipeline needs to know per marketplace kind, and the catalog-to-connector glue.

The pipeline's jobs stay marketplace-agnostic: a `Marketplace` says whether
the API wants small chunks (Jumpseller's per-second window, as in seed 000) or
takes products in bulk, builds the connector from an account (credentials
resolved from its `credentials_ref` where the job runs, never from a payload)
and finds products the marketplace already holds.

Finding by SKU is what makes a retried or repeated `product_data` phase an
update instead of a second product: the marketplace is the only record of
what a create that answered late, or a previous campaign, already made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conveyor import Clock
from conveyor.commerce.catalog import MarketplaceAccount, MarketplaceKind, Product
from conveyor.commerce.connectors import (
    Connector,
    Image,
    JumpsellerConnector,
    Listing,
    RateLimitHook,
    RemoteProduct,
    ShopifyConnector,
    Variant,
)
from conveyor.commerce.secrets import resolve_credentials

Finder = Callable[[Connector, list[Listing]], Awaitable[dict[str, RemoteProduct]]]
Connect = Callable[[MarketplaceAccount, RateLimitHook, Clock, float], Connector]


@dataclass(frozen=True)
class Marketplace:
    chunking: bool
    """True: 5 products per publish job (the API's windows are small); False: one publish job per account."""
    connect: Connect
    find: Finder
    """SKU -> what the marketplace already holds, for the given listings."""


def listing_of(product: Product) -> Listing:
    """The connector's view of a catalog product; a variant without a price takes the product's."""
    return Listing(
        sku=product.sku,
        name=product.name,
        price=product.price,
        stock=product.stock,
        description=product.description,
        active=str(product.status) != "archived",
        variants=tuple(
            Variant(v.sku, v.price if v.price is not None else product.price, v.stock, dict(v.options))
            for v in product.variants
        ),
        images=tuple(Image(i.url) for i in product.images),
    )


def remote_to_json(remote: RemoteProduct) -> dict[str, Any]:
    return {
        "product_id": remote.product_id,
        "variant_ids": dict(remote.variant_ids),
        "image_ids": dict(remote.image_ids),
        "listing_id": remote.listing_id,
    }


def remote_from_json(data: Mapping[str, Any]) -> RemoteProduct:
    return RemoteProduct(
        product_id=str(data["product_id"]),
        variant_ids=dict(data.get("variant_ids") or {}),
        image_ids=dict(data.get("image_ids") or {}),
        listing_id=data.get("listing_id"),
    )


def _connect_jumpseller(
    account: MarketplaceAccount, hook: RateLimitHook, clock: Clock, timeout: float
) -> Connector:
    credentials = resolve_credentials(account.credentials_ref)
    base_url = account.settings.get("base_url")
    extra: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return JumpsellerConnector(credentials, on_rate_limit=hook, clock=clock, timeout=timeout, **extra)


def _connect_shopify(
    account: MarketplaceAccount, hook: RateLimitHook, clock: Clock, timeout: float
) -> Connector:
    credentials = resolve_credentials(account.credentials_ref)
    shop_url = str(account.settings["shop_url"])
    return ShopifyConnector(credentials, shop_url=shop_url, on_rate_limit=hook, clock=clock, timeout=timeout)


async def _find_jumpseller(connector: Connector, listings: list[Listing]) -> dict[str, RemoteProduct]:
    """One search per SKU: Jumpseller matches name or SKU by substring, so keep exact SKU matches only."""
    found: dict[str, RemoteProduct] = {}
    for listing in listings:
        response = await connector.request("GET", "/products/search.json", params={"query": listing.sku})
        ids = sorted(e["product"]["id"] for e in response.json() if e["product"].get("sku") == listing.sku)
        if ids:
            found[listing.sku] = RemoteProduct(product_id=str(ids[0]))
    return found


SHOPIFY_PAGE = 250


async def _find_shopify(connector: Connector, listings: list[Listing]) -> dict[str, RemoteProduct]:
    """Shopify keeps SKUs on variants: a product is ours if one of its variants has a SKU of the listing.

    The REST product list is read page by page (cursor in the Link header),
    because the Admin API has no exact search by variant SKU for products.
    """
    wanted = {sku: listing.sku for listing in listings for sku in _skus(listing)}
    found: dict[str, RemoteProduct] = {}
    params: dict[str, Any] = {"limit": SHOPIFY_PAGE}
    while True:
        response = await connector.request("GET", "/products.json", params=params)
        for product in response.json()["products"]:
            for variant in product["variants"]:
                owner = wanted.get(variant.get("sku") or "")
                if owner is not None and owner not in found:
                    found[owner] = RemoteProduct(product_id=product["admin_graphql_api_id"])
        cursor = response.links.get("next", {}).get("url")
        if not cursor:
            return found
        params = {"limit": SHOPIFY_PAGE, "page_info": _query_value(cursor, "page_info")}


def _skus(listing: Listing) -> Iterable[str]:
    yield listing.sku
    yield from (v.sku for v in listing.variants)


def _query_value(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


MARKETPLACES: dict[MarketplaceKind, Marketplace] = {
    MarketplaceKind.JUMPSELLER: Marketplace(
        chunking=True, connect=_connect_jumpseller, find=_find_jumpseller
    ),
    MarketplaceKind.SHOPIFY: Marketplace(chunking=False, connect=_connect_shopify, find=_find_shopify),
}
"""The kinds campaigns can publish to; Amazon and eBay connectors exist but are not wired in yet."""
