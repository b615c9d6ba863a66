"""Fetching one account's raw data from its region's SP-API endpoint: orders, their items, inventory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor import Clock, ConfigurationError
from conveyor.commerce.connectors.seller_api import DEFAULT_TOKEN_URL, REGION_ENDPOINTS, SellerApiClient
from conveyor.commerce.secrets import resolve_credentials

from .analysis import is_sale
from .store import AccountRef


@dataclass(frozen=True)
class Endpoints:
    """Where each region's SP-API and the LWA token service live (the real hosts unless told otherwise)."""

    regions: Mapping[str, str] = field(default_factory=lambda: dict(REGION_ENDPOINTS))
    token_url: str = DEFAULT_TOKEN_URL

    def __post_init__(self) -> None:
        missing = sorted({"NA", "EU", "FE"} - set(self.regions))
        if missing:
            raise ConfigurationError(f"SP-API base URLs missing for region(s) {', '.join(missing)}")


@dataclass(frozen=True)
class AccountData:
    orders: list[dict[str, Any]]
    items: dict[str, list[dict[str, Any]]]
    """AmazonOrderId -> order items, for the orders that count as sales."""
    inventory: list[dict[str, Any]]


async def fetch_account(
    account: AccountRef, *, endpoints: Endpoints, since: float, clock: Clock, timeout: float
) -> AccountData:
    """Everything one analysis needs; credentials are resolved here, from the account's reference."""
    credentials = resolve_credentials(account.credentials_ref)
    async with SellerApiClient(
        credentials,
        marketplace_id=account.marketplace_id,
        base_url=endpoints.regions[account.region.value],
        token_url=endpoints.token_url,
        timeout=timeout,
        clock=clock,
    ) as client:
        orders = await client.orders(since)
        items = {
            str(o["AmazonOrderId"]): await client.order_items(str(o["AmazonOrderId"]))
            for o in orders
            if is_sale(o)
        }
        inventory = await client.inventory()
    return AccountData(orders, items, inventory)
