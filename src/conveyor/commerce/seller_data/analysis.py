"""The figures a seller sees per account: sales, units and revenue per SKU, and how long stock lasts.

Only orders that count as sales are summed: cancelled orders sold nothing, and
pending ones carry no prices yet. Amazon's `ItemPrice` is already the line
total (unit price times quantity). Stock cover is fulfillable units divided by
the average units sold per day over the window; a SKU that sold nothing has
no cover figure (null) rather than an infinite one, so the JSON stays plain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

NOT_SALES = frozenset({"Canceled", "Pending", "PendingAvailability"})


@dataclass
class _SkuFigures:
    orders: set[str] = field(default_factory=set)
    units: int = 0
    revenue: Decimal = Decimal(0)
    stock: int = 0


def is_sale(order: Mapping[str, Any]) -> bool:
    return order.get("OrderStatus") not in NOT_SALES


def analyse(
    orders: Iterable[Mapping[str, Any]],
    items: Mapping[str, Iterable[Mapping[str, Any]]],
    inventory: Iterable[Mapping[str, Any]],
    *,
    window_days: int,
) -> dict[str, Any]:
    """Per-SKU and total figures from one account's orders (with their items) and inventory summaries."""
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, got {window_days}")
    skus: dict[str, _SkuFigures] = {}
    sales: set[str] = set()
    currency: str | None = None
    for order in orders:
        if not is_sale(order):
            continue
        order_id = str(order["AmazonOrderId"])
        sales.add(order_id)
        for line in items.get(order_id, ()):
            figures = skus.setdefault(str(line["SellerSKU"]), _SkuFigures())
            figures.orders.add(order_id)
            figures.units += int(line.get("QuantityOrdered", 0))
            price = line.get("ItemPrice") or {}
            figures.revenue += Decimal(str(price.get("Amount", "0")))
            currency = currency or price.get("CurrencyCode")
    for summary in inventory:
        details = summary.get("inventoryDetails") or {}
        stock = int(details.get("fulfillableQuantity", summary.get("totalQuantity", 0)))
        skus.setdefault(str(summary["sellerSku"]), _SkuFigures()).stock = stock
    per_sku = {sku: _sku_json(figures, window_days) for sku, figures in sorted(skus.items())}
    return {
        "window_days": window_days,
        "currency": currency,
        "orders": len(sales),
        "units": sum(f.units for f in skus.values()),
        "revenue": str(sum((f.revenue for f in skus.values()), Decimal(0))),
        "stock": sum(f.stock for f in skus.values()),
        "skus": per_sku,
    }


def _sku_json(figures: _SkuFigures, window_days: int) -> dict[str, Any]:
    per_day = figures.units / window_days
    return {
        "orders": len(figures.orders),
        "units": figures.units,
        "revenue": str(figures.revenue),
        "stock": figures.stock,
        "units_per_day": round(per_day, 3),
        "stock_cover_days": round(figures.stock / per_day, 1) if figures.units else None,
    }
