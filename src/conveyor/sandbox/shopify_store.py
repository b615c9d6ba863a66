"""The Shopify simulator's catalog, shared by its REST and GraphQL faces.

Products are kept in the REST resource shape (`body_html`, `option1..3`,
prices as "10.00" strings); the GraphQL face renders the same records as
`Product` / `ProductVariant` / `MediaImage` objects with `gid://` ids, so a
product written through one face reads back identically through the other.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .graphql import Connection

MAX_OPTIONS = 3


@dataclass
class ShopifyStore:
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    writes: dict[int, int] = field(default_factory=dict)
    """Successful writes per product id (REST write calls and `productSet` mutations)."""
    created: Counter[str] = field(default_factory=Counter)
    """Products created through `productSet`, per SKU of their variants: above 1 means a duplicate."""
    last_id: int = 8_000_000_000

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def with_sku(self, sku: str) -> list[dict[str, Any]]:
        """Products holding a variant with this SKU (Shopify keeps SKUs on variants)."""
        return [p for p in self.products.values() if any(v["sku"] == sku for v in p["variants"])]

    def wrote(self, product: dict[str, Any], now: str) -> None:
        product["updated_at"] = now
        self.writes[product["id"]] = self.writes.get(product["id"], 0) + 1

    def new_product(self, now: str) -> dict[str, Any]:
        pid = self.next_id()
        return {
            "id": pid,
            "title": "",
            "body_html": "",
            "vendor": "",
            "product_type": "",
            "handle": "",
            "status": "active",
            "tags": "",
            "created_at": now,
            "updated_at": now,
            "published_at": now,
            "options": [],
            "variants": [],
            "images": [],
        }

    def default_variant(self, product: dict[str, Any], price: str = "0.00", sku: str = "") -> None:
        """What Shopify gives a product created without options: one `Default Title` variant."""
        product["options"] = [self.option(product, "Title", 1, ["Default Title"])]
        product["variants"] = [self.variant(product, ["Default Title"], price=price, sku=sku)]

    def option(self, product: dict[str, Any], name: str, position: int, values: list[str]) -> dict[str, Any]:
        old = next((o for o in product["options"] if o["name"] == name), None)
        oid = old["id"] if old else self.next_id()
        return {"id": oid, "product_id": product["id"], "name": name, "position": position, "values": values}

    def variant(self, product: dict[str, Any], values: list[str], **fields: Any) -> dict[str, Any]:
        variant: dict[str, Any] = {
            "id": fields.pop("id", None) or self.next_id(),
            "product_id": product["id"],
            "title": " / ".join(values),
            "price": "0.00",
            "sku": "",
            "barcode": None,
            "compare_at_price": None,
            "position": len(product["variants"]) + 1,
        }
        for index in range(MAX_OPTIONS):
            variant[f"option{index + 1}"] = values[index] if index < len(values) else None
        variant.update(fields)
        return variant

    def image(self, product: dict[str, Any], src: str, position: int, alt: str | None) -> dict[str, Any]:
        old = next((i for i in product["images"] if i["src"] == src), None)
        iid = old["id"] if old else self.next_id()
        return {"id": iid, "product_id": product["id"], "position": position, "src": src, "alt": alt}


def gid(kind: str, rid: int) -> str:
    return f"gid://shopify/{kind}/{rid}"


def parse_gid(value: Any, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def money(value: Any) -> str | None:
    """Shopify's price string ("10.00"), or None when the value is not a non-negative amount."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return f"{amount:.2f}" if amount.is_finite() and amount >= 0 else None


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def handle_of(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def rest_view(product: dict[str, Any]) -> dict[str, Any]:
    """A product as the REST resource returns it, with `admin_graphql_api_id` on every record."""
    out = dict(product)
    out["admin_graphql_api_id"] = gid("Product", product["id"])
    out["variants"] = [
        {**v, "admin_graphql_api_id": gid("ProductVariant", v["id"])} for v in product["variants"]
    ]
    out["images"] = [{**i, "admin_graphql_api_id": gid("ProductImage", i["id"])} for i in product["images"]]
    out["image"] = out["images"][0] if out["images"] else None
    return out


def graphql_view(product: dict[str, Any]) -> dict[str, Any]:
    options = product["options"]
    variants = [
        {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", v["id"]),
            "legacyResourceId": str(v["id"]),
            "title": v["title"],
            "sku": v["sku"],
            "price": v["price"],
            "compareAtPrice": v["compare_at_price"],
            "barcode": v["barcode"],
            "position": v["position"],
            "selectedOptions": [
                {"name": o["name"], "value": v[f"option{n}"]} for n, o in enumerate(options, start=1)
            ],
            "inventoryItem": {"sku": v["sku"]},
        }
        for v in product["variants"]
    ]
    media = [
        {
            "__typename": "MediaImage",
            "id": gid("MediaImage", i["id"]),
            "alt": i["alt"],
            "mediaContentType": "IMAGE",
            "status": "READY",
            "image": {"url": i["src"], "altText": i["alt"]},
            "preview": {"image": {"url": i["src"]}},
        }
        for i in product["images"]
    ]
    return {
        "__typename": "Product",
        "id": gid("Product", product["id"]),
        "legacyResourceId": str(product["id"]),
        "title": product["title"],
        "handle": product["handle"],
        "descriptionHtml": product["body_html"],
        "vendor": product["vendor"],
        "productType": product["product_type"],
        "status": product["status"].upper(),
        "tags": [t.strip() for t in product["tags"].split(",") if t.strip()],
        "createdAt": product["created_at"],
        "updatedAt": product["updated_at"],
        "options": [
            {
                "id": gid("ProductOption", o["id"]),
                "name": o["name"],
                "position": o["position"],
                "values": o["values"],
                "optionValues": [{"name": value} for value in o["values"]],
            }
            for o in options
        ],
        "variants": Connection(variants),
        "media": Connection(media),
        "variantsCount": {"count": len(variants), "precision": "EXACT"},
        "mediaCount": {"count": len(media), "precision": "EXACT"},
    }
