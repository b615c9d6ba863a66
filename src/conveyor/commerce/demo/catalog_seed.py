"""The demo's catalog: three stores, their marketplace accounts, products and a campaign.

Acme Outdoor publishes a campaign and exports to Amazon and eBay with AI
titles; Northwind Home imports from Shopify, Akeneo and a supplier feed;
Blue Harbor has no AI credits left. Credentials never enter the catalog:
accounts name environment variables (`env:...`) the demo sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from conveyor.commerce import db
from conveyor.commerce.catalog import (
    Campaign,
    CampaignProduct,
    Image,
    MarketplaceAccount,
    MarketplaceKind,
    Product,
    Store,
    Variant,
)
from conveyor.commerce.seller_data.models import Region, SellerAccount, SellerUser
from conveyor.commerce.store_jobs import AkeneoConnection, UiLabel
from conveyor.sandbox.lwa import LwaAuthority
from conveyor.sandbox.seller_api import MARKETPLACES

NAMES = (
    "Blue Widget",
    "Oak Desk Lamp",
    "Linen Throw Pillow",
    "Ceramic Pour-Over Set",
    "Trail Running Shoe",
    "Merino Beanie",
    "Walnut Cutting Board",
    "Solar Garden Light",
)
INVALID = {"DEMO-NO-PRICE": "price", "DEMO-NO-STOCK": "stock"}
"""Two products the publish step must refuse, so the campaign ends partially published."""
UI_LABELS = {
    "cart.add": "Add to cart",
    "cart.empty": "Your cart is empty",
    "checkout.pay": "Pay now",
    "product.in_stock": "In stock",
    "product.out_of_stock": "Out of stock",
    "search.placeholder": "Search products",
}
EBAY_POLICIES = {
    "category_id": "52365",
    "merchant_location_key": "default",
    "fulfillment_policy_id": "F1",
    "payment_policy_id": "P1",
    "return_policy_id": "R1",
}


@dataclass(frozen=True)
class SeededCatalog:
    campaign_id: int
    acme: int
    northwind: int
    harbor: int
    accounts: dict[str, int]
    akeneo_connection: int
    export_products: list[int]
    harbor_products: list[int]


def seed_catalog(
    catalog_url: str, *, products: int, urls: dict[str, str], credentials: dict[str, str]
) -> SeededCatalog:
    """Create the demo stores in a fresh catalog; `urls` and `credentials` are by simulator name."""
    db.migrate(catalog_url)
    engine = db.create_engine_for(catalog_url)
    try:
        with db.session_factory(engine).begin() as session:
            return _seed(session, products, urls, credentials)
    finally:
        engine.dispose()


def _seed(
    session: Session, products: int, urls: dict[str, str], credentials: dict[str, str]
) -> SeededCatalog:
    def account(
        store: Store, kind: MarketplaceKind, name: str, settings: dict[str, Any]
    ) -> MarketplaceAccount:
        made = MarketplaceAccount(
            kind=kind, name=name, credentials_ref=f"env:{credentials[name]}", settings=settings
        )
        store.accounts.append(made)
        return made

    amazon_settings = {
        "base_url": urls["amazon"],
        "token_url": f"{urls['amazon']}/auth/o2/token",
        "seller_id": "A1SANDBOXSELLER",
        "marketplace_id": "ATVPDKIKX0DER",
    }
    acme, northwind, harbor = (
        Store(name="Acme Outdoor"),
        Store(name="Northwind Home"),
        Store(name="Blue Harbor"),
    )
    targets = [
        account(acme, MarketplaceKind.JUMPSELLER, "jumpseller", {"base_url": urls["jumpseller"]}),
        account(acme, MarketplaceKind.SHOPIFY, "shopify", {"shop_url": urls["shopify"]}),
    ]
    amazon = account(acme, MarketplaceKind.AMAZON, "amazon", amazon_settings)
    ebay = account(acme, MarketplaceKind.EBAY, "ebay", {"base_url": urls["ebay"], **EBAY_POLICIES})
    source = account(
        northwind, MarketplaceKind.SHOPIFY, "shopify-source", {"shop_url": urls["shopify-source"]}
    )
    broke = account(harbor, MarketplaceKind.AMAZON, "amazon", amazon_settings)
    acme.products.extend(_products(products))
    harbor.products.extend(_products(4))
    campaign = Campaign(name="Autumn launch")
    acme.campaigns.append(campaign)
    session.add_all([acme, northwind, harbor])
    session.flush()
    for product in acme.products:
        for target in targets:
            campaign.items.append(CampaignProduct(product_id=product.id, account_id=target.id))
    session.add_all(
        UiLabel(store_id=acme.id, key=key, language="en", value=text) for key, text in UI_LABELS.items()
    )
    connection = AkeneoConnection(
        store_id=northwind.id, base_url=urls["akeneo"], credentials_ref=f"env:{credentials['akeneo']}"
    )
    session.add(connection)
    session.flush()
    valid = [p.id for p in acme.products if p.sku not in INVALID]
    return SeededCatalog(
        campaign_id=campaign.id,
        acme=acme.id,
        northwind=northwind.id,
        harbor=harbor.id,
        accounts={
            "amazon": amazon.id,
            "ebay": ebay.id,
            "shopify-source": source.id,
            "harbor-amazon": broke.id,
        },
        akeneo_connection=connection.id,
        export_products=valid[:8],
        harbor_products=[p.id for p in harbor.products if p.sku not in INVALID],
    )


def _products(count: int) -> list[Product]:
    made = [
        _product(f"DEMO-{n:04d}", f"{NAMES[n % len(NAMES)]} {n // len(NAMES) + 1}", Decimal("12.50") + n, 8)
        for n in range(max(0, count - len(INVALID)))
    ]
    made.append(_product("DEMO-NO-PRICE", "Unpriced Lantern", Decimal("0"), 4))
    made.append(_product("DEMO-NO-STOCK", "Oversold Tent", Decimal("129.00"), -2))
    return made


def _product(sku: str, name: str, price: Decimal, stock: int) -> Product:
    return Product(
        sku=sku,
        name=name,
        description=f"{name}, from the Conveyor demo store.",
        price=price,
        stock=stock,
        ready=True,
        variants=[
            Variant(sku=f"{sku}-S", price=None, stock=max(stock, 0) // 2, options={"Size": "S"}),
            Variant(sku=f"{sku}-L", price=price + 5, stock=max(stock, 0) // 2, options={"Size": "L"}),
        ],
        images=[Image(url=f"https://images.example/{sku}/{n}.jpg", position=n) for n in (1, 2)],
    )


def seed_sellers(catalog_url: str, *, users: int, lwa: LwaAuthority, secrets_file: Path) -> None:
    """`users` Amazon sellers with one account per region; their refresh tokens go to `secrets_file`.

    Each account's `credentials_ref` points into that file (`file:...#seller`),
    the way a deployment keeps secrets outside the database.
    """
    secrets: dict[str, dict[str, str]] = {}
    engine = db.create_engine_for(catalog_url)
    try:
        with db.session_factory(engine).begin() as session:
            for n in range(users):
                user = SellerUser(name=f"Seller {n + 1}")
                for region in Region:
                    markets = sorted(MARKETPLACES[region.value].items())
                    country, marketplace = markets[n % len(markets)]
                    seller = f"A{region.value}DEMO{n:03d}"
                    secrets[seller] = {
                        "client_id": lwa.client_id,
                        "client_secret": lwa.client_secret,
                        "refresh_token": lwa.authorize(seller),
                    }
                    user.accounts.append(
                        SellerAccount(
                            region=region,
                            country=country,
                            marketplace_id=marketplace,
                            seller_id=seller,
                            credentials_ref=f"file:{secrets_file}#{seller}",
                        )
                    )
                session.add(user)
    finally:
        engine.dispose()
    secrets_file.touch(mode=0o600)
    secrets_file.write_text(json.dumps(secrets), "utf-8")
