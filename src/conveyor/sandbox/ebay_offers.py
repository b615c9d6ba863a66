"""The eBay simulator's offers: create, read, update, publish (one SKU or a whole item group).

Publishing is where eBay checks that a listing can go live, so the checks
live here: a positive price, a category, an existing merchant location, the
three listing policies, a title and (by default) at least one picture.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from .base import Reply, json_response

if TYPE_CHECKING:
    from .ebay import EbaySandbox

FORMATS = ("FIXED_PRICE", "AUCTION")
POLICIES = ("fulfillmentPolicyId", "paymentPolicyId", "returnPolicyId")
FIRST_LISTING_ID = 110_000_000_000


def ebay_error(
    error_id: int, message: str, *, domain: str = "API_INVENTORY", category: str = "REQUEST", **extra: Any
) -> dict[str, Any]:
    return {"errorId": error_id, "domain": domain, "category": category, "message": message, **extra}


def _user_error(what: str) -> dict[str, Any]:
    return ebay_error(25002, f"A user error has occurred. {what}", category="BUSINESS")


class EbayOffers:
    def __init__(self, sandbox: EbaySandbox) -> None:
        self.sandbox = sandbox

    def routes(self, app: FastAPI, root: str) -> None:
        app.add_api_route(f"{root}/offer", self.create_offer, methods=["POST"])
        app.add_api_route(f"{root}/offer", self.list_offers, methods=["GET"])
        app.add_api_route(
            f"{root}/offer/publish_by_inventory_item_group", self.publish_group, methods=["POST"]
        )
        app.add_api_route(root + "/offer/{offer_id}", self.get_offer, methods=["GET"])
        app.add_api_route(root + "/offer/{offer_id}", self.update_offer, methods=["PUT"])
        app.add_api_route(root + "/offer/{offer_id}/publish", self.publish_offer, methods=["POST"])

    async def create_offer(self, request: Request) -> Response:
        sb = self.sandbox
        sb.require_language(request)
        body = self._checked(await sb.read_json(request))
        for offer_id, offer in sb.store.offers.items():
            if all(offer[k] == body[k] for k in ("sku", "marketplaceId", "format")):
                parameters = [{"name": "offerId", "value": offer_id}]
                raise sb.invalid(_user_error("Offer entity already exists.") | {"parameters": parameters})
        offer_id = str(next(sb.ids))
        sb.store.offers[offer_id] = {**body, "offerId": offer_id, "status": "UNPUBLISHED"}
        sb.store.wrote(body["sku"])
        return json_response(201, {"offerId": offer_id, "warnings": []})

    async def list_offers(
        self, request: Request, sku: str = "", marketplace_id: str = "", format: str = "", limit: int = 25
    ) -> Response:
        if not sku:
            raise self.sandbox.invalid(ebay_error(25709, "Invalid value for sku."))
        offers = [
            o
            for o in self.sandbox.store.offers.values()
            if o["sku"] == sku and marketplace_id in ("", o["marketplaceId"]) and format in ("", o["format"])
        ]
        body = {"href": str(request.url), "limit": limit, "size": len(offers[:limit]), "total": len(offers)}
        return json_response(200, {**body, "offers": offers[:limit]})

    async def get_offer(self, offer_id: str) -> Response:
        return json_response(200, self._offer(offer_id))

    async def update_offer(self, offer_id: str, request: Request) -> Response:
        sb = self.sandbox
        sb.require_language(request)
        offer = self._offer(offer_id)
        body = self._checked(await sb.read_json(request), sku=offer["sku"])
        kept: dict[str, Any] = {k: offer[k] for k in ("offerId", "status", "listing") if k in offer}
        sb.store.offers[offer_id] = {**body, **kept}
        sb.store.wrote(offer["sku"])
        return Response(status_code=204)

    async def publish_offer(self, offer_id: str) -> Response:
        sb = self.sandbox
        offer = self._offer(offer_id)
        item = sb.store.items.get(offer["sku"], {})
        product = item.get("product") or {}
        problems = self._problems(offer) + self._content_problems(
            product.get("title"), product.get("imageUrls")
        )
        if not item:
            problems.append(ebay_error(25702, f"SKU {offer['sku']} is not available in the system"))
        if problems:
            raise sb.invalid(*problems)
        listing_id = self._list([offer], offer["sku"], None)
        return json_response(200, {"listingId": listing_id, "warnings": []})

    async def publish_group(self, request: Request) -> Response:
        sb = self.sandbox
        body = await sb.read_json(request)
        key = body.get("inventoryItemGroupKey") if isinstance(body, dict) else None
        marketplace = body.get("marketplaceId") if isinstance(body, dict) else None
        group = sb.store.groups.get(key) if isinstance(key, str) else None
        if group is None or not isinstance(marketplace, str):
            raise sb.invalid(ebay_error(25709, "Invalid value for inventoryItemGroupKey or marketplaceId."))
        problems = self._content_problems(group.get("title"), group.get("imageUrls"))
        offers = []
        for sku in group["variantSKUs"]:
            offer = next(
                (
                    o
                    for o in sb.store.offers.values()
                    if o["sku"] == sku and o["marketplaceId"] == marketplace
                ),
                None,
            )
            if offer is None or sku not in sb.store.items:
                problems.append(_user_error(f"No offer found for SKU {sku} in {marketplace}."))
            else:
                problems += self._problems(offer)
                offers.append(offer)
        if problems:
            raise sb.invalid(*problems)
        listing_id = self._list(offers, key, key)  # type: ignore[arg-type]
        return json_response(200, {"listingId": listing_id, "warnings": []})

    # -- helpers --------------------------------------------------------------------------------

    def _offer(self, offer_id: str) -> dict[str, Any]:
        if offer_id not in self.sandbox.store.offers:
            raise Reply(json_response(404, {"errors": [ebay_error(25713, "This Offer is not available.")]}))
        return self.sandbox.store.offers[offer_id]

    def _checked(self, body: Any, sku: str | None = None) -> dict[str, Any]:
        """The offer body if it is well formed (createOffer / updateOffer rules); raises otherwise."""
        sb = self.sandbox
        if not isinstance(body, dict):
            raise sb.invalid(ebay_error(25709, "Invalid value for the request body."))
        if sku is not None:
            body = {**body, "sku": sku}
        problems = [
            ebay_error(25709, f"Invalid value for {name}.")
            for name, ok in (
                ("sku", isinstance(body.get("sku"), str) and body["sku"]),
                ("marketplaceId", isinstance(body.get("marketplaceId"), str) and body["marketplaceId"]),
                ("format", body.get("format") in FORMATS),
            )
            if not ok
        ]
        if not problems and body["sku"] not in sb.store.items:
            problems.append(ebay_error(25702, f"SKU {body['sku']} is not available in the system"))
        if "pricingSummary" in body and _price(body) is None:
            problems.append(ebay_error(25003, "Invalid price."))
        if problems:
            raise sb.invalid(*problems)
        checked: dict[str, Any] = body
        return checked

    def _problems(self, offer: dict[str, Any]) -> list[dict[str, Any]]:
        problems = []
        if _price(offer) is None:
            problems.append(ebay_error(25003, "Invalid price."))
        if not offer.get("categoryId"):
            problems.append(_user_error("categoryId is missing."))
        if offer.get("merchantLocationKey") not in self.sandbox.store.locations:
            problems.append(_user_error("merchantLocationKey is missing or unknown."))
        policies = offer.get("listingPolicies") or {}
        problems += [_user_error(f"listingPolicies.{p} is missing.") for p in POLICIES if not policies.get(p)]
        return problems

    def _content_problems(self, title: Any, images: Any) -> list[dict[str, Any]]:
        problems = []
        if not (isinstance(title, str) and title):
            problems.append(_user_error("Title is required."))
        if self.sandbox.config.require_image and not images:
            problems.append(_user_error("At least 1 picture is required."))
        return problems

    def _list(self, offers: list[dict[str, Any]], written: str, group: str | None) -> str:
        """Publish (or revise) the listing these offers belong to; returns its listingId."""
        listings = self.sandbox.store.listings
        listing_id = offers[0].get("listing") or str(FIRST_LISTING_ID + len(listings) + 1)
        record = listings.setdefault(listing_id, {"publishCount": 0})
        record.update(
            skus=[o["sku"] for o in offers], offerIds=[o["offerId"] for o in offers], groupKey=group
        )
        record["publishCount"] += 1
        for offer in offers:
            offer.update(status="PUBLISHED", listing=listing_id)
        self.sandbox.store.wrote(written)
        return listing_id


def _price(offer: dict[str, Any]) -> Decimal | None:
    value = ((offer.get("pricingSummary") or {}).get("price") or {}).get("value")
    try:
        price = Decimal(str(value)) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        return None
    return price if price is not None and price.is_finite() and price > 0 else None
