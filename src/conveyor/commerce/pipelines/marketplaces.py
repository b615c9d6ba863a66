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

from conveyor import Clock
from conveyor.commerce.catalog import MarketplaceAccount, MarketplaceKind, Product
from conveyor.commerce.connectors import (
    Connector,
    Image,
    JumpsellerConnector,
    Listing,
    Pacer,
    RateLimitHook,
    RemoteProduct,
    RetryPolicy,
    ShopifyConnector,
    Variant,
)
from conveyor.commerce.secrets import resolve_credentials

Finder = Callable[[Connector, list[Listing]], Awaitable[dict[str, RemoteProduct]]]


@dataclass(frozen=True)
class ConnectorOptions:
    """How a phase job's connector behaves; the pacer is shared by every job of the account in a process."""

    on_rate_limit: RateLimitHook
    clock: Clock
    timeout: float
    retry: RetryPolicy
    pacer: Pacer


Connect = Callable[[MarketplaceAccount, ConnectorOptions], Connector]


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


def _connect_jumpseller(account: MarketplaceAccount, options: ConnectorOptions) -> Connector:
    credentials = resolve_credentials(account.credentials_ref)
    base_url = account.settings.get("base_url")
    extra: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return JumpsellerConnector(credentials, **_options(options), **extra)


def _connect_shopify(account: MarketplaceAccount, options: ConnectorOptions) -> Connector:
    credentials = resolve_credentials(account.credentials_ref)
    return ShopifyConnector(credentials, shop_url=str(account.settings["shop_url"]), **_options(options))


def _options(options: ConnectorOptions) -> dict[str, Any]:
    return {
        "on_rate_limit": options.on_rate_limit,
        "clock": options.clock,
        "timeout": options.timeout,
        "retry": options.retry,
        "pacer": options.pacer,
    }


async def _find_jumpseller(connector: Connector, listings: list[Listing]) -> dict[str, RemoteProduct]:
    """One search per SKU: Jumpseller matches name or SKU by substring, so keep exact SKU matches only."""
    found: dict[str, RemoteProduct] = {}
    for listing in listings:
        response = await connector.request("GET", "/products/search.json", params={"query": listing.sku})
        ids = sorted(e["product"]["id"] for e in response.json() if e["product"].get("sku") == listing.sku)
        if ids:
            found[listing.sku] = RemoteProduct(product_id=str(ids[0]))
    return found


SHOPIFY_SKUS_PER_SEARCH = 100
"""A search returns at most `first` variants (Shopify caps it at 250); 100 keeps its cost at 202 points."""
SHOPIFY_FIND = """
query conveyorFindBySku($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) { nodes { sku product { id } } }
}
"""


async def _find_shopify(connector: Connector, listings: list[Listing]) -> dict[str, RemoteProduct]:
    """Shopify keeps SKUs on variants: one search for every SKU of the batch finds their products.

    A product is ours when one of its variants carries the listing's SKU or
    one of its variants' SKUs; the search is a read, so it may be repeated.
    """
    owners = {sku: listing.sku for listing in listings for sku in _skus(listing)}
    skus = list(owners)
    found: dict[str, RemoteProduct] = {}
    for start in range(0, len(skus), SHOPIFY_SKUS_PER_SEARCH):
        terms = skus[start : start + SHOPIFY_SKUS_PER_SEARCH]
        variables = {"query": " OR ".join(f'sku:"{sku}"' for sku in terms), "first": len(terms)}
        response = await connector.request(
            "POST", "/graphql.json", json={"query": SHOPIFY_FIND, "variables": variables}, idempotent=True
        )
        for node in response.json()["data"]["productVariants"]["nodes"]:
            owner = owners.get(node.get("sku") or "")
            if owner is not None and owner not in found:
                found[owner] = RemoteProduct(product_id=node["product"]["id"])
    return found


def _skus(listing: Listing) -> Iterable[str]:
    yield listing.sku
    yield from (v.sku for v in listing.variants)


MARKETPLACES: dict[MarketplaceKind, Marketplace] = {
    MarketplaceKind.JUMPSELLER: Marketplace(
        chunking=True, connect=_connect_jumpseller, find=_find_jumpseller
    ),
    MarketplaceKind.SHOPIFY: Marketplace(chunking=False, connect=_connect_shopify, find=_find_shopify),
}
"""The kinds campaigns can publish to; Amazon and eBay connectors exist but are not wired in yet."""
